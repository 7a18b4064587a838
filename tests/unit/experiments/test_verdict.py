"""Experiment verdicts from counts: A/B on rates and revenue, interleaving wins."""

from __future__ import annotations

import numpy as np
import pytest

from shelfwise.experiments import ArmCounts, compare_means, decide_ab, decide_interleaving


def test_ab_waits_for_units_then_finds_a_lift() -> None:
    control = ArmCounts(lists=50, clicks=5)
    better = ArmCounts(lists=50, clicks=10)
    waiting = decide_ab(control, better, metric="ctr", alpha=0.05, mde=0.05, min_lists=100)
    assert waiting.verdict == "waiting"
    assert "each side needs 100" in waiting.reason
    control = ArmCounts(lists=20_000, clicks=2_000)
    better = ArmCounts(lists=20_000, clicks=2_400)
    lift = decide_ab(control, better, metric="ctr", alpha=0.05, mde=0.05, min_lists=100)
    assert lift.verdict == "significant-lift"
    assert lift.estimate is not None
    assert abs(lift.estimate - 0.2) < 1e-9
    assert lift.ci_low is not None
    assert 0 < lift.ci_low < 0.2
    loss = decide_ab(better, control, metric="ctr", alpha=0.05, mde=0.05, min_lists=100)
    assert loss.verdict == "significant-loss"


def test_a_guardrail_breach_wins_over_a_lift() -> None:
    control = ArmCounts(lists=20_000, clicks=2_000)
    better = ArmCounts(lists=20_000, clicks=2_400)
    decision = decide_ab(
        control,
        better,
        metric="ctr",
        alpha=0.05,
        mde=0.05,
        min_lists=100,
        breaches=["treatment p99 ms 300 over its limit 250"],
    )
    assert decision.verdict == "guardrail-breach"
    assert decision.reason == "treatment p99 ms 300 over its limit 250"
    assert decision.p_value is not None
    assert decision.p_value < 0.05


def test_the_observed_variance_of_per_list_totals_is_used_when_kept() -> None:
    # clicks per list over-dispersed: 1,000 lists with 2 clicks and 9,000 with none
    # (mean 0.2, variance 0.36 where the Bernoulli p(1-p) would say 0.16)
    over = ArmCounts(lists=10_000, clicks=2_000, clicks_squares=4_000.0)
    more = ArmCounts(lists=10_000, clicks=2_200, clicks_squares=4_400.0)
    kept = decide_ab(over, more, metric="ctr", alpha=0.05, mde=0.05, min_lists=100)
    direct = compare_means(0.2, 0.36, 10_000, 0.22, 0.44 - 0.22**2, 10_000, mde=0.01)
    assert kept.p_value == pytest.approx(direct.p_value, rel=1e-12)
    # the same counts without squares: the Bernoulli variance claims far more confidence
    bernoulli = decide_ab(
        ArmCounts(lists=10_000, clicks=2_000),
        ArmCounts(lists=10_000, clicks=2_200),
        metric="ctr",
        alpha=0.05,
        mde=0.05,
        min_lists=100,
    )
    assert bernoulli.p_value is not None
    assert kept.p_value is not None
    assert bernoulli.p_value < kept.p_value
    # revenue with per-list squares: no difference, no verdict
    same = ArmCounts(lists=10_000, conversions=1_000, revenue=50_000.0, revenue_squares=2.5e6)
    decision = decide_ab(same, same, metric="revenue", alpha=0.05, mde=0.05, min_lists=100)
    assert decision.verdict == "waiting"
    assert decision.estimate == 0.0


def test_interleaving_prefers_the_team_that_wins_more_requests() -> None:
    even = decide_interleaving(500, 500, alpha=0.05, mde=0.05, min_decided=50)
    assert even.verdict == "waiting"
    assert even.estimate == 0.0
    few = decide_interleaving(1, 9, alpha=0.05, mde=0.05, min_decided=50)
    assert few.verdict == "waiting"
    better = decide_interleaving(400, 600, alpha=0.05, mde=0.05, min_decided=50)
    assert better.verdict == "significant-lift"
    assert better.estimate is not None
    assert np.isclose(better.estimate, 0.1)
    worse = decide_interleaving(600, 400, alpha=0.05, mde=0.05, min_decided=50)
    assert worse.verdict == "significant-loss"
