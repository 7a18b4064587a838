"""Search blend weights on the validation split.

The best `max_models` single matrix models (by the primary metric on valid) are
scored once on a seeded sample of validation users (all of them when the cached scores
fit in memory); then every weight vector of a regular grid on the simplex (weights
≥ 0 summing to 1, in steps of 1/`steps`) is scored: a cheap weighted sum plus top-k
on the cached, min-max-normalised scores. The grid is as fine as `trials` points allow
(3 models: 66 points at steps of 0.1).

The pick is the grid point with the best *smoothed* value: the mean of its own value
and those of its grid neighbours (one step of weight moved from one model to another).
With a thousand validation users the metric's noise is as large as the differences
between nearby weights, and the raw best point is the one most flattered by that
noise (the winner's curse); the middle of a good plateau carries over to test better.
Deterministic: no sampler, ties keep the first point in grid order.

The caller evaluates the winning blend on the whole validation split like any model
and keeps it only when it beats the best single model there.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from shelfwise.contracts import FloatArray
from shelfwise.evaluate.metrics import parse_metric, ranking_metrics
from shelfwise.evaluate.recommend import EvalSplit
from shelfwise.retrieval.base import Recommender, UserHistories, top_k_unseen
from shelfwise.retrieval.blend import BlendRecommender, normalise_rows

# Cached normalised scores: models × users × items float32; keep it near 400 MB.
_MAX_CACHE_CELLS = 100_000_000

Point = tuple[int, ...]


def grid_steps(n_models: int, points: int) -> int:
    """The finest steps s whose simplex grid, C(s + m − 1, m − 1) points, has ≤ `points`.

    At least 1 (the m corners: each model alone).
    """
    steps = 1
    while math.comb(steps + 1 + n_models - 1, n_models - 1) <= points:
        steps += 1
    return steps


def simplex_grid(n_models: int, steps: int) -> Iterator[Point]:
    """Every tuple of `n_models` non-negative integers summing to `steps`, in lexical order
    with the first model's share first (largest first)."""
    if n_models == 1:
        yield (steps,)
        return
    for first in range(steps, -1, -1):
        for rest in simplex_grid(n_models - 1, steps - first):
            yield (first, *rest)


def grid_neighbours(point: Point) -> Iterator[Point]:
    """Points one step away: one unit of weight moved from model i to model j."""
    for i, share in enumerate(point):
        if share == 0:
            continue
        for j in range(len(point)):
            if j != i:
                moved = list(point)
                moved[i] -= 1
                moved[j] += 1
                yield tuple(moved)


def smoothed_values(values: dict[Point, float]) -> dict[Point, float]:
    """Each point's mean of its own value and its grid neighbours' values."""
    smoothed = {}
    for point, value in values.items():
        around = [values[n] for n in grid_neighbours(point) if n in values]
        smoothed[point] = (value + sum(around)) / (1 + len(around))
    return smoothed


def search_blend(
    models: dict[str, Recommender], valid: EvalSplit, *, metric: str, trials: int
) -> tuple[BlendRecommender, float, list[dict[str, Any]]]:
    """Smoothed-best weights for `models` on a sample of `valid`.

    Args:
        models: the candidate components.
        valid: the validation split (its users are already a seeded sample).
        metric: the primary metric, e.g. "ndcg@10".
        trials: most grid points scored (sets the grid's step).

    Returns:
        The blend, its metric on the sample, and every grid point (weights, value,
        smoothed value, whether it was selected).
    """
    _, k = parse_metric(metric)
    n_items = valid.history.shape[1]
    sample = valid.subset(
        max(1, min(valid.users.size, _MAX_CACHE_CELLS // (n_items * len(models))))
    )
    histories = UserHistories.select(sample.history, sample.sequences, sample.users)
    excluded = sample.excluded_rows(sample.users)
    targets = sample.targets[sample.users]
    cached: list[FloatArray] = [normalise_rows(model.score(histories)) for model in models.values()]
    names = list(models)
    steps = grid_steps(len(names), max(trials, len(names)))

    values: dict[Point, float] = {}
    for point in simplex_grid(len(names), steps):
        total = np.zeros_like(cached[0])
        for share, scores in zip(point, cached, strict=True):
            if share:
                total += np.float32(share / steps) * scores
        ranked, _ = top_k_unseen(total, k, seen=excluded)
        values[point] = float(ranking_metrics(ranked, targets, [k]).get(metric, 0.0))
    smoothed = smoothed_values(values)
    best = max(smoothed, key=lambda point: smoothed[point])  # max keeps the first of ties
    records = [
        {
            "weights": {name: share / steps for name, share in zip(names, point, strict=True)},
            "value": value,
            "smoothed_value": smoothed[point],
            "selected": point == best,
        }
        for point, value in values.items()
    ]
    chosen = {name: share / steps for name, share in zip(names, best, strict=True) if share}
    blend = BlendRecommender(chosen, {name: models[name] for name in chosen})
    return blend, values[best], records
