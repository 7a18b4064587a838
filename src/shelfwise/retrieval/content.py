"""Content-based recommendations from product text: the cold-start recommender."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self, TypeAlias

import numpy as np
import scipy.sparse as sp

from shelfwise._internal.artifacts import write_csr
from shelfwise.contracts import FloatArray, IntArray
from shelfwise.errors import (
    ConfigError,
    DataError,
    EmptyDataError,
    NotReadyError,
    UnknownItemError,
)
from shelfwise.retrieval.base import Histories
from shelfwise.retrieval.shared import (
    check_histories,
    check_train,
    read_item_matrix,
    read_params,
    write_params,
)
from shelfwise.text.tokenize import tokenize

_SIMILARITY_FILE = "similarity.npz"
DEFAULT_FIELDS: tuple[str, ...] = ("title", "brand", "category", "description")
# Similarity blocks are dense (rows, n_items) float32: about 32 MB per block.
_MAX_BLOCK_CELLS = 8_000_000

# Item vectors: sparse TF-IDF rows today, dense encoder rows later; L2-normalised.
ItemVectors: TypeAlias = sp.csr_matrix | np.ndarray[Any, np.dtype[np.float32]]


class ContentRecommender:
    """Scores items by the text similarity of their product data to the user's items.

    Each item is one document: its fields joined in `fields` order, the title repeated
    `title_weight` times so it counts more. Documents are cut with `tokenize` and turned
    into TF-IDF vectors (sublinear tf, smoothed idf, L2-normalised rows), so

        sim(i, j) = <v_i, v_j>     (cosine, v the unit TF-IDF vectors)

    Row j of S keeps item j's `neighbours` most similar *other* items with sim > 0
    (ties broken by lower item_index; the item itself is left out). As in
    `ItemKNNRecommender`, a candidate j is scored from its own neighbourhood:

        score(u, j) = Σ_{i ∈ N(j)} histories[u, i] · sim(j, i),   i.e. histories @ Sᵀ.

    S depends on text only, so an item without a single event still scores through
    the history items it resembles, and `similar` lists neighbours for it: that is
    what this model is for. Items without text have no neighbours and score 0.

    Fitting takes two calls, because the `Recommender` protocol's `fit` sees only the
    interaction matrix: `fit_text(texts)` computes S, then `fit(train)` checks that
    `train` has the same items and makes the model ready; `fit` before `fit_text`
    raises `NotReadyError`. The interactions themselves are not used.

    Inputs:
        texts: field name -> list of texts, one per item_index (None = empty); fields
            not in `fields` are ignored, and absent fields count as empty.
        train: CSR (n_users, n_items), non-negative weights; only its shape is used.
        histories: CSR (batch, n_items) in the same column space.

    Relations:
        `ItemKNNRecommender` computes the same kind of S from co-occurrence, so it
        knows nothing of items without events; this model knows nothing but text. The
        vocabulary and idf are not saved: serving needs only S. `vectors` is the one
        place that turns text into item vectors; a later issue replaces TF-IDF with
        the packaged multilingual encoder there (dense rows work unchanged).

    References:
        Pazzani, Billsus. "Content-based recommendation systems." The Adaptive Web,
        LNCS 4321, 2007.
        Salton, Buckley. "Term-weighting approaches in automatic text retrieval."
        Information Processing & Management 24(5), 1988.

    Example:
        >>> import scipy.sparse as sp
        >>> model = ContentRecommender(neighbours=5)
        >>> model.fit_text({"title": ["红色 连衣裙", "红色 连衣裙 长款", "蓝牙 耳机"]})
        >>> model.fit(sp.csr_matrix([[1.0, 0.0, 1.0]]))
        >>> model.similar(0, k=2)[0].tolist()
        [1]
    """

    name: str = "content"

    def __init__(
        self,
        fields: Sequence[str] = DEFAULT_FIELDS,
        neighbours: int = 50,
        max_features: int | None = 100_000,
        *,
        title_weight: int = 2,
    ) -> None:
        """Create an unfitted model.

        Args:
            fields: text fields joined into each item's document, in this order.
            neighbours: most similar items kept per item (the item itself excluded).
            max_features: vocabulary size cap (most frequent tokens); None = no cap.
            title_weight: times the "title" field is repeated in the document.

        Raises:
            ConfigError: no fields, or a count below 1.
        """
        if isinstance(fields, str) or not fields:
            raise ConfigError(f"content: fields must be a non-empty list, got {fields!r}")
        if neighbours < 1:
            raise ConfigError(f"content: neighbours must be >= 1, got {neighbours}")
        if max_features is not None and max_features < 1:
            raise ConfigError(f"content: max_features must be >= 1 or null, got {max_features}")
        if title_weight < 1:
            raise ConfigError(f"content: title_weight must be >= 1, got {title_weight}")
        self.fields = tuple(fields)
        self.neighbours = neighbours
        self.max_features = max_features
        self.title_weight = title_weight
        self.similarity: sp.csr_matrix | None = None  # set by fit() or load()
        self._text_similarity: sp.csr_matrix | None = None  # set by fit_text()
        self._scoring: sp.csr_matrix | None = None

    @classmethod
    def from_texts(cls, texts: dict[str, list[str | None]], **params: Any) -> Self:
        """A model built with `params` on which `fit_text(texts)` has been called."""
        model = cls(**params)
        model.fit_text(texts)
        return model

    @property
    def n_items(self) -> int:
        """Number of items (rows and columns of the similarity)."""
        return int(self._fitted_similarity().shape[0])

    def documents(self, texts: dict[str, list[str | None]]) -> list[str]:
        """One document per item_index: the fields joined, the title repeated.

        Raises:
            DataError: none of `fields` is in `texts`, or field lengths differ.
        """
        present = [name for name in self.fields if name in texts]
        if not present:
            raise DataError(
                f"content: texts hold fields {sorted(texts)}, none of {list(self.fields)}; "
                "pass the catalog text fields or change models.content.params.fields"
            )
        lengths = {name: len(texts[name]) for name in present}
        if len(set(lengths.values())) != 1:
            raise DataError(
                f"content: text fields have different lengths {lengths}; "
                "each needs one entry per item_index"
            )
        n_items = next(iter(lengths.values()))
        parts: list[list[str]] = [[] for _ in range(n_items)]
        for name in present:
            repeat = self.title_weight if name == "title" else 1
            for item_index, text in enumerate(texts[name]):
                if text:
                    parts[item_index].extend([text] * repeat)
        return ["\n".join(item_parts) for item_parts in parts]

    def vectors(self, texts: dict[str, list[str | None]]) -> ItemVectors:
        """L2-normalised item vectors (n_items, n_features); items without text: zeros.

        Raises:
            DataError: see `documents`.
            EmptyDataError: no item, or no item has a single token.
        """
        from sklearn.feature_extraction.text import TfidfVectorizer

        documents = self.documents(texts)
        if not documents:
            raise EmptyDataError("content: the text fields have no items")
        vectorizer = TfidfVectorizer(
            analyzer=tokenize,
            lowercase=False,  # tokenize lower-cases (after NFKC) itself
            sublinear_tf=True,
            norm="l2",
            max_features=self.max_features,
            dtype=np.float32,
        )
        try:
            matrix = vectorizer.fit_transform(documents)
        except ValueError as exc:  # "empty vocabulary": no item has a token
            raise EmptyDataError(
                f"content: no item text has a single token ({exc}); check the text fields"
            ) from None
        return sp.csr_matrix(matrix, dtype=np.float32)

    def fit_text(self, texts: dict[str, list[str | None]]) -> None:
        """Compute the top-`neighbours` text similarity of every item; call before `fit`.

        Args:
            texts: field name -> one text per item_index (None or "" = no text).

        Raises:
            DataError: see `documents`.
            EmptyDataError: see `vectors`.
        """
        self._text_similarity = neighbour_similarity(self.vectors(texts), self.neighbours)
        self.similarity = None  # new text: `fit` must check the item count again
        self._scoring = None

    def fit(self, train: Histories) -> None:
        """Check `train` against the text's items and make the model ready.

        Raises:
            EmptyDataError: the matrix has no users, items or interactions.
            DataError: negative or non-finite weights, or another item count.
            NotReadyError: `fit_text` was not called first.
        """
        csr = check_train(train, model=self.name)
        if self._text_similarity is None:
            raise NotReadyError(
                f"{self.name}: call fit_text(texts) before fit(train); the model learns "
                "from product text, the matrix only fixes the item space"
            )
        n_items = self._text_similarity.shape[0]
        if csr.shape[1] != n_items:
            raise DataError(
                f"{self.name}: train has {csr.shape[1]} item columns but the texts describe "
                f"{n_items} items; build both from the same item map"
            )
        self.similarity = self._text_similarity
        self._scoring = None

    def score(self, histories: Histories) -> FloatArray:
        """Dense (batch, n_items) float32 scores `histories @ similarityᵀ`."""
        similarity = self._fitted_similarity()
        rows = check_histories(histories, similarity.shape[0], model=self.name)
        if self._scoring is None:
            self._scoring = sp.csr_matrix(similarity.T)  # cached: CSR of Sᵀ
        product = rows @ self._scoring
        return np.asarray(product.toarray(), dtype=np.float32)

    def similar(self, item_index: int, k: int) -> tuple[IntArray, FloatArray]:
        """Up to `k` most text-similar items, best first; ties by lower item_index.

        Covers items without events. Items without text (or sharing no token with any
        other item) return nothing.

        Raises:
            UnknownItemError: `item_index` outside [0, n_items).
        """
        similarity = self._fitted_similarity()
        n_items = similarity.shape[0]
        if not 0 <= item_index < n_items:
            raise UnknownItemError(f"item_index {item_index} is outside [0, {n_items})")
        start, end = similarity.indptr[item_index], similarity.indptr[item_index + 1]
        items = similarity.indices[start:end].astype(np.int64)
        values = similarity.data[start:end].astype(np.float32)
        order = np.lexsort((items, -values))[: max(k, 0)]
        return items[order], values[order]

    def save(self, folder: Path) -> None:
        """Write `similarity.npz` (plain CSR arrays) and `params.json` into `folder`."""
        similarity = self._fitted_similarity()
        folder.mkdir(parents=True, exist_ok=True)
        write_csr(folder / _SIMILARITY_FILE, similarity)
        write_params(
            folder,
            self.name,
            {
                "fields": list(self.fields),
                "neighbours": self.neighbours,
                "max_features": self.max_features,
                "title_weight": self.title_weight,
                "n_items": int(similarity.shape[0]),
            },
        )

    @classmethod
    def load(cls, folder: Path) -> Self:
        """Read a model written by `save` (ready to score; no text needed).

        Raises:
            ArtifactError: missing files, another model's folder, or mismatched sizes.
        """
        params = read_params(folder, cls.name)
        similarity = read_item_matrix(folder / _SIMILARITY_FILE, params.get("n_items"))
        max_features = params.get("max_features")
        model = cls(
            fields=tuple(params["fields"]),
            neighbours=int(params["neighbours"]),
            max_features=None if max_features is None else int(max_features),
            title_weight=int(params.get("title_weight", 2)),
        )
        model.similarity = sp.csr_matrix(similarity, dtype=np.float32)
        return model

    def _fitted_similarity(self) -> sp.csr_matrix:
        if self.similarity is None:
            raise NotReadyError(
                f"{self.name} model is not fitted; call fit_text() and fit(), or load()"
            )
        return self.similarity


def neighbour_similarity(
    vectors: ItemVectors, neighbours: int, *, max_block_cells: int = _MAX_BLOCK_CELLS
) -> sp.csr_matrix:
    """Top-`neighbours` cosine similarity per item as CSR (n_items, n_items), no diagonal.

    Rows of `vectors` must be L2-normalised (or zero), so <v_i, v_j> is the cosine.
    Row i keeps the `neighbours` largest sim(i, j) > 0 with j != i; among equal
    values the lower j wins. The product V·Vᵀ is formed a block of rows at a time
    (at most `max_block_cells` dense cells), so memory stays bounded for large
    catalogs.

    Args:
        vectors: (n_items, n_features) sparse or dense item vectors.
        neighbours: entries kept per row, >= 1.
        max_block_cells: cells of one dense block of similarities.

    Raises:
        ConfigError: `neighbours` < 1.
    """
    if neighbours < 1:
        raise ConfigError(f"content: neighbours must be >= 1, got {neighbours}")
    n_items = vectors.shape[0]
    transposed: ItemVectors = (
        sp.csr_matrix(vectors.T) if sp.issparse(vectors) else np.ascontiguousarray(vectors.T)
    )
    block_rows = max(1, max_block_cells // max(n_items, 1))
    rows: list[IntArray] = []
    cols: list[IntArray] = []
    values: list[np.ndarray[Any, np.dtype[np.float32]]] = []
    for start in range(0, n_items, block_rows):
        stop = min(start + block_rows, n_items)
        product = vectors[start:stop] @ transposed
        dense = sp.csr_matrix(product).toarray() if sp.issparse(product) else product
        block = np.asarray(dense, dtype=np.float32)
        local = np.arange(stop - start)
        block[local, start + local] = 0.0  # the item itself is not its own neighbour
        block_row, block_col = _top_k_positive(block, neighbours)
        rows.append(block_row + start)
        cols.append(block_col)
        values.append(block[block_row, block_col])
    similarity = sp.csr_matrix(
        (
            np.concatenate(values) if values else np.empty(0, np.float32),
            (
                np.concatenate(rows) if rows else np.empty(0, np.int64),
                np.concatenate(cols) if cols else np.empty(0, np.int64),
            ),
        ),
        shape=(n_items, n_items),
        dtype=np.float32,
    )
    similarity.sort_indices()
    return similarity


def _top_k_positive(
    block: np.ndarray[Any, np.dtype[np.float32]], k: int
) -> tuple[IntArray, IntArray]:
    """(row, column) of each row's `k` largest cells that are > 0, in row-major order.

    Ties at the cut go to the lower column. Cells at or above each row's k-th largest
    value are usually exactly k; only rows with more (ties at a positive cut) are cut
    down exactly, by a running count of the tied cells, leftmost first.
    """
    n_cols = block.shape[1]
    smallest_positive = np.finfo(np.float32).tiny
    if k >= n_cols:
        cut = np.full((block.shape[0], 1), smallest_positive, dtype=np.float32)
    else:
        # np.partition (values only) is several times faster than argpartition here.
        cut = -np.partition(-block, k - 1, axis=1)[:, k - 1 : k]
        cut = np.maximum(cut, smallest_positive)  # zero similarities are never kept
    mask = block >= cut
    tied = np.flatnonzero(mask.sum(axis=1) > k)
    if tied.size:
        sub, sub_cut = block[tied], cut[tied]
        above = sub > sub_cut
        at_cut = sub == sub_cut
        room = k - above.sum(axis=1, keepdims=True)
        mask[tied] = above | (at_cut & (np.cumsum(at_cut, axis=1) <= room))
    row, col = np.nonzero(mask)
    return row.astype(np.int64), col.astype(np.int64)


__all__ = ["DEFAULT_FIELDS", "ContentRecommender", "neighbour_similarity"]
