"""The mixture SPRT checked by simulation: error rate under continuous peeking, power."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from shelfwise.errors import ConfigError
from shelfwise.experiments.sequential import (
    compare_rates,
    fixed_sample_size,
    log_likelihood_ratio,
    mixing_variance,
    sequential_sample_size,
)

EXPERIMENTS = 2000
ALPHA = 0.05
BASELINE = 0.05
MDE = 0.01  # absolute: a 20% relative lift on 5% CTR


def _simulate(rate_b: float, lists: int, looks: int, seed: int) -> tuple[np.ndarray, ...]:
    """Cumulative clicks of both arms at `looks` evenly spaced looks, per experiment."""
    rng = np.random.default_rng(seed)
    step = lists // looks
    a = rng.binomial(step, BASELINE, size=(EXPERIMENTS, looks)).cumsum(axis=1)
    b = rng.binomial(step, rate_b, size=(EXPERIMENTS, looks)).cumsum(axis=1)
    n = step * np.arange(1, looks + 1)
    return a, b, n


def _msprt_rejects(a: np.ndarray, b: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Whether each experiment's statistic ever crossed 1/α (vectorised `compare_rates`)."""
    rate_a, rate_b = a / n, b / n
    sigma2 = rate_a * (1 - rate_a) + rate_b * (1 - rate_b)
    log_ratio = log_likelihood_ratio(rate_b - rate_a, n, sigma2, mixing_variance(MDE))
    return (log_ratio >= math.log(1 / ALPHA)).any(axis=1)


def test_no_difference_is_declared_at_most_alpha_of_the_time_under_peeking() -> None:
    # 2,000 A/A experiments, looked at 100 times each (the canary CronJob's habit)
    a, b, n = _simulate(BASELINE, lists=40_000, looks=100, seed=1)
    false_positives = _msprt_rejects(a, b, n).mean()
    sampling_error = math.sqrt(ALPHA * (1 - ALPHA) / EXPERIMENTS)
    assert false_positives <= ALPHA + 3 * sampling_error
    # the same data judged by a fixed-horizon z-test at every look: the problem solved
    rate_a, rate_b = a / n, b / n
    pooled = (a + b) / (2 * n)
    z = (rate_b - rate_a) / np.sqrt(pooled * (1 - pooled) * 2 / n)
    peeking = (np.abs(z) >= stats.norm.ppf(1 - ALPHA / 2)).any(axis=1).mean()
    assert peeking > 3 * ALPHA


def test_a_real_lift_is_found_with_the_planned_power() -> None:
    lists = sequential_sample_size(BASELINE, MDE, alpha=ALPHA, power=0.8)
    assert lists > fixed_sample_size(BASELINE, MDE, alpha=ALPHA, power=0.8)  # looking costs
    a, b, n = _simulate(BASELINE + MDE, lists=lists, looks=50, seed=2)
    power = _msprt_rejects(a, b, n).mean()
    assert power >= 0.8 - 3 * math.sqrt(0.8 * 0.2 / EXPERIMENTS)


def test_the_confidence_sequence_covers_the_true_difference_at_every_look() -> None:
    a, b, n = _simulate(BASELINE + MDE, lists=20_000, looks=40, seed=3)
    covered_always = np.ones(EXPERIMENTS, dtype=bool)
    for look in range(0, 40, 4):
        for index in range(EXPERIMENTS):
            result = compare_rates(a[index, look], n[look], b[index, look], n[look], mde=MDE)
            covered_always[index] &= result.low <= MDE <= result.high
        if not covered_always.any():
            break
    assert (1 - covered_always.mean()) <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / EXPERIMENTS)


def test_one_look_reports_the_numbers() -> None:
    result = compare_rates(500, 10_000, 800, 10_000, mde=0.005)
    assert result.n == 10_000
    assert result.difference == pytest.approx(0.03)
    assert result.p_value < 1e-6
    assert result.low > 0
    assert result.relative_low is not None
    assert result.relative_low > 0
    even = compare_rates(500, 10_000, 500, 10_000, mde=0.005)
    assert even.p_value == 1.0
    assert even.low < 0 < even.high


def test_planning_refuses_impossible_inputs() -> None:
    with pytest.raises(ConfigError, match="minimum detectable effect"):
        sequential_sample_size(0.05, 0.0, alpha=0.05, power=0.8)
    with pytest.raises(ConfigError, match="alpha and power"):
        fixed_sample_size(0.05, 0.01, alpha=1.5, power=0.8)
