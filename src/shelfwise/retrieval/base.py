"""The retriever protocols every recommendation and search model implements.

Recommenders score users given their *history rows* (a CSR matrix of weighted
interactions, one row per user, one column per `item_index`), not user indices, so
the same call serves known users, users whose history arrived a second ago, and
evaluation alike. Search indexes score one text query against every item.

Models save to and load from a folder of plain files (`.npy`, `.npz` without pickle,
JSON, bm25s folders). Nothing is pickled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np
import scipy.sparse as sp

from shelfwise._internal.sequences import Sequences

FloatArray = np.ndarray[Any, np.dtype[np.float32]]
IntArray = np.ndarray[Any, np.dtype[np.int64]]


@runtime_checkable
class Recommender(Protocol):
    """A model that scores every item for a batch of users.

    Inputs:
        train: CSR (n_users, n_items) of non-negative interaction weights.
        histories: CSR (batch, n_items) with the same column space.
    """

    name: str

    def fit(self, train: sp.csr_matrix) -> None:
        """Learn from the weighted user-item matrix."""
        ...

    def score(self, histories: sp.csr_matrix) -> FloatArray:
        """Dense (batch, n_items) scores, higher is better; seen items are not masked."""
        ...

    def save(self, folder: Path) -> None:
        """Write the fitted model as plain files into `folder` (created if missing)."""
        ...

    @classmethod
    def load(cls, folder: Path) -> Self:
        """Read a model written by `save`."""
        ...


@runtime_checkable
class SequentialRecommender(Protocol):
    """A model that scores every item from each user's time-ordered history.

    Inputs:
        sequences: per-user item indices, oldest first (see `Sequences`).
        n_items: size of the item space (columns of the score matrix).

    Relations:
        The matrix `Recommender` sees a bag of weighted items; this sees their order.
        Evaluation and serving pass sequences to models of this kind.
    """

    name: str

    def fit_sequences(self, sequences: Sequences, n_items: int) -> None:
        """Learn next-item prediction from the training sequences."""
        ...

    def score_sequences(self, sequences: Sequences) -> FloatArray:
        """Dense (batch, n_items) scores of the next item; seen items not masked."""
        ...

    def save(self, folder: Path) -> None:
        """Write the fitted model as plain files into `folder`."""
        ...

    @classmethod
    def load(cls, folder: Path) -> Self:
        """Read a model written by `save`."""
        ...


@runtime_checkable
class SimilarItems(Protocol):
    """A model that can list items similar to an item."""

    def similar(self, item_index: int, k: int) -> tuple[IntArray, FloatArray]:
        """Up to `k` (item_index, score) pairs, best first, the item itself excluded."""
        ...


@runtime_checkable
class SearchIndex(Protocol):
    """A text search model over the catalog.

    Inputs:
        fields: mapping field name -> list of texts, one per item_index (None = empty).
    """

    name: str

    def fit(self, fields: dict[str, list[str | None]]) -> None:
        """Index the catalog's text fields."""
        ...

    def score(self, query: str) -> FloatArray:
        """Dense (n_items,) relevance scores for one query; 0 means no match."""
        ...

    def save(self, folder: Path) -> None:
        """Write the index as plain files into `folder`."""
        ...

    @classmethod
    def load(cls, folder: Path) -> Self:
        """Read an index written by `save`."""
        ...


BoolArray = np.ndarray[Any, np.dtype[np.bool_]]


@dataclass(frozen=True)
class SearchHits:
    """Items found for one query, best first.

    Attributes:
        items: item indices, best first.
        scores: the final score of each item (higher is better; scale per model).
        explanations: when asked for, per item the features that moved its score the
            most, as (feature name, contribution) pairs, largest magnitude first.
    """

    items: IntArray
    scores: FloatArray
    explanations: list[list[tuple[str, float]]] | None = None


