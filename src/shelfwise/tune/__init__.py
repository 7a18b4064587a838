"""tune: AutoML — search each model family's parameters on the validation split.

Stage input: `features`. Outputs: `best.json` (family -> chosen params, validation
value, baseline value, seconds, trial count) and `trials.json` (every trial: family,
number, params, value, seconds, state). The budget (`tune.budget_seconds`) is shared
by the families in order; each gets an equal share of what is left. Families with
`tune: false`, without a search space, that cannot run on the data, or that come after
the budget is spent keep their configured parameters. The budget is checked between
trials: a trial that starts in time runs to its end, so a run can overshoot it by
about one trial.
"""

from __future__ import annotations

from shelfwise.tune.stage import run
from shelfwise.tune.study import FamilyResult, tune_family

__all__ = ["FamilyResult", "run", "tune_family"]
