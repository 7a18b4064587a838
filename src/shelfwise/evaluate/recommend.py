"""Offline evaluation of recommenders: full ranking over the catalog, seen items excluded.

For the valid split, models score each user's train history; for test, the train +
valid history (the model itself was fitted on train only). Items in the history are
excluded from the ranking, and targets never include them, unless the repeat policy
lets lists hold them (`EvalSplit.exclude_seen` False, targets with repeats kept; see
`shelfwise.evaluate.repeat`). Every user with at least one target counts once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from shelfwise._internal import progress
from shelfwise._internal.sequences import Sequences
from shelfwise.compute import Executor, LocalExecutor
from shelfwise.contracts import IntArray
from shelfwise.evaluate.metrics import average_popularity, catalog_coverage, ranking_metrics
from shelfwise.retrieval.base import Recommender, UserHistories, recommend_top_k

# Score matrices are dense (batch, n_items) float32: keep a batch near 100 MB.
_MAX_BATCH_CELLS = 25_000_000
# Scoring on catalogs up to this size runs with one BLAS thread: matrices that small
# gain little from BLAS threads, and on a shared 2-core machine the threads' waiting
# costs up to 10x (ml-100k, load 4: an EASE fit 0.2 s on one thread, 0.6-4.9 s on two;
# ALS with 256 factors scoring 943 users 2.4 s against 25 s). Tuning trials and the
# blend search use it.
ONE_BLAS_THREAD_MAX_ITEMS = 4096


@dataclass(frozen=True)
class EvalSplit:
    """What one split's evaluation reads: histories, their order, targets, users."""

    history: sp.csr_matrix  # what models score from
    sequences: Sequences  # the same, in time order (sequential models)
    targets: sp.csr_matrix
    users: IntArray
    seen: sp.csr_matrix | None = None  # excluded from rankings; None = `history`
    # False: the repeat policy lets lists hold seen items (targets then keep repeats)
    exclude_seen: bool = True

    @property
    def excluded(self) -> sp.csr_matrix:
        """Items never ranked for a user: `seen`, or the history itself."""
        return self.history if self.seen is None else self.seen

    def excluded_rows(self, users: IntArray) -> sp.csr_matrix | None:
        """The rows of `excluded` for `users`; None when seen items may be listed."""
        return self.excluded[users] if self.exclude_seen else None

    def subset(self, count: int) -> EvalSplit:
        """The first `count` users only (users are a seeded sample, so a random subset)."""
        return EvalSplit(
            self.history,
            self.sequences,
            self.targets,
            self.users[:count],
            self.seen,
            self.exclude_seen,
        )


def evaluation_users(
    targets: sp.csr_matrix, *, max_users: int | None, seed: int
) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Users with at least one target, optionally a seeded sample of them (shuffled)."""
    users = np.flatnonzero(targets.getnnz(axis=1) > 0).astype(np.int64)
    rng = np.random.default_rng(seed)
    if max_users is not None and users.size > max_users:
        return rng.choice(users, size=max_users, replace=False).astype(np.int64)
    return rng.permutation(users).astype(np.int64)


def block_size(n_items: int, max_cells: int = _MAX_BATCH_CELLS) -> int:
    """Users scored at once so that a block of dense scores holds at most `max_cells`."""
    return max(1, min(4096, max_cells // max(n_items, 1)))


def rank_block(model: Recommender, split: EvalSplit, users: IntArray, k: int) -> IntArray:
    """Top-`k` item indices of one block of users (a plain unit of work: one block of
    users in, their lists out, so blocks can run anywhere and in any order)."""
    histories = UserHistories.select(split.history, split.sequences, users)
    items, _ = recommend_top_k(
        model, histories, k, seen=split.excluded_rows(users), exclude_seen=split.exclude_seen
    )
    return items


def rank_users(
    model: Recommender,
    split: EvalSplit,
    k: int,
    *,
    label: str,
    block_users: int | None = None,
    executor: Executor | None = None,
) -> IntArray:
    """Top-`k` item indices for each user of the split, seen items excluded.

    Users are scored a block at a time (`block_users`, default: as many as keep a dense
    score block near 100 MB), so memory does not grow with the number of users. A
    user's list does not depend on the block it was scored in (for models scoring
    through dense BLAS products, up to float rounding, which can swap near-ties).

    Args:
        executor: where the blocks run (`shelfwise.compute.open_executor`); None = in
            this process. With Ray the model and the split are put in the object store
            once and every block is a task (`rank_block_task`).
    """
    batch = block_users or block_size(split.history.shape[1])
    users = split.users
    starts = range(0, users.size, batch)
    ranked = np.full((users.size, k), -1, dtype=np.int64)
    blocks = [users[start : start + batch] for start in starts]
    results = (executor or LocalExecutor()).imap(
        rank_block_task, blocks, (model, split, k), what=f"{label}: user block"
    )
    for start, items in zip(starts, progress.track(results, label, total=len(starts)), strict=True):
        ranked[start : start + batch] = items
    return ranked


def rank_block_task(users: IntArray, shared: tuple[Recommender, EvalSplit, int]) -> IntArray:
    """`rank_block` as an executor's unit of work: (model, split, k) is the shared input."""
    model, split, k = shared
    return rank_block(model, split, users, k)


def evaluate_recommender(
    model: Recommender,
    split: EvalSplit,
    k_values: list[int],
    *,
    item_popularity: np.ndarray[Any, np.dtype[np.float64]],
    label: str,
    executor: Executor | None = None,
) -> tuple[dict[str, float], IntArray]:
    """Ranking metrics at every K, plus coverage and average popularity at the largest K.

    Args:
        executor: where the user blocks are scored (see `rank_users`); None = here.

    Returns:
        The metrics, and the ranked lists (users in `split.users` order).
    """
    k_max = max(k_values)
    if split.users.size == 0:
        return {}, np.empty((0, k_max), dtype=np.int64)
    ranked = rank_users(model, split, k_max, label=label, executor=executor)
    metrics = ranking_metrics(ranked, split.targets[split.users], k_values)
    n_items = split.history.shape[1]
    for k in k_values:
        metrics[f"coverage@{k}"] = catalog_coverage(ranked, n_items, k)
    metrics[f"avg_popularity@{k_max}"] = average_popularity(ranked, item_popularity, k_max)
    return {name: float(value) for name, value in metrics.items()}, ranked
