"""Hybrid search: lexical and semantic candidates, fused by rank, re-ranked by LambdaMART.

One query goes through the same steps in training, offline evaluation and serving:

1. `BM25Search` scores every item per field (typos corrected); its list is the items
   with a positive score, best first, among the allowed ones, cut to `depth`.
2. `DenseSearch` returns the `depth` nearest items (FAISS) among the allowed ones.
3. Reciprocal rank fusion of the two lists; the best `candidates` go on.
4. `SearchReranker` (LambdaMART) scores them from `search_features` (per-field BM25,
   cosine, ranks, text matches, popularity, price, the user's category and brand
   affinity) and orders them. Without a re-ranker the fused order is final.

Either retriever may be absent (a catalog without text for the encoder, or dense
search turned off): the other one's list is then the fused list.

Feature encoders (`FeatureEncoder`, optional, none by default): further sentence
encoders that do not retrieve; their cosines are extra re-ranker features, computed in
`features` for training and serving alike. Each adds one query encoding per search.

Saved as a folder of plain files: `params.json`, `bm25/`, `dense/`, `titles/` (title
vectors for features), `extra<k>/` and `extra<k>_titles/` (feature encoder k's item and
title vectors), `reranker/` (LightGBM text model) and `items.parquet` (the columns the
features read).

One concern in one module (the `HybridSearch` class and its saved form), which is why
it runs past 500 lines.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Self

import numpy as np
import polars as pl

from shelfwise._internal.artifacts import atomic_write_json, write_parquet
from shelfwise.contracts import BRAND, CATEGORY, PRICE, TITLE, BoolArray, FloatArray, IntArray
from shelfwise.errors import ArtifactError, ConfigError
from shelfwise.retrieval.base import SearchHits, top_k
from shelfwise.retrieval.bm25 import BM25Search
from shelfwise.search.features import (
    BM25_FIELDS,
    SearchItemTable,
    search_feature_names,
    search_features,
    user_affinity,
)
from shelfwise.search.fusion import reciprocal_rank_fusion
from shelfwise.search.lambdamart import SearchReranker
from shelfwise.text.tokenize import bound_query

if TYPE_CHECKING:
    from shelfwise.retrieval.dense import DenseSearch

PARAMS_FILE: Final = "params.json"
ITEMS_FILE: Final = "items.parquet"
POPULARITY: Final = "popularity"
_ITEM_COLUMNS: Final = (TITLE, CATEGORY, BRAND, PRICE)
_LEXICAL, _DENSE, _TITLES, _RERANKER = "bm25", "dense", "titles", "reranker"
_EXTRA = "extra"  # feature encoder k: extra<k>/, extra<k>_titles/
PRF_DEPTH: Final = 10  # a feature encoder's own top items, for pseudo-relevance feedback


@dataclass(frozen=True)
class FeatureEncoder:
    """A second sentence encoder whose cosines are re-ranker features (it retrieves nothing).

    Attributes:
        items: a fitted `DenseSearch` over the same item text as dense search, with this
            encoder; its index gives the encoder's own top items (pseudo-relevance
            feedback).
        titles: the same encoder over titles alone (same encoder object), or None.
    """

    items: DenseSearch
    titles: DenseSearch | None = None


@dataclass(frozen=True)
class FeatureEncoderView:
    """What one feature encoder says about a query.

    Attributes:
        query_vector: the encoder's query vector.
        top_items: its nearest items (up to `PRF_DEPTH`, among the allowed ones).
        top_titles: its nearest titles (empty without a title index).
    """

    query_vector: FloatArray
    top_items: IntArray
    top_titles: IntArray


@dataclass(frozen=True)
class QueryView:
    """What the retrievers say about one query, computed once and reused.

    Attributes:
        query: the query text as search reads it (`bound_query`: at most 32 tokens
            and 200 characters; ordinary queries whole).
        field_scores: BM25 score per field over every item (empty without BM25).
        bm25: field-weighted BM25 over every item (None without BM25).
        query_vector: the encoder's query vector (None without dense search).
        corrections: misspelled token -> catalog token.
        lexical: BM25 list (item indices, best first, positive scores only).
        semantic: dense list (item indices, best first).
        fused: RRF of the two lists, best first, and `fused_scores`.
        extras: one `FeatureEncoderView` per feature encoder (none by default).
    """

    query: str
    field_scores: dict[str, FloatArray]
    bm25: FloatArray | None
    query_vector: FloatArray | None
    corrections: dict[str, str]
    lexical: IntArray
    semantic: IntArray
    fused: IntArray
    fused_scores: np.ndarray[Any, np.dtype[np.float64]]
    extras: tuple[FeatureEncoderView, ...] = ()


class HybridSearch:
    """BM25 + dense retrieval fused by reciprocal rank, optionally re-ranked by LambdaMART.

    Inputs:
        query: free text (any language both retrievers read); `allowed` a bool mask over
            item_index (filters); `history` the item indices a user interacted with.

    Relations:
        Implements `RankedSearch` (it picks its own candidates) and `SearchIndex`
        (`score` gives every item its fused score, for offline comparison with plain
        indexes). It has no `fit` and is not a `TextSearchIndex`: it is assembled from
        fitted BM25 and dense indexes and a trained re-ranker, which is what
        `shelfwise.search.stage` does (and evaluates).

    References:
        Cormack, Clarke, Büttcher. "Reciprocal Rank Fusion outperforms Condorcet and
        individual Rank Learning Methods." SIGIR 2009. Burges. "From RankNet to
        LambdaRank to LambdaMART: An Overview." MSR-TR-2010-82.
    """

    name: str = "hybrid"

    def __init__(
        self,
        *,
        lexical: BM25Search | None,
        dense: DenseSearch | None,
        table: SearchItemTable,
        titles: DenseSearch | None = None,
        items: pl.DataFrame,
        reranker: SearchReranker | None = None,
        rrf_k: float = 60.0,
        depth: int = 200,
        candidates: int = 100,
        extras: Sequence[FeatureEncoder] = (),
    ) -> None:
        """Assemble from fitted parts.

        Args:
            lexical: a fitted `BM25Search`, or None.
            dense: a fitted `DenseSearch`, or None.
            titles: a `DenseSearch` over titles alone with the same encoder (features
                only: title cosine and title pseudo-relevance feedback), or None.
            table: the item table the features read (`SearchItemTable.from_frame`).
            items: the frame `table` was built from (saved with the model).
            reranker: a fitted `SearchReranker`, or None (fused order is final).
            rrf_k: the reciprocal rank fusion constant.
            depth: length of each retriever's list.
            candidates: fused items the re-ranker scores.
            extras: feature encoders (their cosines are features; dropped, as
                `titles`, without dense search).

        Raises:
            ConfigError: no retriever, a size out of range, or a re-ranker trained on
                other feature columns than these retrievers and extras give.
        """
        if lexical is None and dense is None:
            raise ConfigError("hybrid search needs BM25 or dense search (both are off)")
        if depth < 1 or candidates < 1 or rrf_k <= 0:
            raise ConfigError(
                f"hybrid search: depth and candidates must be >= 1 and rrf_k > 0, got "
                f"{depth}, {candidates}, {rrf_k}"
            )
        self.lexical = lexical
        self.dense = dense
        self.titles = titles if dense is not None else None
        self.extras: tuple[FeatureEncoder, ...] = tuple(extras) if dense is not None else ()
        # `input_names`: what the re-ranker is handed (a re-ranker trained before a
        # feature was added takes today's columns and picks its own by name)
        if reranker is not None and tuple(reranker.input_names) != self.feature_names:
            raise ConfigError(
                f"hybrid search: the re-ranker reads {len(reranker.input_names)} feature "
                f"columns, these retrievers with {len(self.extras)} feature encoders give "
                f"{len(self.feature_names)}; train the re-ranker on `features` of this model"
            )
        self.table = table
        self.items = items
        self.reranker = reranker
        self.rrf_k = float(rrf_k)
        self.depth = int(depth)
        self.candidates = int(candidates)

    @property
    def n_items(self) -> int:
        """Size of the item space."""
        return self.table.n_items

    def set_query_cache(self, size: int) -> None:
        """Query vectors each encoder keeps (LRU); 0 encodes every query."""
        for dense in (self.dense, *(extra.items for extra in self.extras)):
            if dense is not None:
                dense.set_query_cache(size)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The columns of `features` (and of the re-ranker this model accepts)."""
        return search_feature_names(len(self.extras))

    def replace(self, **changes: Any) -> HybridSearch:
        """A copy with some constructor arguments changed (retrievers, re-ranker, ...)."""
        current: dict[str, Any] = {
            "lexical": self.lexical,
            "dense": self.dense,
            "table": self.table,
            "titles": self.titles,
            "items": self.items,
            "reranker": self.reranker,
            "rrf_k": self.rrf_k,
            "depth": self.depth,
            "candidates": self.candidates,
            "extras": self.extras,
        }
        return HybridSearch(**{**current, **changes})

    def with_reranker(self, reranker: SearchReranker | None) -> HybridSearch:
        """The same retrievers with another re-ranker (None: fused order)."""
        return self.replace(reranker=reranker)

    # -- one query ----------------------------------------------------------------

    def view(self, query: str, allowed: BoolArray | None = None) -> QueryView:
        """Run both retrievers and the fusion for one query.

        Both retrievers and the features read `bound_query(query)`: at most 32 tokens
        and 200 characters (issue 14: a 512-character query cost 330-690 ms, most of
        it in the spelling neighbourhood of one long token and in the encoder).
        Ordinary queries are within the bound and read whole.
        """
        query = bound_query(query)
        field_scores: dict[str, FloatArray] = {}
        bm25: FloatArray | None = None
        corrections: dict[str, str] = {}
        lexical = np.empty(0, dtype=np.int64)
        if self.lexical is not None:
            field_scores = self.lexical.field_scores(query)
            bm25 = np.zeros(self.n_items, dtype=np.float32)
            for field, scores in field_scores.items():
                bm25 += np.float32(self.lexical.field_weights[field]) * scores
            corrections = self.lexical.corrections(query)
            exclude = bm25 <= 0 if allowed is None else (bm25 <= 0) | ~allowed
            lexical, _ = top_k(bm25, self.depth, exclude=exclude)
        query_vector: FloatArray | None = None
        semantic = np.empty(0, dtype=np.int64)
        if self.dense is not None:
            query_vector = self.dense.encode_query(query)
            semantic, _ = self.dense.search_vector(query_vector, self.depth, allowed)
        extras = tuple(_extra_view(extra, query, allowed) for extra in self.extras)
        rankings = {_LEXICAL: lexical, _DENSE: semantic}
        fused, fused_scores = reciprocal_rank_fusion(rankings, k=self.rrf_k)
        return QueryView(
            query=query,
            field_scores=field_scores,
            bm25=bm25,
            query_vector=query_vector,
            corrections=corrections,
            lexical=lexical,
            semantic=semantic,
            fused=fused,
            fused_scores=fused_scores,
            extras=extras,
        )

    def features(
        self, view: QueryView, items: IntArray, history: IntArray | None = None
    ) -> np.ndarray[Any, np.dtype[np.float32]]:
        """The re-ranker's feature matrix of `items` for the query of `view`."""
        signals: dict[str, Any] = {}
        if view.bm25 is not None:
            for field in BM25_FIELDS:
                if field in view.field_scores:
                    signals[f"bm25_{field}"] = view.field_scores[field][items]
            signals["bm25_score"] = view.bm25[items]
            signals["bm25_rank"] = _ranks(view.lexical, items)
        if view.query_vector is not None and self.dense is not None:
            vectors = self.dense.vectors
            signals["dense_cosine"] = vectors[items] @ view.query_vector
            signals["dense_rank"] = _ranks(view.semantic, items)
            # Pseudo-relevance feedback: the top hits show where the query's products
            # lie; closeness to their centroid adds evidence to the query's own cosine.
            signals["dense_prf5_cosine"] = vectors[items] @ _centroid(vectors, view.semantic[:5])
            signals["dense_prf10_cosine"] = vectors[items] @ _centroid(vectors, view.semantic[:10])
            signals["fused_prf10_cosine"] = vectors[items] @ _centroid(vectors, view.fused[:10])
            if self.titles is not None:
                titles = self.titles.vectors
                signals["dense_title_cosine"] = titles[items] @ view.query_vector
                signals["title_prf10_cosine"] = titles[items] @ _centroid(
                    titles, view.semantic[:10]
                )
        for number, (extra, seen) in enumerate(zip(self.extras, view.extras, strict=False), 1):
            signals.update(_extra_signals(number, extra, seen, items))
        fused_rank = _ranks(view.fused, items)
        fused_score = np.zeros(items.size, dtype=np.float64)
        position = {int(item): n for n, item in enumerate(view.fused.tolist())}
        for n, item in enumerate(items.tolist()):
            if item in position:
                fused_score[n] = view.fused_scores[position[item]]
        signals["rrf_score"] = fused_score
        signals["rrf_rank"] = fused_rank
        affinity = (
            user_affinity(self.table, history) if history is not None and history.size else None
        )
        return search_features(
            view.query,
            items,
            signals,
            self.table,
            corrections=view.corrections,
            affinity=affinity,
            extra_encoders=len(self.extras),
        )

    def rank(
        self, view: QueryView, items: IntArray, history: IntArray | None = None
    ) -> np.ndarray[Any, np.dtype[np.float64]]:
        """A score for each of `items` (higher is better): the re-ranker's, else fused.

        Without a re-ranker, items outside the fused list score below every listed
        item, ordered among themselves by cosine then BM25 (a total, deterministic
        order for offline re-rank evaluation).
        """
        if self.reranker is not None:
            return self.reranker.predict(self.features(view, items, history))
        fused = np.zeros(items.size, dtype=np.float64)
        position = {int(item): n for n, item in enumerate(view.fused.tolist())}
        for n, item in enumerate(items.tolist()):
            if item in position:
                fused[n] = view.fused_scores[position[item]]
        tie = np.zeros(items.size, dtype=np.float64)
        if view.query_vector is not None and self.dense is not None:
            tie += (self.dense.vectors[items] @ view.query_vector).astype(np.float64)
        if view.bm25 is not None:
            tie += 1e-3 * np.tanh(view.bm25[items].astype(np.float64))
        # fused scores are < 2 / rrf_k; ties add at most ~1e-4 of that scale
        return fused + 1e-6 * tie / self.rrf_k

    def search(
        self,
        query: str,
        k: int,
        *,
        allowed: BoolArray | None = None,
        history: IntArray | None = None,
        explain: bool = False,
    ) -> SearchHits:
        """Up to `k` items for `query` among `allowed`, best first (see the module doc)."""
        view = self.view(query, allowed)
        candidates = view.fused[: max(self.candidates, k)]
        if candidates.size == 0 or k < 1:
            return SearchHits(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32))
        explanations: list[list[tuple[str, float]]] | None = None
        if self.reranker is not None:
            matrix = self.features(view, candidates, history)
            scores = self.reranker.predict(matrix)
            order = np.lexsort((candidates, -scores))[:k]
            if explain:
                explanations = self.reranker.explain(matrix[order])
        else:
            scores = view.fused_scores[: candidates.size]
            order = np.arange(min(k, candidates.size))
        return SearchHits(
            candidates[order], np.asarray(scores[order], dtype=np.float32), explanations
        )

    def score(self, query: str) -> FloatArray:
        """Every item's score for `query` (items outside the candidates: 0)."""
        view = self.view(query)
        scores = np.zeros(self.n_items, dtype=np.float32)
        candidates = view.fused[: self.candidates]
        if candidates.size:
            ranked = self.rank(view, candidates)
            # shift so every candidate is positive, in the ranker's order
            scores[candidates] = (ranked - ranked.min() + 1.0).astype(np.float32)
        return scores

    # -- files ----------------------------------------------------------------------

    def save(self, folder: Path) -> None:
        """Write params, the retrievers, the re-ranker and the item table."""
        folder.mkdir(parents=True, exist_ok=True)
        if self.lexical is not None:
            self.lexical.save(folder / _LEXICAL)
        if self.dense is not None:
            self.dense.save(folder / _DENSE)
        if self.titles is not None:
            self.titles.save(folder / _TITLES, with_graph=False)
        for number, extra in enumerate(self.extras, 1):
            extra.items.save(folder / f"{_EXTRA}{number}")
            if extra.titles is not None:
                extra.titles.save(folder / f"{_EXTRA}{number}_{_TITLES}", with_graph=False)
        if self.reranker is not None:
            self.reranker.save(folder / _RERANKER)
        write_parquet(self.items, folder / ITEMS_FILE)
        atomic_write_json(
            folder / PARAMS_FILE,
            {
                "model": self.name,
                "rrf_k": self.rrf_k,
                "depth": self.depth,
                "candidates": self.candidates,
                "lexical": self.lexical is not None,
                "dense": self.dense is not None,
                "titles": self.titles is not None,
                "reranker": self.reranker is not None,
                "extra_titles": [extra.titles is not None for extra in self.extras],
            },
        )

    @classmethod
    def load(cls, folder: Path) -> Self:
        """Read a folder written by `save`.

        Raises:
            ArtifactError: missing or foreign files.
        """
        try:
            params = json.loads((folder / PARAMS_FILE).read_text(encoding="utf-8"))
            items = pl.read_parquet(folder / ITEMS_FILE)
        except FileNotFoundError as exc:
            raise ArtifactError(
                f"{folder} is not a hybrid search model ({exc.filename} missing)"
            ) from None
        if params.get("model") != cls.name:
            raise ArtifactError(f"{folder} holds a {params.get('model')!r} model, not hybrid")
        dense = titles = None
        extras: list[FeatureEncoder] = []
        if params["dense"]:
            from shelfwise.retrieval.dense import DenseSearch

            dense = DenseSearch.load(folder / _DENSE)
            if params.get("titles"):
                # one encoder for both: the title index only holds vectors
                titles = DenseSearch.load(folder / _TITLES, encoder=dense.encoder)
            for number, has_titles in enumerate(params.get("extra_titles", []), 1):
                extra = DenseSearch.load(folder / f"{_EXTRA}{number}")
                extra_titles = None
                if has_titles:
                    extra_titles = DenseSearch.load(
                        folder / f"{_EXTRA}{number}_{_TITLES}", encoder=extra.encoder
                    )
                extras.append(FeatureEncoder(extra, extra_titles))
        names = search_feature_names(len(extras))
        popularity = items[POPULARITY].to_numpy() if POPULARITY in items.columns else None
        return cls(
            lexical=BM25Search.load(folder / _LEXICAL) if params["lexical"] else None,
            dense=dense,
            titles=titles,
            table=SearchItemTable.from_frame(items, popularity),
            items=items,
            reranker=(
                SearchReranker.load(folder / _RERANKER, feature_names=names)
                if params["reranker"]
                else None
            ),
            rrf_k=float(params["rrf_k"]),
            depth=int(params["depth"]),
            candidates=int(params["candidates"]),
            extras=extras,
        )


