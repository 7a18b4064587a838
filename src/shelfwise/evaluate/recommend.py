"""Offline evaluation of recommenders: full ranking over the catalog, seen items excluded.

For the valid split, models score each user's train history; for test, the train +
valid history (the model itself was fitted on train only). Items in the history are
excluded from the ranking, and targets never include them. Every user with at least
one target counts once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from shelfwise._internal import progress
from shelfwise.evaluate.metrics import average_popularity, catalog_coverage, ranking_metrics
from shelfwise.retrieval.base import IntArray, Recommender, top_k_batch

# Score matrices are dense (batch, n_items) float32: keep a batch near 100 MB.
_MAX_BATCH_CELLS = 25_000_000


def evaluation_users(
    targets: sp.csr_matrix, *, max_users: int | None, seed: int
) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Users with at least one target, optionally a seeded sample of them (sorted)."""
    users = np.flatnonzero(targets.getnnz(axis=1) > 0).astype(np.int64)
    if max_users is not None and users.size > max_users:
        rng = np.random.default_rng(seed)
        users = np.sort(rng.choice(users, size=max_users, replace=False))
    return users


def rank_users(
    model: Recommender,
    history: sp.csr_matrix,
    users: np.ndarray[Any, np.dtype[np.int64]],
    k: int,
    *,
    label: str,
) -> IntArray:
    """Top-`k` item indices for each user (rows of `history`), seen items excluded."""
    n_items = history.shape[1]
    batch = max(1, min(4096, _MAX_BATCH_CELLS // max(n_items, 1)))
    starts = range(0, users.size, batch)
    ranked = np.full((users.size, k), -1, dtype=np.int64)
    for start in progress.track(starts, label, total=len(starts)):
        rows = history[users[start : start + batch]]
        scores = model.score(rows)
        ranked[start : start + batch] = top_k_batch(scores, k, exclude=rows)
    return ranked


def evaluate_recommender(
    model: Recommender,
    history: sp.csr_matrix,
    targets: sp.csr_matrix,
    users: np.ndarray[Any, np.dtype[np.int64]],
    k_values: list[int],
    *,
    item_popularity: np.ndarray[Any, np.dtype[np.float64]],
    label: str,
) -> dict[str, float]:
    """Ranking metrics at every K, plus coverage and average popularity at the largest K."""
    if users.size == 0:
        return {}
    k_max = max(k_values)
    ranked = rank_users(model, history, users, k_max, label=label)
    metrics = ranking_metrics(ranked, targets[users], k_values)
    n_items = history.shape[1]
    for k in k_values:
        metrics[f"coverage@{k}"] = catalog_coverage(ranked, n_items, k)
    metrics[f"avg_popularity@{k_max}"] = average_popularity(ranked, item_popularity, k_max)
    return {name: float(value) for name, value in metrics.items()}
