"""experiments: statistics for deciding between model versions on live traffic.

- `sequential`: the mixture SPRT on two rates, with always-valid p-values and a
  confidence sequence on the difference, so a verdict may be checked at every look
  (the canary's CronJob) without inflating false decisions; sample sizes to plan with.
- `variance`: CUPED, variance reduction from each unit's pre-period activity.
- `interleaving`: team-draft interleaving of two rankers and its sequential sign test.
- `verdict`: an A/B or interleaving experiment's verdict from its counts (the server's
  experiments, `GET /v1/admin/experiments`).
"""

from __future__ import annotations

from shelfwise.experiments.interleaving import Interleaved, judge_wins, team_draft
from shelfwise.experiments.sequential import (
    SequentialResult,
    compare_means,
    compare_rates,
    compare_share,
    fixed_sample_size,
    sequential_sample_size,
)
from shelfwise.experiments.variance import cuped_adjust, cuped_theta
from shelfwise.experiments.verdict import ArmCounts, Decision, decide_ab, decide_interleaving

__all__ = [
    "ArmCounts",
    "Decision",
    "Interleaved",
    "SequentialResult",
    "compare_means",
    "compare_rates",
    "compare_share",
    "cuped_adjust",
    "cuped_theta",
    "decide_ab",
    "decide_interleaving",
    "fixed_sample_size",
    "judge_wins",
    "sequential_sample_size",
    "team_draft",
]
