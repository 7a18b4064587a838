"""The retriever protocols every recommendation and search model implements.

Recommenders score a batch of users given their *histories* (`UserHistories`: a CSR
matrix of weighted interactions, one row per user, one column per `item_index`, plus,
when known, each user's items in time order), not user indices, so the same call
serves known users, users whose history arrived a second ago, and evaluation alike.
Matrix models read the rows; sequential models (SASRec and its ONNX export) read the
ordered items. Which k items a user gets, with seen and blocked items left out, is
decided in one place: `top_k_unseen` (over scores) and `recommend_top_k` (a model's).
Search indexes score one text query against every item.

Models save to and load from a folder of plain files (`.npy`, `.npz` without pickle,
JSON, bm25s folders). Nothing is pickled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Self, TypeAlias, runtime_checkable

import numpy as np
import scipy.sparse as sp

from shelfwise._internal.sequences import Sequences
from shelfwise.contracts import BoolArray, FloatArray, IntArray
from shelfwise.errors import DataError
from shelfwise.retrieval._select import select_top_k


class UserHistories:
    """A batch of users' histories: weighted CSR rows and, when known, their order.

    Attributes:
        rows: CSR (batch, n_items) of non-negative interaction weights.
        sequences: the same users' item indices, oldest first (`Sequences`, one row
            per user), or None when the caller has no order. Read by sequential
            models only; with `select` they are sliced on first read, so batches for
            matrix models never pay for them.

    Example:
        >>> import scipy.sparse as sp
        >>> batch = UserHistories(sp.csr_matrix([[1.0, 0.0, 2.0]]))
        >>> batch.n_users, batch.n_items, batch.sequences is None
        (1, 3, True)
    """

    __slots__ = ("_rows", "_sequences", "_source", "_users")

    def __init__(self, rows: sp.csr_matrix, sequences: Sequences | None = None) -> None:
        """Wrap one batch's rows and (optional) sequences, one per row."""
        self._rows = rows
        self._sequences = sequences
        self._source: Sequences | None = None
        self._users: IntArray | None = None

    @classmethod
    def select(
        cls, matrix: sp.csr_matrix, sequences: Sequences | None, users: IntArray
    ) -> UserHistories:
        """Rows `users` of `matrix` and, sliced when first read, the same users' sequences.

        Args:
            matrix: CSR (n_users, n_items) of every user.
            sequences: every user's ordered items (None: unknown).
            users: the user indices of the batch, in batch order.
        """
        batch = cls(matrix[users])
        batch._source = sequences
        batch._users = np.asarray(users, dtype=np.int64)
        return batch

    @property
    def rows(self) -> sp.csr_matrix:
        """CSR (batch, n_items) of interaction weights."""
        return self._rows

    @property
    def sequences(self) -> Sequences | None:
        """The batch's ordered items, one row per user; None when unknown."""
        if self._sequences is None and self._source is not None and self._users is not None:
            self._sequences = self._source.take(self._users)
            self._source = None
        return self._sequences

    @property
    def n_users(self) -> int:
        """Users (rows) in the batch."""
        return int(self._rows.shape[0])

    @property
    def n_items(self) -> int:
        """Size of the item space (columns)."""
        return int(self._rows.shape[1])

    def ordered(self, *, model: str) -> Sequences:
        """The sequences, for a model that needs them.

        Raises:
            DataError: the batch carries no order.
        """
        sequences = self.sequences
        if sequences is None:
            raise DataError(
                f"{model} reads ordered histories; pass UserHistories(rows, sequences) "
                "with each user's items oldest first"
            )
        return sequences


# What `fit` and `score` accept: a bare CSR matrix is rows without an order.
Histories: TypeAlias = UserHistories | sp.csr_matrix


def history_rows(histories: Histories) -> sp.csr_matrix:
    """The CSR rows of `histories` (a bare matrix is returned as it is)."""
    return histories.rows if isinstance(histories, UserHistories) else histories


