"""The plan stage in the pipeline: plan.json, the console line, and later stages on its config."""

from __future__ import annotations

import json

import pytest

from shelfwise._internal.artifacts import read_manifest
from shelfwise.config import PlanConfig, ShelfwiseConfig, TuneConfig
from shelfwise.pipeline import STAGE_NAMES, StageEvent, run_pipeline
from shelfwise.plan import choose, load_plan


def test_the_plan_stage_writes_its_table(tiny_config: ShelfwiseConfig) -> None:
    outcome = run_pipeline(tiny_config, until="plan")
    plan = load_plan(outcome.run_dir / "plan")
    at = STAGE_NAMES.index("features") + 1  # the split made there, and why (issue 15)
    assert [c.name for c in plan.stages] == [
        *STAGE_NAMES[:at],
        "split",
        *STAGE_NAMES[at:],
        "publish",
    ]
    measured = [c.name for c in plan.stages if c.measured]
    assert measured == ["ingest", "validate", "features", "split", "plan"]
    split = next(c for c in plan.stages if c.name == "split")
    assert split.reason == f"{tiny_config.split.method}: as configured " + (
        f"(split.method: {tiny_config.split.method})"
    )
    assert plan.shape.n_items == 150
    assert plan.resources.cores >= 1
    families = {c.name for c in plan.parts if c.kind == "family" and c.enabled}
    assert {"popularity", "item_knn", "ease", "als", "bpr"} <= families
    assert all(c.where == "local" for c in plan.parts + plan.stages)


def test_later_stages_run_on_the_planned_config(
    tiny_config: ShelfwiseConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(choose, "USER_KNN_MAX_USERS", 100)  # the tiny shop has 278 users
    events: list[StageEvent] = []
    outcome = run_pipeline(tiny_config, until="tune", on_event=events.append)
    plan = load_plan(outcome.run_dir / "plan")
    assert plan.settings["models.user_knn.enabled"] is False
    (line,) = [e.summary for e in events if e.stage == "plan" and e.status == "done"]
    assert "left out user_knn: the train matrix has 278 users" in line
    trials = json.loads((outcome.run_dir / "tune" / "trials.json").read_text())
    assert "user_knn" not in {t["family"] for t in trials}
    assert {"item_knn", "ease"} <= {t["family"] for t in trials}


def test_later_stages_follow_the_plans_decisions(tiny_config: ShelfwiseConfig) -> None:
    """A plan recomputed to the same choices keeps later stages; other choices redo them."""
    untuned = tiny_config.model_copy(update={"tune": TuneConfig(enabled=False)})  # quick
    first = run_pipeline(untuned, until="tune")
    # less memory: another machine to the plan, the same choices on this tiny shop (fewer
    # cores would change the estimates, and with them the order baselines run in)
    smaller = untuned.model_copy(update={"plan": PlanConfig(memory_gb=16)})
    again = run_pipeline(smaller, until="tune")
    assert read_manifest(again.run_dir / "features").reused_from == first.run_id
    assert read_manifest(again.run_dir / "plan").reused_from is None  # another machine
    assert read_manifest(again.run_dir / "tune").reused_from == first.run_id  # same choices
    hurried = untuned.model_copy(update={"plan": PlanConfig(max_fit_seconds=1e-9)})
    third = run_pipeline(hurried, until="tune")
    assert load_plan(third.run_dir / "plan").settings["models.bpr.enabled"] is False
    assert read_manifest(third.run_dir / "tune").reused_from is None
