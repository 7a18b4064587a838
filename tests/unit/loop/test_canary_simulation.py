"""`canary judge` end to end on simulated traffic (issue 18): promote only after significance.

Two versions serve simulated users, clicks per list Bernoulli (baseline CTR 5%,
conversion 1%); the judge looks after every 800 lists per side, 20 times, up to the
sequential test's planned sample size for a +20% lift, and acts on its first
non-`wait` verdict, as the CronJob does. 1,000 simulated canaries per case keep this
under a few seconds; `benchmarks/experiments.py --canary` runs 4,000 (RESULTS.md).
"""

from __future__ import annotations

import math

import numpy as np

from shelfwise.config import CanaryConfig
from shelfwise.experiments import compare_rates, sequential_sample_size
from shelfwise.loop.canary import Kpis, judge

RULES = CanaryConfig(min_lists=200, mde=0.2, alpha=0.05)
BASELINE, CONVERSION = 0.05, 0.01
LOOKS, CANARIES = 20, 1_000
STEP = math.ceil(sequential_sample_size(BASELINE, 0.2 * BASELINE, alpha=0.05, power=0.8) / LOOKS)


def _run(ctr_b: float, seed: int) -> tuple[list[str], list[int]]:
    """The first decision of each simulated canary (`wait` at the horizon) and its look."""
    rng = np.random.default_rng(seed)
    shape = (CANARIES, LOOKS)
    clicks_a = rng.binomial(STEP, BASELINE, size=shape).cumsum(axis=1)
    clicks_b = rng.binomial(STEP, ctr_b, size=shape).cumsum(axis=1)
    buys_a = rng.binomial(STEP, CONVERSION, size=shape).cumsum(axis=1)
    buys_b = rng.binomial(STEP, CONVERSION, size=shape).cumsum(axis=1)
    decisions, looks = [], []
    for canary in range(CANARIES):
        decision, at = "wait", LOOKS
        for look in range(LOOKS):
            lists = STEP * (look + 1)
            champion = Kpis(lists, clicks_a[canary, look], buys_a[canary, look], lists, 0, 0.01)
            challenger = Kpis(lists, clicks_b[canary, look], buys_b[canary, look], lists, 0, 0.01)
            decision = judge(champion, challenger, RULES)[0]
            if decision != "wait":
                at = look
                if decision == "promote":  # only ever on a significant CTR lift
                    result = compare_rates(
                        champion.clicks,
                        lists,
                        challenger.clicks,
                        lists,
                        mde=RULES.mde * champion.clicks / lists,
                        alpha=RULES.alpha,
                    )
                    assert result.p_value <= RULES.alpha
                    assert result.low > 0
                break
        decisions.append(decision)
        looks.append(at)
    return decisions, looks


def test_without_a_lift_promotions_stay_within_alpha_under_20_looks() -> None:
    decisions, _ = _run(BASELINE, seed=1)
    promoted = decisions.count("promote") / CANARIES
    tolerance = 3 * math.sqrt(RULES.alpha * (1 - RULES.alpha) / CANARIES)
    assert promoted <= RULES.alpha + tolerance  # 0.05 + 0.021


def test_with_a_true_lift_the_canary_promotes_at_the_planned_power() -> None:
    decisions, looks = _run(BASELINE * 1.2, seed=2)
    promoted = decisions.count("promote") / CANARIES
    assert promoted >= 0.8 - 3 * math.sqrt(0.8 * 0.2 / CANARIES)  # planned power 0.8
    assert decisions.count("rollback") / CANARIES <= RULES.alpha
    # significance takes data: promotions spread over the looks, few at the first one
    promoted_at = [at for d, at in zip(decisions, looks, strict=True) if d == "promote"]
    assert np.mean(promoted_at) > 2
