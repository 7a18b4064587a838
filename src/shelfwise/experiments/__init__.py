"""experiments: statistics for deciding between model versions on live traffic.

- `sequential`: the mixture SPRT on two rates, with always-valid p-values and a
  confidence sequence on the difference, so a verdict may be checked at every look
  (the canary's CronJob) without inflating false decisions; sample sizes to plan with.
- `variance`: CUPED, variance reduction from each unit's pre-period activity.
- `interleaving`: team-draft interleaving of two rankers and its sequential sign test.
"""

from __future__ import annotations

from shelfwise.experiments.interleaving import Interleaved, judge_wins, team_draft
from shelfwise.experiments.sequential import (
    SequentialResult,
    compare_rates,
    compare_share,
    fixed_sample_size,
    sequential_sample_size,
)
from shelfwise.experiments.variance import cuped_adjust, cuped_theta

__all__ = [
    "Interleaved",
    "SequentialResult",
    "compare_rates",
    "compare_share",
    "cuped_adjust",
    "cuped_theta",
    "fixed_sample_size",
    "judge_wins",
    "sequential_sample_size",
    "team_draft",
]