@runtime_checkable
class RankedSearch(Protocol):
    """A search index that retrieves its own candidates and ranks them.

    Relations:
        A plain `SearchIndex` scores every item and the caller takes the top k; a
        `RankedSearch` (hybrid fusion + re-ranker) decides which items are candidates,
        which is how it stays fast on large catalogs.
    """

    def search(
        self,
        query: str,
        k: int,
        *,
        allowed: BoolArray | None = None,
        history: IntArray | None = None,
        explain: bool = False,
    ) -> SearchHits:
        """Up to `k` items for `query` among `allowed` (mask over item_index).

        Args:
            query: free text.
            k: the most items to return.
            allowed: True where an item may be returned (filters); None = all.
            history: item indices the user interacted with, for personalised ranking.
            explain: fill `SearchHits.explanations`.
        """
        ...


def top_k(
    scores: FloatArray,
    k: int,
    *,
    exclude: np.ndarray[Any, np.dtype[np.bool_]] | None = None,
) -> tuple[IntArray, FloatArray]:
    """The `k` best (index, score) pairs of a 1-D score vector, best first.

    Excluded positions (mask True) never appear. Ties break by lower index, so
    results are deterministic. Returns fewer than `k` when fewer items are allowed.
    """
    values = scores.astype(np.float32, copy=True)
    if exclude is not None:
        values[exclude] = -np.inf
    allowed = int(np.isfinite(values).sum())
    k = min(k, allowed)
    if k <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    if k < values.size:
        candidates = np.argpartition(-values, k - 1)[:k]
    else:
        candidates = np.arange(values.size)
    # lexsort: primary key -score, secondary key index (stable tie-break)
    order = np.lexsort((candidates, -values[candidates]))
    chosen = candidates[order][:k].astype(np.int64)
    return chosen, values[chosen]


def top_k_batch(scores: FloatArray, k: int, *, exclude: sp.csr_matrix | None = None) -> IntArray:
    """Row-wise top-k item indices of a (batch, n_items) score matrix, best first.

    `exclude` is a CSR matrix of the same shape whose stored entries are masked.
    Rows with fewer than `k` allowed items are padded with -1.
    """
    values = scores.astype(np.float32, copy=True)
    if exclude is not None:
        coo = exclude.tocoo()
        values[coo.row, coo.col] = -np.inf
    batch, n_items = values.shape
    k_eff = min(k, n_items)
    if k_eff <= 0:
        return np.full((batch, k), -1, dtype=np.int64)
    part = np.argpartition(-values, k_eff - 1, axis=1)[:, :k_eff]
    part_scores = np.take_along_axis(values, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    ranked = np.take_along_axis(part, order, axis=1).astype(np.int64)
    ranked_scores = np.take_along_axis(part_scores, order, axis=1)
    ranked[~np.isfinite(ranked_scores)] = -1
    if k_eff < k:
        ranked = np.pad(ranked, ((0, 0), (0, k - k_eff)), constant_values=-1)
    return ranked


@runtime_checkable
class QueryCached(Protocol):
    """A search index that encodes queries and keeps recent query vectors."""

    def set_query_cache(self, size: int) -> None:
        """Keep the last `size` query vectors; 0 encodes every query."""
        ...


@runtime_checkable
class TextRecommender(Protocol):
    """A recommender that also learns from product text (content-based, cold start)."""

    def fit_text(self, texts: dict[str, list[str | None]]) -> None:
        """Learn item vectors from text fields, one text per item_index; before `fit`."""
        ...


def score_users(
    model: Recommender | SequentialRecommender,
    histories: sp.csr_matrix,
    sequences: Sequences | None,
) -> FloatArray:
    """Scores for a batch of users, whichever input the model reads.

    Args:
        model: a matrix or sequential recommender.
        histories: CSR (batch, n_items) of the users' weighted histories.
        sequences: the same users' time-ordered items (needed by sequential models).
    """
    if isinstance(model, SequentialRecommender):
        if sequences is None:
            raise ValueError(f"{model.name} reads ordered histories; pass sequences")
        return model.score_sequences(sequences)
    return model.score(histories)
