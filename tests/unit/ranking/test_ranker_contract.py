"""The contract both rankers pass: candidates with features in, one score each out.

Cases: the click model with a LightGBM scorer and with an MLP scorer (`ClickModel`,
recommendations) and LambdaMART (`SearchReranker`, search). Each is built on seeded
random feature rows of its own width; the MLP's weights are fixed random numbers, so
no torch is needed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from shelfwise.errors import DataError
from shelfwise.ranking import FEATURE_NAMES, ClickModel, ItemTable, UserTable
from shelfwise.ranking.base import Ranker
from shelfwise.ranking.model import LightGBMScorer, MLPScorer, Scorer
from shelfwise.search.features import SEARCH_FEATURE_NAMES
from shelfwise.search.lambdamart import SearchReranker


def _rows(width: int, count: int = 300, seed: int = 0) -> np.ndarray:
    """Seeded feature rows with a few missing values (NaN)."""
    rng = np.random.default_rng(seed)
    rows = rng.normal(size=(count, width)).astype(np.float32)
    rows[rng.random(rows.shape) < 0.05] = np.nan
    return rows


def _tables(n_items: int = 5) -> tuple[ItemTable, UserTable]:
    zeros = np.zeros(n_items, dtype=np.float32)
    items = ItemTable(
        popularity=zeros,
        weight_share=zeros,
        recent_events=zeros,
        log_price=zeros,
        days_since_last=zeros,
        category=np.full(n_items, -1, dtype=np.int64),
        brand=np.full(n_items, -1, dtype=np.int64),
    )
    return items, UserTable(last_seen=np.zeros(2, dtype=np.float64), reference_time=0.0)


def _click_model(scorer: Scorer, rows: np.ndarray) -> ClickModel:
    items, users = _tables()
    mean = np.nanmean(rows, axis=0).astype(np.float32)
    std = np.nanstd(rows, axis=0).astype(np.float32) + np.float32(1e-6)
    return ClickModel(scorer=scorer, items=items, users=users, mean=mean, std=std)


def lightgbm_click_model() -> ClickModel:
    import lightgbm

    rows = _rows(len(FEATURE_NAMES))
    labels = (np.nan_to_num(rows[:, 0]) > 0.3).astype(np.int8)
    params = {"objective": "binary", "verbose": -1, "seed": 1, "num_threads": 1}
    params |= {"deterministic": True, "min_data_in_leaf": 5}
    booster = lightgbm.train(params, lightgbm.Dataset(rows, label=labels), num_boost_round=10)
    return _click_model(LightGBMScorer(lightgbm.Booster(model_str=booster.model_to_string())), rows)


def mlp_click_model() -> ClickModel:
    rng = np.random.default_rng(1)
    rows = _rows(len(FEATURE_NAMES))
    sizes = [len(FEATURE_NAMES), 8, 4, 1]
    weights = tuple(
        (
            rng.normal(size=(out, inp)).astype(np.float32),
            rng.normal(size=out).astype(np.float32),
        )
        for inp, out in zip(sizes[:-1], sizes[1:], strict=True)
    )
    mean = np.nanmean(rows, axis=0).astype(np.float32)
    std = np.nanstd(rows, axis=0).astype(np.float32) + np.float32(1e-6)
    return _click_model(MLPScorer(weights=weights, mean=mean, std=std), rows)


def lambdamart() -> SearchReranker:
    rows = _rows(len(SEARCH_FEATURE_NAMES))
    grades = np.clip(np.round(np.nan_to_num(rows[:, 0]) + 1.0), 0, 3).astype(np.int64)
    groups = np.arange(rows.shape[0]) // 10
    model = SearchReranker(num_boost_round=10, params={"min_data_in_leaf": 5})
    return model.fit(rows, grades, groups)


@dataclass(frozen=True)
class Case:
    """One ranker: how to build it fitted, how wide its rows are, how to save and load."""

    id: str
    build: Callable[[], Ranker]
    width: int
    load: Callable[[Path], Ranker]


CASES = [
    Case("click_lightgbm", lightgbm_click_model, len(FEATURE_NAMES), ClickModel.load),
    Case("click_mlp", mlp_click_model, len(FEATURE_NAMES), ClickModel.load),
    Case("lambdamart", lambdamart, len(SEARCH_FEATURE_NAMES), SearchReranker.load),
]


@pytest.fixture(scope="module", params=CASES, ids=[case.id for case in CASES])
def built(request: pytest.FixtureRequest) -> tuple[Case, Ranker]:
    case: Case = request.param
    return case, case.build()


def test_is_a_ranker(built: tuple[Case, Ranker]) -> None:
    _, model = built
    assert isinstance(model, Ranker)
    if isinstance(model, ClickModel):
        assert isinstance(model.scorer, Ranker)  # the classifier inside is one too


def test_one_finite_score_per_row(built: tuple[Case, Ranker]) -> None:
    case, model = built
    rows = _rows(case.width, count=40, seed=7)
    scores = model.score_candidates(rows)
    assert scores.shape == (40,)
    assert np.issubdtype(scores.dtype, np.floating)
    assert np.isfinite(scores).all()
    assert model.score_candidates(rows[:0]).shape == (0,)


def test_a_row_scores_the_same_in_any_batch(built: tuple[Case, Ranker]) -> None:
    case, model = built
    rows = _rows(case.width, count=40, seed=7)
    scores = model.score_candidates(rows)
    # float32 matrix products (the MLP) may round differently in another batch shape
    np.testing.assert_allclose(model.score_candidates(rows[::-1]), scores[::-1], rtol=1e-6)
    np.testing.assert_allclose(model.score_candidates(rows[5:6]), scores[5:6], rtol=1e-6)


def test_save_load_round_trip_without_pickle(built: tuple[Case, Ranker], tmp_path: Path) -> None:
    case, model = built
    assert isinstance(model, ClickModel | SearchReranker)
    model.save(tmp_path / "model")
    loaded = case.load(tmp_path / "model")
    rows = _rows(case.width, count=40, seed=7)
    np.testing.assert_array_equal(loaded.score_candidates(rows), model.score_candidates(rows))
    suffixes = {path.suffix for path in (tmp_path / "model").rglob("*") if path.is_file()}
    assert suffixes <= {".npy", ".json", ".txt", ".safetensors"}
    for path in (tmp_path / "model").rglob("*.npy"):
        np.load(path, allow_pickle=False)


def test_wrong_column_count_is_a_data_error(built: tuple[Case, Ranker]) -> None:
    case, model = built
    with pytest.raises(DataError, match="features must be"):
        model.score_candidates(_rows(case.width + 1, count=3))


def test_the_lightgbm_click_model_learns_the_planted_signal() -> None:
    model = lightgbm_click_model()
    rows = np.zeros((2, len(FEATURE_NAMES)), dtype=np.float32)
    rows[1, 0] = 2.0  # labels were 1 where feature 0 > 0.3
    low, high = model.score_candidates(rows)
    assert high > low
