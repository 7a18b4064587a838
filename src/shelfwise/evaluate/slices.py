"""Cold-start slices of an evaluation: how a model does for new users and new items.

"New" is relative to an interaction matrix, normally the one the model was fitted on
(train; train + valid when the model was refitted on both): a new user has no stored
interaction in it, a new item no user with an interaction with it. A stored explicit
zero is not an interaction.

Slices of `slice_metrics`, each with the metrics of `ranking_metrics` plus "users",
the number of users averaged over (users with at least one target in the slice):

    all        every evaluated user, every target
    new_users  the evaluated users without history, every target
    new_items  every evaluated user, targets restricted to new items; users without
               such a target are skipped (recall@K = found new targets / new targets)

A slice without a single user holds only {"users": 0.0}.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from shelfwise.contracts import BoolArray, IntArray
from shelfwise.errors import DataError
from shelfwise.evaluate.metrics import ranking_metrics

SLICES: tuple[str, ...] = ("all", "new_users", "new_items")


def _interactions(matrix: sp.csr_matrix, *, name: str = "train") -> sp.csr_matrix:
    """`matrix` as CSR without stored zeros (a copy: the caller's matrix is untouched)."""
    if not sp.issparse(matrix) or matrix.ndim != 2:
        raise DataError(f"{name} must be a 2-D scipy sparse matrix, got {type(matrix).__name__}")
    csr = sp.csr_matrix(matrix, copy=True)
    csr.eliminate_zeros()
    return csr


def new_users(train: sp.csr_matrix, users: IntArray) -> BoolArray:
    """For each of `users` (row indexes of `train`), True when its row has no interaction.

        new_users[j] = |{i : train[users[j], i] != 0}| == 0

    Raises:
        DataError: `train` is not a 2-D sparse matrix, or a user outside its rows.
    """
    csr = _interactions(train)
    users = np.asarray(users, dtype=np.int64)
    n_users = csr.shape[0]
    if users.size and (users.min() < 0 or users.max() >= n_users):
        raise DataError(
            f"users must be row indexes of train in [0, {n_users}), got values in "
            f"[{users.min()}, {users.max()}]"
        )
    return np.asarray(np.diff(csr.indptr)[users] == 0, dtype=np.bool_)


def new_items(train: sp.csr_matrix) -> BoolArray:
    """For each item (column of `train`), True when no user interacted with it.

        new_items[i] = |{u : train[u, i] != 0}| == 0

    Raises:
        DataError: `train` is not a 2-D sparse matrix.
    """
    csr = _interactions(train)
    counts = np.bincount(csr.indices, minlength=csr.shape[1])
    return np.asarray(counts == 0, dtype=np.bool_)


def slice_metrics(
    ranked: IntArray,
    targets: sp.csr_matrix,
    train: sp.csr_matrix,
    users: IntArray,
    k_values: Sequence[int],
) -> dict[str, dict[str, float]]:
    """Ranking metrics of the "all", "new_users" and "new_items" slices.

    Args:
        ranked: int (len(users), K_max) item indexes, best first, -1 padding; row j is
            the ranking of user `users[j]`.
        targets: CSR (n_users, n_items) of held-out items (every stored non-zero is a
            target), in the row and column space of `train`.
        train: CSR (n_users, n_items) that defines "new" (see the module docstring).
        users: the evaluated users, row indexes of `targets` and `train`.
        k_values: the cut-offs, each >= 1.

    Returns:
        {slice: {"users": count, "recall@10": ..., ...}} for every slice in `SLICES`;
        see `ranking_metrics` for the metrics.

    Raises:
        DataError: shapes disagree, a user outside the matrices, or a K < 1.
    """
    ranked = np.asarray(ranked)
    users = np.asarray(users, dtype=np.int64)
    if ranked.ndim != 2 or ranked.shape[0] != users.size:
        raise DataError(
            f"ranked has shape {ranked.shape} for {users.size} users; it needs one row "
            "per evaluated user"
        )
    if targets.shape != train.shape:
        raise DataError(
            f"targets have shape {targets.shape} but train has {train.shape}; both must "
            "use the same user and item indexes"
        )
    is_new_user = new_users(train, users)
    is_new_item = new_items(train)
    user_targets = _interactions(targets, name="targets")[users]
    new_item_targets = user_targets @ sp.diags(is_new_item.astype(np.float32))
    return {
        "all": _metrics(ranked, user_targets, k_values),
        "new_users": _metrics(ranked[is_new_user], user_targets[is_new_user], k_values),
        "new_items": _metrics(ranked, sp.csr_matrix(new_item_targets), k_values),
    }


def _metrics(
    ranked: IntArray, relevant: sp.csr_matrix, k_values: Sequence[int]
) -> dict[str, float]:
    """`ranking_metrics` plus the user count; {"users": 0.0} when no user has a target."""
    relevant = sp.csr_matrix(relevant, copy=True)
    relevant.eliminate_zeros()
    n_users = int((np.diff(relevant.indptr) > 0).sum())
    if any(k < 1 for k in k_values):
        raise DataError(f"every K must be >= 1, got {list(k_values)}")
    if n_users == 0:
        return {"users": 0.0}
    return {"users": float(n_users), **ranking_metrics(ranked, relevant, k_values)}


__all__ = ["SLICES", "new_items", "new_users", "slice_metrics"]
