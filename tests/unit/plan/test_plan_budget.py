"""The plan's time budget (`plan.max_run_minutes`) on made-up shapes."""

from __future__ import annotations

from typing import Any

from test_plan_choices import LARGE, MACHINE, SMALL

from shelfwise.config import ShelfwiseConfig, load_config
from shelfwise.plan import Plan, make_plan
from shelfwise.plan.budget import STEPS, fit_budget, run_seconds
from shelfwise.plan.stage import stage_rows


def config(**overrides: Any) -> ShelfwiseConfig:
    return load_config(None, environ={}, overrides=overrides)


def budgeted(cfg: ShelfwiseConfig, shape: Any) -> tuple[Plan, Plan]:
    plan = make_plan(cfg, shape, MACHINE)
    return plan, fit_budget(cfg, plan, lambda p: stage_rows(cfg, p, {}))


def test_a_small_shop_fits_and_nothing_changes() -> None:
    before, after = budgeted(config(), SMALL)
    assert after.settings == before.settings
    assert len(after.budget) == 1
    assert "within plan.max_run_minutes=20" in after.budget[0]


def test_a_large_shop_turns_settings_down_in_order_until_it_fits() -> None:
    cfg = config()
    before, after = budgeted(cfg, LARGE)
    unplanned = run_seconds(stage_rows(cfg, before, {}))
    assert unplanned > 20 * 60  # the shape is over the default budget as planned
    # the steps apply in order: each one changed is preceded by every earlier one
    # the plan could change (a step whose value is already at its floor is skipped)
    order = [step.key for step in STEPS]
    changed = [key for key in order if after.settings.get(key) != before.settings.get(key)]
    assert changed[0] == "evaluate.refit_on_train_valid"
    assert after.settings["evaluate.refit_on_train_valid"] is False
    assert run_seconds(after.stages) < unplanned
    # one line per change, with what it saves, then the total
    assert len(after.budget) == len(changed) + 1
    assert all("saves ≈" in line for line in after.budget[:-1])
    # every family the plan chose still runs
    assert after.parts == before.parts


def test_values_the_user_wrote_are_never_turned_down() -> None:
    cfg = config(**{"ranking.max_users": 8000, "gate.max_users": 1500})
    _, after = budgeted(cfg, LARGE)
    assert "ranking.max_users" not in after.settings
    assert "gate.max_users" not in after.settings


def test_no_budget_changes_nothing() -> None:
    cfg = config(**{"plan.max_run_minutes": None})
    before, after = budgeted(cfg, LARGE)
    assert after.settings == before.settings
    assert after.budget == []
    assert after.stages  # the rows are still estimated


def test_search_and_package_are_priced_by_the_catalog() -> None:
    # the 30M shop's run: search and package grow with the catalog and its text (issue 13)
    from dataclasses import replace

    cfg = config()
    rows = {r.name: r.seconds for r in stage_rows(cfg, make_plan(cfg, LARGE, MACHINE), {})}
    bigger = replace(LARGE, n_items=LARGE.n_items * 3, text_bytes=LARGE.text_bytes * 3)
    grown = {r.name: r.seconds for r in stage_rows(cfg, make_plan(cfg, bigger, MACHINE), {})}
    assert grown["package"] > 2 * rows["package"]
    assert grown["search"] > rows["search"]
