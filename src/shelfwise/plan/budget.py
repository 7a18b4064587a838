"""Fit the run into `plan.max_run_minutes`: the plan's last step.

The stage rows (`shelfwise.plan.stage.stage_rows`) estimate every stage still to run;
with the stages already done they give the run's wall time. When that is over the
budget, the plan turns down, in this order, the settings that cost the most time for
the least quality, and stops as soon as the estimate fits:

1. no refit on train + valid: the served models are the train fits (the refit doubles
   every family's fit; the valid period's events still reach users' histories at
   serving time);
2. the click model learns from fewer users (`ranking.max_users`);
3. compression: latency timed on fewer users, quality measured on fewer users, and
   only the variants that can be the smallest within budget (int8 and svd_int8: a
   float16 copy is twice an int8 one, per-column int8 the size of per-row);
4. the gate re-scores fewer test users (`gate.max_users`);
5. the tune budget holds the baseline trials only (every family is still tried);
6. evaluation samples fewer users (`evaluate.max_eval_users`).

Each step changes a setting only where the config leaves it at its default (a value
you write always wins), and never leaves a family out: families are the plan's
earlier choices. When even the last step does not fit, the run goes on and the plan
says by how much it is over. Measured on the generated 10M-event shop: see
benchmarks/RESULTS.md "The 10M-event shop on the defaults".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Final

from shelfwise.config import ShelfwiseConfig
from shelfwise.plan.choose import is_user_setting
from shelfwise.plan.record import Choice, Plan, apply_plan

# The smallest samples the budget goes down to: a click model still has ~250k candidate
# rows at 2,500 users; NDCG@10 over 1,000 users has a standard error of ~0.006 at the
# 10M shop's 0.04, and compression compares variants on the same users (paired).
BUDGET_RANKING_USERS: Final = 2500
BUDGET_LATENCY_USERS: Final = 64
BUDGET_COMPRESS_USERS: Final = 1000
BUDGET_GATE_USERS: Final = 1000
BUDGET_EVAL_USERS: Final = 1000
SMALLEST_VARIANTS: Final = ("float16", "int8_column")


@dataclass(frozen=True)
class _Step:
    key: str
    value: Callable[[ShelfwiseConfig, Plan], Any]  # the new value (None: nothing to do)
    why: Callable[[Any], str]


def _lower(key: str, floor: int) -> Callable[[ShelfwiseConfig, Plan], Any]:
    def value(planned: ShelfwiseConfig, plan: Plan) -> int | None:
        node: Any = planned
        for part in key.split("."):
            node = getattr(node, part)
        return floor if node is None or int(node) > floor else None

    return value


def _fewer_variants(planned: ShelfwiseConfig, plan: Plan) -> list[str] | None:
    kept = [str(name) for name in planned.compress.variants if name not in SMALLEST_VARIANTS]
    return kept if len(kept) < len(planned.compress.variants) else None


def _baselines_only(planned: ShelfwiseConfig, plan: Plan) -> float | None:
    baselines = float(round(sum(plan.tune_trial_seconds.values())))
    return baselines if 0 < baselines < planned.tune.budget_seconds else None


STEPS: Final[tuple[_Step, ...]] = (
    _Step(
        "evaluate.refit_on_train_valid",
        lambda planned, plan: False if planned.evaluate.refit_on_train_valid else None,
        lambda _: "no refit on train + valid (the served models are the train fits)",
    ),
    _Step(
        "ranking.max_users",
        _lower("ranking.max_users", BUDGET_RANKING_USERS),
        lambda value: f"the click model learns from {value:,} users per split",
    ),
    _Step(
        "compress.latency_users",
        _lower("compress.latency_users", BUDGET_LATENCY_USERS),
        lambda value: f"compression latency timed on {value} users",
    ),
    _Step(
        "compress.max_eval_users",
        _lower("compress.max_eval_users", BUDGET_COMPRESS_USERS),
        lambda value: f"compression quality measured on {value:,} valid users",
    ),
    _Step(
        "compress.variants",
        _fewer_variants,
        lambda value: f"compression variants {', '.join(value)}",
    ),
    _Step(
        "gate.max_users",
        _lower("gate.max_users", BUDGET_GATE_USERS),
        lambda value: f"the gate re-scores {value:,} test users",
    ),
    _Step(
        "tune.budget_seconds",
        _baselines_only,
        lambda value: f"tune runs the baseline trials only ({value:.0f} s)",
    ),
    _Step(
        "evaluate.max_eval_users",
        _lower("evaluate.max_eval_users", BUDGET_EVAL_USERS),
        lambda value: f"evaluation on {value:,} users per split",
    ),
)


def run_seconds(rows: list[Choice]) -> float:
    """The run's wall seconds: stages done (measured) plus the estimates of the rest."""
    return sum(row.seconds for row in rows if row.enabled)


def fit_budget(
    config: ShelfwiseConfig, plan: Plan, rows_of: Callable[[Plan], list[Choice]]
) -> Plan:
    """`plan` with the settings that bring its estimate within `plan.max_run_minutes`.

    Args:
        config: the run's config (as written: a user's value is never changed).
        plan: the plan so far (families, samples and the tune budget chosen).
        rows_of: the stage rows of a plan (`stage_rows` bound to the stage's inputs).

    Returns:
        The plan with its stage rows, any settings the budget changed, and `budget`:
        one line per change (with the seconds it saves) and a last line on the total.
    """
    rows = rows_of(plan)
    limit = config.plan.max_run_minutes
    if limit is None or not plan.enabled:
        return replace(plan, stages=rows)
    budget, notes = limit * 60.0, []
    for step in STEPS:
        total = run_seconds(rows)
        if total <= budget:
            break
        if is_user_setting(config, step.key):
            continue
        value = step.value(apply_plan(config, plan), plan)
        if value is None:
            continue
        candidate = replace(plan, settings={**plan.settings, step.key: value})
        candidate_rows = rows_of(candidate)
        saved = total - run_seconds(candidate_rows)
        if saved <= 0:
            continue
        plan, rows = candidate, candidate_rows
        notes.append(f"{step.why(value)}: saves ≈{saved / 60:.1f} min")
    total = run_seconds(rows)
    if total <= budget:
        notes.append(f"≈{total / 60:.0f} min in all, within plan.max_run_minutes={limit:g}")
    else:
        notes.append(
            f"≈{total / 60:.0f} min in all, over plan.max_run_minutes={limit:g} even with "
            "the smaller samples above; the run goes on (the estimates are for an idle "
            "machine: a factor of two either way)"
        )
    return replace(plan, stages=rows, budget=notes)


__all__ = ["STEPS", "fit_budget", "run_seconds"]
