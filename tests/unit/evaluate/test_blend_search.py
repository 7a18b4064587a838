"""Blend weights: the simplex grid, its neighbourhoods, and the smoothed pick."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from shelfwise.evaluate.blend_search import (
    grid_neighbours,
    grid_steps,
    search_blend,
    simplex_grid,
    smoothed_values,
)
from shelfwise.evaluate.recommend import EvalSplit
from shelfwise.retrieval.item_knn import ItemKNNRecommender
from shelfwise.retrieval.popularity import PopularityRecommender


@pytest.mark.parametrize(
    ("n_models", "points", "steps"), [(3, 66, 10), (3, 30, 6), (2, 30, 29), (6, 66, 3), (3, 1, 1)]
)
def test_grid_is_as_fine_as_the_points_allow(n_models: int, points: int, steps: int) -> None:
    assert grid_steps(n_models, points) == steps
    grid = list(simplex_grid(n_models, steps))
    assert len(grid) == math.comb(steps + n_models - 1, n_models - 1)
    assert len(set(grid)) == len(grid)
    assert all(sum(point) == steps and min(point) >= 0 for point in grid)
    assert grid[0] == (steps,) + (0,) * (n_models - 1)  # the first model alone first


def test_neighbours_move_one_step_of_weight() -> None:
    assert sorted(grid_neighbours((2, 0, 0))) == [(1, 0, 1), (1, 1, 0)]
    assert sorted(grid_neighbours((1, 1, 0))) == [(0, 1, 1), (0, 2, 0), (1, 0, 1), (2, 0, 0)]


def test_smoothing_prefers_a_plateau_to_a_lone_spike() -> None:
    values = dict.fromkeys(simplex_grid(2, 6), 0.0)
    values[(6, 0)] = 0.9  # a spike next to poor points
    values.update({(2, 4): 0.6, (3, 3): 0.7, (4, 2): 0.6})  # a plateau
    smoothed = smoothed_values(values)
    assert max(values, key=lambda p: values[p]) == (6, 0)
    assert max(smoothed, key=lambda p: smoothed[p]) == (3, 3)
    assert smoothed[(3, 3)] == pytest.approx((0.6 + 0.7 + 0.6) / 3)
    assert smoothed[(6, 0)] == pytest.approx((0.9 + 0.0) / 2)


def test_search_blend_records_every_point_and_returns_the_selected_one() -> None:
    rng = np.random.default_rng(0)
    train = sp.csr_matrix((rng.random((40, 12)) < 0.3).astype(np.float32))
    targets = sp.csr_matrix((rng.random((40, 12)) < 0.15).astype(np.float32) - train)
    targets.data[targets.data < 0] = 0.0
    targets.eliminate_zeros()
    users = np.flatnonzero(targets.getnnz(axis=1) > 0).astype(np.int64)
    valid = EvalSplit(train, None, targets, users)  # type: ignore[arg-type]
    models = {"popularity": PopularityRecommender(), "item_knn": ItemKNNRecommender(neighbours=3)}
    for model in models.values():
        model.fit(train)
    blend, value, records = search_blend(models, valid, metric="ndcg@5", trials=11)
    assert len(records) == 11  # steps of 0.1 for two models
    selected = [r for r in records if r["selected"]]
    assert len(selected) == 1
    assert value == selected[0]["value"]
    assert blend.weights == {n: w for n, w in selected[0]["weights"].items() if w > 0}
    assert math.isclose(sum(blend.weights.values()), 1.0)
    best_smoothed = max(r["smoothed_value"] for r in records)
    assert selected[0]["smoothed_value"] == best_smoothed
    again = search_blend(models, valid, metric="ndcg@5", trials=11)
    assert again[0].weights == blend.weights  # deterministic
