"""BM25 search over several catalog text fields, one bm25s index per field."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np

from shelfwise._internal.artifacts import read_array, write_array
from shelfwise.contracts import FloatArray, IntArray
from shelfwise.errors import ArtifactError, ConfigError, DataError, EmptyDataError, NotReadyError
from shelfwise.retrieval.shared import read_params, write_params
from shelfwise.text.spell import SpellCorrector
from shelfwise.text.tokenize import ANALYZER_VERSION, MAX_QUERY_TOKENS, bound_query, tokenize

DEFAULT_FIELD_WEIGHTS: Mapping[str, float] = {
    "title": 2.0,
    "brand": 1.0,
    "category": 1.0,
    "description": 0.5,
}
_FIELD_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")  # also a folder name on disk
_FIELDS_DIR = "fields"
_DOC_ITEMS_FILE = "doc_items.npy"
_SPELL_FILE = "spell.json"


@dataclass(frozen=True)
class _FieldIndex:
    """One field's bm25s index; document d of the index is item `doc_items[d]`."""

    retriever: Any  # bm25s.BM25 (untyped library)
    doc_items: IntArray


class BM25Search:
    """Weighted sum of per-field BM25 scores (Lucene variant, as bm25s computes it).

    For a query q (tokens t, repeats counted) and item d:

        score(q, d) = Σ_f w_f · Σ_{t ∈ q} idf_f(t) · tf / (tf + k1 · (1 - b + b · |d_f| / avgdl_f))
        idf_f(t) = ln(1 + (N_f - df_f(t) + 0.5) / (df_f(t) + 0.5))

    with tf the count of t in field f of d, and N_f, df_f, avgdl_f taken over the items
    whose field f has at least one token (as Lucene counts only documents that have the
    field). Items without text in a field score 0 for it. Text goes through
    `shelfwise.text.tokenize.tokenize` at index and at query time alike (tokens cut to
    64 characters); a query is read through `bound_query`: at most its first 32
    tokens and 200 characters, so one request's work has a ceiling.

    With `typo_tolerance`, a Latin query token that no indexed field contains is
    corrected to the most frequent catalog token within 1 edit (2 for long tokens),
    see `shelfwise.text.spell.SpellCorrector`, and the correction is *added* to
    the query tokens: known tokens are never replaced, and an unknown token scores 0
    anyway ("dresss" searches as "dresss dress").

    Inputs:
        fields: field name -> one text (or None) per item_index; fields not in
            `field_weights`, with weight 0, or empty for every item are skipped.
        query: free text; an empty query or one without a known token scores all 0.

    Relations:
        The only search model for now; recommenders score users, this scores a query.

    References:
        Robertson, Zaragoza. "The Probabilistic Relevance Framework: BM25 and Beyond."
        FnTIR 2009. Kamphuis et al. "Which BM25 Do You Mean? A Large-Scale
        Reproducibility Study of Scoring Variants." ECIR 2020 (the Lucene variant).
        Lù. "BM25S: Orders of magnitude faster lexical search via eager sparse
        scoring." 2024.

    Example:
        >>> index = BM25Search(field_weights={"title": 1.0})
        >>> index.fit({"title": ["red dress", "blue jeans", None]})
        >>> [bool(s > 0) for s in index.score("dresses")]
        [True, False, False]
        >>> index.query_tokens("red dresss")
        ['red', 'dresss', 'dress']
    """

    name: str = "bm25"

    def __init__(
        self,
        k1: float = 1.2,
        b: float = 0.75,
        field_weights: Mapping[str, float] | None = None,
        typo_tolerance: bool = True,
    ) -> None:
        """Create an empty index.

        Args:
            k1: term-frequency saturation, > 0.
            b: length normalisation, in [0, 1].
            field_weights: weight of each field's score (>= 0); default
                `DEFAULT_FIELD_WEIGHTS`.
            typo_tolerance: add spelling corrections of unknown query tokens.

        Raises:
            ConfigError: a parameter out of range or a field name that is not
                letters, digits, "_" and "-".
        """
        weights = dict(DEFAULT_FIELD_WEIGHTS if field_weights is None else field_weights)
        if not (math.isfinite(k1) and k1 > 0):
            raise ConfigError(f"bm25: k1 must be > 0, got {k1}")
        if not 0.0 <= b <= 1.0:
            raise ConfigError(f"bm25: b must be in [0, 1], got {b}")
        for field, weight in weights.items():
            if not _FIELD_NAME.match(field):
                raise ConfigError(f"bm25: field name {field!r} must be letters, digits, '_' or '-'")
            if not (math.isfinite(weight) and weight >= 0):
                raise ConfigError(f"bm25: weight of field {field!r} must be >= 0, got {weight}")
        self.k1 = float(k1)
        self.b = float(b)
        self.field_weights: dict[str, float] = {f: float(w) for f, w in weights.items()}
        self.typo_tolerance = bool(typo_tolerance)
        # the tokenizer version the index was built with; queries are read with it
        self.analyzer = ANALYZER_VERSION
        self._fields: dict[str, _FieldIndex] = {}
        self._speller: SpellCorrector | None = None
        self._n_items: int | None = None

    @property
    def n_items(self) -> int:
        """Number of items (length of every score vector)."""
        if self._n_items is None:
            raise NotReadyError(f"{self.name} index is not fitted; call fit() or load() first")
        return self._n_items

    @property
    def indexed_fields(self) -> list[str]:
        """The fields that were indexed, in `field_weights` order."""
        return list(self._fields)

    def fit(self, fields: dict[str, list[str | None]]) -> None:
        """Tokenize and index every weighted field.

        Raises:
            DataError: the field lists differ in length.
            EmptyDataError: no item, or no weighted field holds any token.
        """
        lengths = {field: len(texts) for field, texts in fields.items()}
        if len(set(lengths.values())) > 1:
            raise DataError(f"bm25: every field needs one text per item; lengths differ: {lengths}")
        n_items = next(iter(lengths.values()), 0)
        if n_items == 0:
            raise EmptyDataError("bm25: no items to index; is the catalog empty?")
        indexes: dict[str, _FieldIndex] = {}
        token_lists: list[list[str]] = []  # one per (item, indexed field) with text
        for field, weight in self.field_weights.items():
            if weight > 0 and field in fields:
                index = self._index_field(fields[field], token_lists)
                if index is not None:
                    indexes[field] = index
        if not indexes:
            raise EmptyDataError(
                f"bm25: none of the fields {sorted(self.field_weights)} has any text "
                f"(given: {sorted(fields)}); map a title column in the catalog config"
            )
        self._fields = indexes
        self._speller = (
            SpellCorrector.from_token_lists(token_lists) if self.typo_tolerance else None
        )
        self._n_items = n_items

    def _index_field(
        self, texts: list[str | None], token_lists: list[list[str]]
    ) -> _FieldIndex | None:
        import bm25s
        from bm25s.tokenization import Tokenized

        vocabulary: dict[str, int] = {}
        doc_token_ids: list[list[int]] = []
        doc_items: list[int] = []
        for item_index, text in enumerate(texts):
            tokens = tokenize(text, version=self.analyzer) if text else []
            if not tokens:
                continue
            # setdefault assigns ids in first-seen order: deterministic across runs
            # (bm25s' own vocabulary comes from a set, whose order depends on hashing).
            doc_token_ids.append([vocabulary.setdefault(t, len(vocabulary)) for t in tokens])
            doc_items.append(item_index)
            token_lists.append(tokens)
        if not doc_items:
            return None
        retriever = bm25s.BM25(
            k1=self.k1, b=self.b, method="lucene", dtype="float32", backend="numpy"
        )
        retriever.index(
            Tokenized(ids=doc_token_ids, vocab=vocabulary),
            create_empty_token=False,
            show_progress=False,
        )
        return _FieldIndex(retriever=retriever, doc_items=np.asarray(doc_items, dtype=np.int64))

    def corrections(self, query: str) -> dict[str, str]:
        """Unknown query token -> the catalog token added for it ({} without typo tolerance).

        For "did you mean" hints; tokens are stemmed, as the index holds them.
        """
        tokens = _query_tokens(query, self.analyzer)
        if self._speller is None or not tokens:
            return {}
        return self._speller.corrections(tokens)

    def query_tokens(self, query: str) -> list[str]:
        """The tokens a query is scored with: its own, then the corrections of unknown ones.

        Ranking features that compare the query with item text should use these, so
        they see the typo-corrected query the scores were computed from.
        """
        tokens = _query_tokens(query, self.analyzer)
        if self._speller is None or not tokens:
            return tokens
        return tokens + [
            corrected for token in tokens if (corrected := self._speller.correct(token)) is not None
        ]

    def field_scores(self, query: str) -> dict[str, FloatArray]:
        """Unweighted BM25 scores of each indexed field, dense (n_items,) float32 each.

        `score(query)` is the `field_weights`-weighted sum of these; an item without
        text in a field scores 0 there. Keys are `indexed_fields`.
        """
        n_items = self.n_items
        tokens = self.query_tokens(query)
        scores: dict[str, FloatArray] = {}
        for field, index in self._fields.items():
            dense = np.zeros(n_items, dtype=np.float32)
            token_ids = index.retriever.get_tokens_ids(tokens) if tokens else []
            if token_ids:
                dense[index.doc_items] = index.retriever.get_scores_from_ids(token_ids)
            scores[field] = dense
        return scores

    def term_scores(self, token: str) -> dict[str, FloatArray]:
        """Unweighted BM25 scores of each indexed field for one token of `query_tokens`,
        not analysed again: a query's `field_scores` are the sum of these over its
        tokens (what explanations split a score with)."""
        scores: dict[str, FloatArray] = {}
        for field, index in self._fields.items():
            dense = np.zeros(self.n_items, dtype=np.float32)
            token_ids = index.retriever.get_tokens_ids([token])
            if token_ids:
                dense[index.doc_items] = index.retriever.get_scores_from_ids(token_ids)
            scores[field] = dense
        return scores

    def score(self, query: str) -> FloatArray:
        """Dense (n_items,) float32 scores of one query; all 0 without a known token."""
        scores = np.zeros(self.n_items, dtype=np.float32)
        tokens = self.query_tokens(query)
        if not tokens:
            return scores
        for field, index in self._fields.items():
            token_ids = index.retriever.get_tokens_ids(tokens)
            if not token_ids:
                continue
            field_scores = index.retriever.get_scores_from_ids(token_ids)
            scores[index.doc_items] += np.float32(self.field_weights[field]) * field_scores
        return scores

    def save(self, folder: Path) -> None:
        """Write `params.json`, one bm25s folder per field under `fields/` and, with
        typo tolerance, the spelling vocabulary `spell.json`.

        bm25s writes `.npy` arrays (pickle off) and JSON: nothing is pickled.
        """
        n_items = self.n_items
        folder.mkdir(parents=True, exist_ok=True)
        for field, index in self._fields.items():
            field_dir = folder / _FIELDS_DIR / field
            index.retriever.save(field_dir, allow_pickle=False, show_progress=False)
            write_array(field_dir / _DOC_ITEMS_FILE, index.doc_items)
        if self._speller is not None:
            self._speller.save(folder / _SPELL_FILE)
        write_params(
            folder,
            self.name,
            {
                "k1": self.k1,
                "b": self.b,
                "field_weights": self.field_weights,
                "typo_tolerance": self._speller is not None,
                "indexed_fields": self.indexed_fields,
                "n_items": n_items,
                "analyzer": self.analyzer,
            },
        )

    @classmethod
    def load(cls, folder: Path) -> Self:
        """Read an index written by `save` (arrays loaded into memory, not mmapped).

        Raises:
            ArtifactError: missing files, another model's folder, or mismatched sizes.
        """
        import bm25s

        params = read_params(folder, cls.name)
        # an index saved before typo tolerance existed has no vocabulary: load it without
        typo_tolerance = bool(params.get("typo_tolerance", False))
        model = cls(
            k1=params["k1"],
            b=params["b"],
            field_weights=params["field_weights"],
            typo_tolerance=typo_tolerance,
        )
        # an index saved before analyzer versions was tokenized by version 1: its
        # queries are read the same way, never with tokens its vocabulary lacks
        model.analyzer = int(params.get("analyzer", 1))
        if model.analyzer not in (1, ANALYZER_VERSION):
            raise ArtifactError(
                f"{folder} was tokenized by analyzer version {model.analyzer}, which this "
                f"shelfwise (analyzer {ANALYZER_VERSION}) cannot read; retrain the index"
            )
        if typo_tolerance:
            model._speller = SpellCorrector.load(folder / _SPELL_FILE)
        n_items = int(params["n_items"])
        for field in params["indexed_fields"]:
            field_dir = folder / _FIELDS_DIR / field
            try:
                retriever = bm25s.BM25.load(
                    field_dir, mmap=False, allow_pickle=False, load_corpus=False
                )
                doc_items = read_array(field_dir / _DOC_ITEMS_FILE).astype(np.int64)
            except FileNotFoundError as exc:
                raise ArtifactError(
                    f"{field_dir} is incomplete ({exc.filename} missing); retrain the index"
                ) from None
            n_docs = int(retriever.scores["num_docs"])
            if doc_items.shape != (n_docs,) or (
                n_docs and (doc_items.min() < 0 or doc_items.max() >= n_items)
            ):
                raise ArtifactError(
                    f"{field_dir / _DOC_ITEMS_FILE} does not match the index "
                    f"({doc_items.shape[0]} entries for {n_docs} documents, {n_items} items); "
                    "retrain the index"
                )
            model._fields[field] = _FieldIndex(retriever=retriever, doc_items=doc_items)
        model._n_items = n_items
        return model


def _query_tokens(query: str, analyzer: int = ANALYZER_VERSION) -> list[str]:
    """The tokens of the part of `query` search reads (`bound_query`)."""
    return tokenize(bound_query(query), max_tokens=MAX_QUERY_TOKENS, version=analyzer)


__all__ = ["BM25Search", "DEFAULT_FIELD_WEIGHTS"]
