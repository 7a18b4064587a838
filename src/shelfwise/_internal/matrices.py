"""Sparse user-item matrices and ordered sequences from interactions (shared helpers).

Weights of repeated (user, item) events add up: three views and a purchase give
3 * w_view + w_purchase. Evaluation targets are binary and never include an item the
user already has in the history they are scored from (such an item is excluded from
the ranking, so it could never count).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp

from shelfwise._internal.sequences import Sequences
from shelfwise.contracts import ITEM_INDEX, SPLIT, TIMESTAMP, USER_INDEX, WEIGHT


def weighted_matrix(
    interactions: pl.DataFrame,
    n_users: int,
    n_items: int,
    *,
    splits: tuple[str, ...],
    half_life_days: float | None = None,
) -> sp.csr_matrix:
    """Sum of interaction weights per (user, item) over the given splits.

    With `half_life_days`, each weight is multiplied by 0.5 ** (age / half-life), the
    age measured back from the newest event in these splits, so a matrix never sees
    the future of the splits it leaves out.
    """
    # lazily: the filter copies only the columns used, not every column of the frame
    columns = [USER_INDEX, ITEM_INDEX, WEIGHT, SPLIT]
    if half_life_days is not None:
        columns.append(TIMESTAMP)
    rows = (
        interactions.lazy()
        .select(columns)
        .filter(pl.col(SPLIT).is_in(list(splits)) & (pl.col(WEIGHT) > 0))
        .collect()
    )
    weights = rows[WEIGHT].to_numpy().astype(np.float64)
    if half_life_days is not None and rows.height:
        stamps = rows[TIMESTAMP].to_numpy().astype(np.float64)
        age_days = (stamps.max() - stamps) / 86400.0
        weights = weights * np.power(0.5, age_days / half_life_days)
    matrix = sp.csr_matrix(
        (
            weights.astype(np.float32),
            (rows[USER_INDEX].to_numpy(), rows[ITEM_INDEX].to_numpy()),
        ),
        shape=(n_users, n_items),
        dtype=np.float32,
    )
    matrix.sum_duplicates()
    return matrix


def target_matrix(
    interactions: pl.DataFrame, history: sp.csr_matrix, *, split: str
) -> sp.csr_matrix:
    """Binary (user, item) targets of one split, minus items already in `history`."""
    rows = (
        interactions.lazy()
        .select(USER_INDEX, ITEM_INDEX, WEIGHT, SPLIT)
        .filter((pl.col(SPLIT) == split) & (pl.col(WEIGHT) > 0))
        .collect()
    )
    targets = sp.csr_matrix(
        (
            np.ones(rows.height, dtype=np.float32),
            (rows[USER_INDEX].to_numpy(), rows[ITEM_INDEX].to_numpy()),
        ),
        shape=history.shape,
        dtype=np.float32,
    )
    targets.sum_duplicates()
    targets.data[:] = 1.0
    seen = history.copy()
    seen.data[:] = 1.0
    # keep targets where the user has no history weight for the item
    unseen = targets - targets.multiply(seen)
    unseen = sp.csr_matrix(unseen)
    unseen.eliminate_zeros()
    return unseen


def sequences(interactions: pl.DataFrame, n_users: int, *, splits: tuple[str, ...]) -> Sequences:
    """Each user's positive-weight items of the given splits, oldest first.

    `interactions` must already be ordered by user, then time, then input order.
    """
    rows = (
        interactions.lazy()
        .select(USER_INDEX, ITEM_INDEX, WEIGHT, SPLIT)
        .filter(pl.col(SPLIT).is_in(list(splits)) & (pl.col(WEIGHT) > 0))
        .collect()
    )
    return Sequences.from_sorted(
        rows[USER_INDEX].to_numpy().astype(np.int64),
        rows[ITEM_INDEX].to_numpy().astype(np.int64),
        n_users,
    )
