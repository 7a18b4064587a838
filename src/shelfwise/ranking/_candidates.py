"""Candidate lists and labelled pairs for training and evaluating the click model (batch role)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from shelfwise._internal import progress
from shelfwise._internal.sequences import Sequences
from shelfwise.contracts import FloatArray, IntArray
from shelfwise.ranking.features import ItemTable, UserTable, candidate_ranks, pair_features
from shelfwise.retrieval.base import Recommender, UserHistories, recommend_top_k

# Dense score matrices are (batch, n_items) float32: keep a batch near 100 MB.
_MAX_BATCH_CELLS = 25_000_000


@dataclass(frozen=True)
class Candidates:
    """The retriever's top-N items of some users (unseen ones unless repeats), best first.

    Attributes:
        users: (b,) user_index of each row.
        items: (b, N) item_index, -1 padding.
        scores: (b, N) the retriever's scores (-inf at padding).
        histories: CSR (b, n_items) the history rows the retriever scored.
    """

    users: IntArray
    items: IntArray
    scores: FloatArray
    histories: sp.csr_matrix

    @property
    def pairs(self) -> tuple[IntArray, IntArray]:
        """(row, column) of every non-padding entry, row-major."""
        rows, columns = np.nonzero(self.items >= 0)
        return rows.astype(np.int64), columns.astype(np.int64)


def retrieve(
    model: Recommender,
    history: sp.csr_matrix,
    users: IntArray,
    n: int,
    *,
    sequences: Sequences | None,
    label: str,
    exclude_seen: bool = True,
) -> Candidates:
    """Top-`n` unseen items of `users` (rows of `history`) by the retriever's score.

    Args:
        model: a fitted recommender.
        history: CSR (n_users, n_items) the retriever scores.
        users: the user indices to retrieve for.
        n: candidates per user.
        sequences: every user's ordered history (read by sequential models only).
        label: progress label.
        exclude_seen: False lists the users' own items too (repeat policy `allow`).
    """
    n_items = history.shape[1]
    batch = max(1, min(4096, _MAX_BATCH_CELLS // max(n_items, 1)))
    items = np.full((users.size, n), -1, dtype=np.int64)
    scores = np.full((users.size, n), -np.inf, dtype=np.float32)
    starts = range(0, users.size, batch)
    for start in progress.track(starts, label, total=len(starts)):
        chunk = users[start : start + batch]
        ranked, values = recommend_top_k(
            model,
            UserHistories.select(history, sequences, chunk),
            n,
            exclude_seen=exclude_seen,
        )
        items[start : start + chunk.size] = ranked
        scores[start : start + chunk.size] = values
    return Candidates(users=users, items=items, scores=scores, histories=history[users])


def ordered_histories(features: Path, cutoff: str) -> Sequences | None:
    """The features folder's time-ordered histories of a cutoff ("train", "train_valid").

    Read by sequential retrievers only; None for a folder without them (the features
    stage always writes them), and a sequential retriever then refuses to score.
    """
    path = features / f"{cutoff}_seq.npz"
    return Sequences.load(path) if path.is_file() else None


@dataclass(frozen=True)
class PairSet:
    """Labelled (user, candidate) pairs with their feature rows.

    Attributes:
        candidates: the lists the pairs come from.
        rows, columns: position of each pair in `candidates.items`.
        features: (m, n_features) float32.
        labels: (m,) 1 when the item is among the user's targets, else 0.
    """

    candidates: Candidates
    rows: IntArray
    columns: IntArray
    features: FloatArray
    labels: np.ndarray[Any, np.dtype[np.int8]]

    @property
    def users(self) -> IntArray:
        """The user_index of each pair."""
        return self.candidates.users[self.rows]

    @property
    def items(self) -> IntArray:
        """The item_index of each pair."""
        return self.candidates.items[self.rows, self.columns]

    def subset(self, keep_rows: np.ndarray[Any, np.dtype[np.bool_]]) -> PairSet:
        """The pairs of the candidate rows where `keep_rows` is True."""
        mask = keep_rows[self.rows]
        old_to_new = np.cumsum(keep_rows) - 1
        source = self.candidates
        chosen = np.flatnonzero(keep_rows)
        return PairSet(
            candidates=Candidates(
                users=source.users[chosen],
                items=source.items[chosen],
                scores=source.scores[chosen],
                histories=source.histories[chosen],
            ),
            rows=old_to_new[self.rows[mask]].astype(np.int64),
            columns=self.columns[mask],
            features=self.features[mask],
            labels=self.labels[mask],
        )

    def grid(self, values: FloatArray) -> FloatArray:
        """Per-pair values laid out like `candidates.items` (NaN at padding)."""
        out = np.full(self.candidates.items.shape, np.nan, dtype=np.float32)
        out[self.rows, self.columns] = values
        return out


def labelled_pairs(
    candidates: Candidates,
    targets: sp.csr_matrix,
    items_table: ItemTable,
    users_table: UserTable,
) -> PairSet:
    """Features and labels of every candidate pair.

    Args:
        candidates: the retriever's lists.
        targets: CSR (n_users, n_items) binary targets of the split the labels come from.
        items_table: the item table of the history cutoff.
        users_table: the same cutoff's user table (recency and repurchase features).
    """
    rows, columns = candidates.pairs
    items = candidates.items[rows, columns]
    features = pair_features(
        items_table,
        candidates.histories,
        rows,
        items,
        retriever_scores=candidates.scores[rows, columns],
        retriever_ranks=candidate_ranks(candidates.scores)[rows, columns],
        top_scores=np.where(candidates.items[:, 0] >= 0, candidates.scores[:, 0], np.nan).astype(
            np.float32
        ),
        user_days_since_last=users_table.days_since_last(candidates.users),
        days_since_bought=users_table.days_since_bought(candidates.users[rows], items),
    )
    labels = is_target(targets, candidates.users[rows], items)
    return PairSet(
        candidates=candidates,
        rows=rows,
        columns=columns,
        features=features,
        labels=labels,
    )


def is_target(
    targets: sp.csr_matrix, users: IntArray, items: IntArray
) -> np.ndarray[Any, np.dtype[np.int8]]:
    """1 where (users[p], items[p]) is a stored positive entry of `targets`, else 0."""
    truth = sp.csr_matrix(targets)
    truth.sort_indices()
    n_items = truth.shape[1]
    stored_rows = np.repeat(np.arange(truth.shape[0], dtype=np.int64), np.diff(truth.indptr))
    positive = truth.data > 0
    keys = (stored_rows * n_items + truth.indices.astype(np.int64))[positive]
    wanted = users.astype(np.int64) * n_items + items.astype(np.int64)
    if keys.size == 0:
        return np.zeros(wanted.size, dtype=np.int8)
    positions = np.minimum(np.searchsorted(keys, wanted), keys.size - 1)
    labels: np.ndarray[Any, np.dtype[np.int8]] = (keys[positions] == wanted).astype(np.int8)
    return labels
