"""Distilling the LightGBM click model: a smaller student that loads as a click model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from shelfwise.ranking import FEATURE_NAMES, ClickModel, ItemTable, UserTable
from shelfwise.ranking._train import fit_lightgbm
from shelfwise.ranking.distill import fit_lightgbm_student
from shelfwise.ranking.model import LIGHTGBM_FILE, LightGBMScorer

if TYPE_CHECKING:
    from shelfwise.sample import ShopSummary


def _rows(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows whose click label follows a noisy rule on three columns."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(count, len(FEATURE_NAMES))).astype(np.float32)
    logit = 1.5 * features[:, 0] - features[:, 3] + 0.8 * features[:, 6] * features[:, 7] - 1.0
    labels = (rng.random(count) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int8)
    return features, labels


def _click_model(scorer: LightGBMScorer) -> ClickModel:
    n_items = 5
    floats = np.zeros(n_items, dtype=np.float32)
    items = ItemTable(
        popularity=floats,
        weight_share=floats,
        recent_events=floats,
        log_price=floats,
        days_since_last=floats,
        category=np.zeros(n_items, dtype=np.int64),
        brand=np.zeros(n_items, dtype=np.int64),
    )
    users = UserTable(last_seen=np.zeros(3), reference_time=0.0)
    zeros = np.zeros(len(FEATURE_NAMES), dtype=np.float32)
    return ClickModel(scorer=scorer, items=items, users=users, mean=zeros, std=zeros + 1)


def test_student_loads_as_a_click_model_is_smaller_and_follows_the_teacher(
    tmp_path: Path,
) -> None:
    train_x, train_y = _rows(1500, seed=0)
    holdout_x, holdout_y = _rows(500, seed=1)
    teacher = fit_lightgbm(train_x, train_y, holdout_x, holdout_y, seed=3).scorer
    assert isinstance(teacher, LightGBMScorer)
    student = fit_lightgbm_student(
        train_x,
        teacher.probabilities(train_x),
        holdout_x,
        teacher.probabilities(holdout_x),
        seed=3,
        num_leaves=4,
        max_trees=20,
    ).scorer
    _click_model(teacher).save(tmp_path / "teacher")
    _click_model(student).save(tmp_path / "student")  # type: ignore[arg-type]

    loaded = ClickModel.load(tmp_path / "student")
    assert loaded.kind == "lightgbm"
    assert loaded.scorer.booster.num_trees() <= 20  # type: ignore[attr-defined]
    teacher_bytes = (tmp_path / "teacher" / LIGHTGBM_FILE).stat().st_size
    assert (tmp_path / "student" / LIGHTGBM_FILE).stat().st_size < teacher_bytes
    test_x, _ = _rows(500, seed=2)
    taught, learnt = teacher.probabilities(test_x), loaded.probabilities(test_x)
    assert float(np.corrcoef(taught, learnt)[0, 1]) > 0.9
    assert np.all((learnt >= 0) & (learnt <= 1))


def test_student_refuses_probabilities_outside_zero_one() -> None:
    features, _ = _rows(100, seed=0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fit_lightgbm_student(
            features,
            np.full(100, 1.5),
            features,
            np.full(100, 0.5),
            seed=0,
            num_leaves=4,
            max_trees=5,
        )


@pytest.mark.slow
def test_compress_stage_distills_the_click_model_of_a_pipeline_run(
    tiny_shop: ShopSummary, tmp_path: Path
) -> None:
    from shelfwise.config import load_config
    from shelfwise.pipeline import run_pipeline

    config = load_config(
        None,
        environ={},
        overrides={
            "home": str(tmp_path / "state"),
            "data.catalog.path": str(tiny_shop.catalog_path),
            "data.events.path": str(tiny_shop.events_path),
            "data.queries.path": str(tiny_shop.queries_path),
            "tune.budget_seconds": 4,
            "tune.trials_per_model": 2,
            "models.blend.trials": 5,
            "ranking.model": "lightgbm",
            "compress.budget_relative": 1.0,  # any student is within budget: one is chosen
        },
    )
    outcome = run_pipeline(config, use_cache=False, until="compress")
    report = json.loads((outcome.run_dir / "compress" / "compression.json").read_text())
    component = report["components"]["click_model"]
    assert {v["kind"] for v in component["variants"]} == {"distill"}
    assert all(v["size_bytes"] < component["baseline"]["size_bytes"] for v in component["variants"])
    assert component["chosen"] != "baseline"
    served = ClickModel.load(outcome.run_dir / "compress" / "models" / "click_model")
    assert served.kind == "lightgbm"