def item_frame(items: pl.DataFrame, popularity: IntArray | None) -> pl.DataFrame:
    """The catalog columns the features read, plus popularity counts when known."""
    columns = [name for name in _ITEM_COLUMNS if name in items.columns]
    frame = items.select(columns)
    if popularity is not None:
        frame = frame.with_columns(pl.Series(POPULARITY, popularity, dtype=pl.Int64))
    return frame


def _extra_view(extra: FeatureEncoder, query: str, allowed: BoolArray | None) -> FeatureEncoderView:
    """One feature encoder's query vector and its own top items and titles."""
    vector = extra.items.encode_query(query)
    top_items, _ = extra.items.search_vector(vector, PRF_DEPTH, allowed)
    top_titles = np.empty(0, dtype=np.int64)
    if extra.titles is not None:
        top_titles, _ = extra.titles.search_vector(vector, PRF_DEPTH, allowed)
    return FeatureEncoderView(query_vector=vector, top_items=top_items, top_titles=top_titles)


def _extra_signals(
    number: int, extra: FeatureEncoder, view: FeatureEncoderView, items: IntArray
) -> dict[str, FloatArray]:
    """Feature encoder `number`'s signals of `items` (see `search_features`)."""
    vectors = extra.items.vectors
    signals = {
        f"extra{number}_cosine": vectors[items] @ view.query_vector,
        f"extra{number}_prf10_cosine": vectors[items] @ _centroid(vectors, view.top_items),
    }
    if extra.titles is not None:
        titles = extra.titles.vectors
        signals[f"extra{number}_title_cosine"] = titles[items] @ view.query_vector
        signals[f"extra{number}_title_prf10_cosine"] = titles[items] @ _centroid(
            titles, view.top_titles
        )
    return signals


def _centroid(vectors: FloatArray, rows: IntArray) -> FloatArray:
    """The unit mean of `vectors[rows]` (zeros when there are no rows)."""
    if rows.size == 0:
        return np.zeros(vectors.shape[1], dtype=np.float32)
    mean = vectors[rows].mean(axis=0)
    norm = float(np.linalg.norm(mean))
    unit: FloatArray = (mean / norm if norm > 0 else mean).astype(np.float32)
    return unit


def _ranks(ranked: IntArray, items: IntArray) -> np.ndarray[Any, np.dtype[np.float64]]:
    """1-based rank of each of `items` in `ranked`; NaN when absent."""
    position = {int(item): n + 1 for n, item in enumerate(ranked.tolist())}
    return np.asarray([position.get(int(item), np.nan) for item in items.tolist()], np.float64)


__all__ = [
    "PRF_DEPTH",
    "FeatureEncoder",
    "FeatureEncoderView",
    "HybridSearch",
    "QueryView",
    "item_frame",
]
