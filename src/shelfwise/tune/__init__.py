"""tune: AutoML — search each model family's parameters on the validation split.

Stage input: `features`. Outputs: `best.json` (family -> chosen params, validation
value, baseline value, seconds, trial count), `trials.json` (every trial: family,
number, params, value, seconds, state) and `baseline_fits/<family>/` (each baseline
trial's fitted model, which the retrieval stage reuses when the configured parameters
won). The budget (`tune.budget_seconds`, which the
plan raises to cover every family's baseline when it is left at its default) reaches
every family: first each one's baseline trial, cheapest first, then equal shares of
what is left. Families with `tune: false`, without a search space, that cannot run on
the data, or whose baseline did not fit the budget (reported in the manifest with the
plan's estimate) keep their configured parameters. The budget is checked between
trials: a trial that starts in time runs to its end, so a run can overshoot it by
about one trial.
"""

from __future__ import annotations

from shelfwise.tune.stage import run
from shelfwise.tune.study import FamilyResult, baseline_trial, tune_family

__all__ = ["FamilyResult", "baseline_trial", "run", "tune_family"]