def as_user_histories(histories: Histories) -> UserHistories:
    """`histories` as `UserHistories` (a bare matrix: rows without an order)."""
    return histories if isinstance(histories, UserHistories) else UserHistories(histories)


@runtime_checkable
class Recommender(Protocol):
    """A model that scores every item for a batch of users.

    Inputs:
        train: `UserHistories` of every training user (n_users, n_items); weights
            are non-negative. A bare CSR matrix stands for rows without an order.
        histories: `UserHistories` (batch, n_items) in the same column space.

    Relations:
        Matrix models (popularity, kNN, EASE, ALS, ...) read `rows`; sequential ones
        (`SequentialRecommender`: SASRec, its ONNX export) read `sequences` and raise
        `DataError` without them. Compressed variants implement this protocol too.
        `recommend_top_k` turns scores into each user's k best unseen items.
    """

    name: str

    def fit(self, train: Histories) -> None:
        """Learn from the training histories."""
        ...

    def score(self, histories: Histories) -> FloatArray:
        """Dense (batch, n_items) scores, higher is better; seen items are not masked."""
        ...

    def save(self, folder: Path) -> None:
        """Write the fitted model as plain files into `folder` (created if missing)."""
        ...

    @classmethod
    def load(cls, folder: Path) -> Self:
        """Read a model written by `save`."""
        ...


# Loads a saved recommender from (registered name, folder).
RecommenderLoader = Callable[[str, Path], Recommender]


@runtime_checkable
class SequentialRecommender(Recommender, Protocol):
    """A recommender that reads the time order of histories (`UserHistories.sequences`).

    Inputs:
        sequences: per-user item indices, oldest first (see `Sequences`).
        n_items: size of the item space (columns of the score matrix).

    Relations:
        A `Recommender` like any other: `fit` and `score` read the order from
        `UserHistories`. `fit_sequences` / `score_sequences` are the same on bare
        sequences. Callers use this protocol only where order is policy (blends fuse
        matrix models only; sequential models early-stop on valid events, so they are
        not refitted on them), never to choose how to score.
    """

    def fit_sequences(self, sequences: Sequences, n_items: int) -> None:
        """Learn next-item prediction from the training sequences."""
        ...

    def score_sequences(self, sequences: Sequences) -> FloatArray:
        """Dense (batch, n_items) scores of the next item; seen items not masked."""
        ...


@runtime_checkable
class SimilarItems(Protocol):
    """A model that can list items similar to an item."""

    def similar(self, item_index: int, k: int) -> tuple[IntArray, FloatArray]:
        """Up to `k` (item_index, score) pairs, best first, the item itself excluded."""
        ...


@runtime_checkable
class SearchIndex(Protocol):
    """A text search model over the catalog: one score per item for a query.

    What loading, offline evaluation and serving need. How an index is built is its
    own business: plain indexes fit on the catalog's text (`TextSearchIndex`); the
    hybrid index (`shelfwise.search.hybrid.HybridSearch`) is assembled from fitted
    ones by the search stage, so it has no `fit`.
    """

    name: str

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


@runtime_checkable
class TextSearchIndex(SearchIndex, Protocol):
    """A search index fitted on the catalog's text fields (BM25, dense).

    Inputs:
        fields: mapping field name -> list of texts, one per item_index (None = empty).
    """

    def fit(self, fields: dict[str, list[str | None]]) -> None:
        """Index the catalog's text fields."""
        ...


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


