"""The tune budget reaches every family: baselines first, then shares (issue 13)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from shelfwise._internal.stage import StageContext
from shelfwise.config import ShelfwiseConfig
from shelfwise.pipeline import run_pipeline
from shelfwise.plan import load_plan
from shelfwise.tune import stage as tune_stage
from shelfwise.tune import study

FAMILIES = [
    "item_knn",
    "user_knn",
    "ease",
    "gfcf",
    "rp3beta",
    "als",
    "bpr",
    "buy_again",
    "tifu_knn",
]


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every fit-and-score takes 10 "seconds" of a fake clock and scores a made-up value."""
    now = [0.0]

    def fake_score(name: str, *args: Any, **kwargs: Any) -> float:
        now[0] += 10.0
        return 0.01 * (FAMILIES.index(name) + 1)

    monkeypatch.setattr(study, "_clock", lambda: now[0])
    monkeypatch.setattr(study, "score_params", fake_score)
    return now


def _tune(
    config: ShelfwiseConfig, tmp_path: Path, *, estimates: dict[str, float] | None = None
) -> Any:
    outcome = run_pipeline(config, until="plan")
    inputs = {"features": outcome.run_dir / "features", "plan": outcome.run_dir / "plan"}
    if estimates is not None:  # the plan's estimated trial seconds, replaced
        plan = replace(load_plan(inputs["plan"]), tune_trial_seconds=estimates)
        inputs["plan"] = tmp_path / "plan"
        inputs["plan"].mkdir()
        plan.save(inputs["plan"])
    out = tmp_path / "tune"
    out.mkdir()
    result = tune_stage.run(StageContext(config, outcome.run_dir, inputs, out))
    trials = json.loads((out / "trials.json").read_text())
    return result, trials


def test_every_family_gets_its_baseline_before_any_second_trial(
    tiny_config: ShelfwiseConfig, tmp_path: Path, fake_clock: list[float]
) -> None:
    config = tiny_config.model_copy(
        update={"tune": tiny_config.tune.model_copy(update={"budget_seconds": 115.0})}
    )
    result, trials = _tune(config, tmp_path)
    baselines = [t["family"] for t in trials if t["number"] == "baseline"]
    assert sorted(baselines) == sorted(FAMILIES)  # 9 baselines: 90 of the 115 "seconds"
    # with the old order (the whole budget to the first family) item_knn took it all
    second = [t["family"] for t in trials if t["number"] != "baseline"]
    assert second  # the 25 left went to second trials
    assert result.row_counts["families"] == len(FAMILIES)


def test_a_family_whose_baseline_cannot_fit_is_reported_not_skipped(
    tiny_config: ShelfwiseConfig, tmp_path: Path, fake_clock: list[float]
) -> None:
    config = tiny_config.model_copy(
        update={"tune": tiny_config.tune.model_copy(update={"budget_seconds": 40.0})}
    )
    estimates = dict.fromkeys(FAMILIES, 10.0) | {"bpr": 500.0}
    result, trials = _tune(config, tmp_path, estimates=estimates)
    baselines = {t["family"] for t in trials if t["number"] == "baseline"}
    # every baseline that can fit the budget runs, even past it (8 x 10 "seconds" > 40)
    assert baselines == set(FAMILIES) - {"bpr"}
    assert all(t["number"] == "baseline" for t in trials)  # nothing left for more
    (reason,) = result.extra["skipped"].values()
    assert "its baseline trial is estimated at ≈500 s, more than tune.budget_seconds=40" in reason
    assert "not tuned: bpr" in result.summary