def top_k_unseen(
    scores: FloatArray,
    k: int,
    *,
    seen: sp.csr_matrix | None,
    exclude: BoolArray | sp.csr_matrix | None = None,
) -> tuple[IntArray, FloatArray]:
    """Each row's `k` best items of a (batch, n_items) score matrix, seen items left out.

    The one place where recommendation lists leave out what a user has (`seen`) and
    what a caller blocks (`exclude`): evaluation, tuning, blend search, candidate
    retrieval and compression all rank through it.

    Args:
        scores: (batch, n_items), higher is better; -inf and NaN are never listed.
        k: items per row.
        seen: CSR (batch, n_items) whose stored entries are never listed (usually the
            history rows themselves); None leaves nothing out.
        exclude: further items never listed: a bool mask over item_index (n_items,)
            for every row, a bool (batch, n_items) mask, or a CSR whose stored entries
            are masked.

    Returns:
        (batch, k) item indices, best first, ties by lower index, -1 where a row has
        fewer than `k` allowed items; and their scores as float32 (-inf at padding).
    """
    values = scores.astype(np.float32, copy=True)
    for masked in (seen, exclude):
        if masked is None:
            continue
        if sp.issparse(masked):
            coo = sp.coo_matrix(masked)
            values[coo.row, coo.col] = -np.inf
        else:
            mask = np.asarray(masked, dtype=np.bool_)
            if mask.ndim == 1:
                values[:, mask] = -np.inf
            else:
                values[mask] = -np.inf
    batch, n_items = values.shape
    k_eff = min(k, n_items)
    if k_eff <= 0:
        return np.full((batch, k), -1, dtype=np.int64), np.full((batch, k), -np.inf, np.float32)
    values[np.isnan(values)] = -np.inf  # NaN is never listed (numpy sorts it highest)
    part = select_top_k(values, k_eff)
    part_scores = np.take_along_axis(values, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    ranked = np.take_along_axis(part, order, axis=1).astype(np.int64)
    ranked_scores = np.take_along_axis(part_scores, order, axis=1)
    padding = ~np.isfinite(ranked_scores)
    ranked[padding] = -1
    ranked_scores[padding] = -np.inf
    if k_eff < k:
        ranked = np.pad(ranked, ((0, 0), (0, k - k_eff)), constant_values=-1)
        ranked_scores = np.pad(ranked_scores, ((0, 0), (0, k - k_eff)), constant_values=-np.inf)
    return ranked, ranked_scores


def recommend_top_k(
    model: Recommender,
    histories: Histories,
    k: int,
    *,
    seen: sp.csr_matrix | None = None,
    exclude: BoolArray | sp.csr_matrix | None = None,
    exclude_seen: bool = True,
) -> tuple[IntArray, FloatArray]:
    """The `k` best unseen items of each user by `model`'s scores (see `top_k_unseen`).

    Args:
        model: any fitted recommender.
        histories: the users' histories (with sequences for sequential models).
        k: items per user.
        seen: CSR (batch, n_items) of the items never listed; default the history
            rows themselves (every stored entry).
        exclude: further items never listed (filters, blocked items).
        exclude_seen: False lists seen items too (`seen` is then ignored).

    Returns:
        (batch, k) item indices (-1 padding) and their scores (-inf padding).
    """
    batch = as_user_histories(histories)
    scores = np.asarray(model.score(batch), dtype=np.float32)
    if not exclude_seen:
        seen = None
    elif seen is None:
        seen = batch.rows
    return top_k_unseen(scores, k, seen=seen, exclude=exclude)


def top_k_batch(scores: FloatArray, k: int, *, exclude: sp.csr_matrix | None = None) -> IntArray:
    """Deprecated: `top_k_unseen(scores, k, seen=exclude)[0]`.

    Row-wise top-k item indices, best first, -1 padding; `exclude`'s stored entries
    are masked. Kept for callers not yet moved to `top_k_unseen`.
    """
    return top_k_unseen(scores, k, seen=exclude)[0]


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
    model: Recommender,
    histories: sp.csr_matrix,
    sequences: Sequences | None,
) -> FloatArray:
    """Deprecated: `model.score(UserHistories(histories, sequences))`.

    Kept for callers not yet moved to `UserHistories`; raises `DataError` (a
    `ValueError`) when a sequential model gets no sequences.
    """
    return model.score(UserHistories(histories, sequences))
