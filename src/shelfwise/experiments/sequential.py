"""A sequential test that stays valid however often it is checked: the mixture SPRT.

A canary or an A/B test is looked at again and again (the canary CronJob every 30
minutes); a fixed-horizon z-test checked at every look crosses its threshold by chance
far more often than its α says. The mixture sequential probability ratio test (mSPRT;
Robbins 1970, as deployed for online experiments by Johari, Koomen, Pekelis and Walsh,
"Always Valid Inference", Operations Research 2022) gives a statistic that may be
monitored continuously: the chance that it *ever* crosses 1/α under no difference is at
most α. Its confidence sequence (the set of differences not rejected) is an interval
on the lift that is valid at every look at once.

For two rates compared on n units per arm (lists, sessions), with d̂ the observed
difference (challenger − champion), σ² = p_A(1−p_A) + p_B(1−p_B) the variance of one
pair's difference and a normal mixing distribution N(θ0, τ²) over the true difference:

    Λ_n = sqrt(σ² / (σ² + n τ²)) · exp( n² τ² (d̂ − θ0)² / (2 σ² (σ² + n τ²)) )

Reject θ0 when Λ_n ≥ 1/α; the always-valid p-value is min over looks of 1/Λ. τ is
set from the minimum detectable effect the experiment was planned for (the mixture
then concentrates where the test should have power).

Written here rather than taken from a library: scipy and statsmodels have fixed-horizon
tests only; the formulas are short and are checked by simulation in
tests/unit/experiments (false positives under continuous peeking ≤ α, power at the
planned sample size).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from shelfwise.errors import ConfigError


@dataclass(frozen=True)
class SequentialResult:
    """One look at a two-arm comparison of rates.

    Attributes:
        n: units per arm used (the smaller arm's count).
        rate_a: the control's (champion's) rate.
        rate_b: the treatment's (challenger's) rate.
        difference: rate_b − rate_a.
        likelihood_ratio: Λ_n against "no difference".
        p_value: the always-valid p-value at this look, min(1, 1/Λ_n).
        low: the lower end of the (1 − α) confidence sequence on the difference.
        high: its upper end.
    """

    n: int
    rate_a: float
    rate_b: float
    difference: float
    likelihood_ratio: float
    p_value: float
    low: float
    high: float

    @property
    def relative_low(self) -> float | None:
        """The interval's lower end relative to the control's rate (a lift)."""
        return self.low / self.rate_a if self.rate_a > 0 else None

    @property
    def relative_high(self) -> float | None:
        """The interval's upper end relative to the control's rate."""
        return self.high / self.rate_a if self.rate_a > 0 else None


def mixing_variance(mde: float) -> float:
    """τ² for an experiment planned to detect an absolute difference of `mde`."""
    if mde <= 0:
        raise ConfigError(f"the minimum detectable effect must be positive, got {mde}")
    return mde * mde


def log_likelihood_ratio(
    difference: np.ndarray | float, n: np.ndarray | float, sigma2: np.ndarray | float, tau2: float
) -> np.ndarray:
    """log Λ_n of the normal mixture against difference 0 (vectorised for simulations)."""
    d = np.asarray(difference, dtype=np.float64)
    n_ = np.asarray(n, dtype=np.float64)
    s2 = np.maximum(np.asarray(sigma2, dtype=np.float64), 1e-12)
    total = s2 + n_ * tau2
    return 0.5 * np.log(s2 / total) + (n_ * n_ * tau2 * d * d) / (2.0 * s2 * total)


def half_width(n: float, sigma2: float, tau2: float, alpha: float) -> float:
    """Half-width of the (1 − α) confidence sequence on the difference at n units per arm."""
    if n <= 0:
        return math.inf
    s2 = max(sigma2, 1e-12)
    total = s2 + n * tau2
    return math.sqrt(2.0 * s2 * total / (n * n * tau2) * math.log(math.sqrt(total / s2) / alpha))


def compare_rates(
    successes_a: float,
    n_a: float,
    successes_b: float,
    n_b: float,
    *,
    mde: float,
    alpha: float = 0.05,
) -> SequentialResult:
    """The mSPRT look at two rates (clicks per list, purchases per list, …).

    Rates above 1 (several clicks on one list) are treated with the Poisson variance
    p instead of p(1−p).

    Args:
        successes_a: the control's successes (clicks, conversions).
        n_a: the control's units (lists served).
        successes_b: the treatment's successes.
        n_b: the treatment's units.
        mde: the absolute difference the experiment was planned to detect (sets τ).
        alpha: the error rate of the test and the confidence sequence.
    """
    n = int(min(n_a, n_b))
    rate_a = successes_a / n_a if n_a > 0 else 0.0
    rate_b = successes_b / n_b if n_b > 0 else 0.0
    sigma2 = _variance(rate_a) + _variance(rate_b)
    return _look(n, rate_a, rate_b, sigma2, mde=mde, alpha=alpha)


def compare_means(
    mean_a: float,
    variance_a: float,
    n_a: float,
    mean_b: float,
    variance_b: float,
    n_b: float,
    *,
    mde: float,
    alpha: float = 0.05,
) -> SequentialResult:
    """The mSPRT look at two means with their per-unit variances (revenue per list).

    Args:
        mean_a: the control's mean per unit.
        variance_a: the variance of one control unit's value.
        n_a: the control's units.
        mean_b: the treatment's mean per unit.
        variance_b: the variance of one treatment unit's value.
        n_b: the treatment's units.
        mde: the absolute difference of means the experiment was planned to detect.
        alpha: the error rate of the test and the confidence sequence.
    """
    n = int(min(n_a, n_b))
    return _look(n, mean_a, mean_b, variance_a + variance_b, mde=mde, alpha=alpha)


def compare_share(
    successes: float, n: float, *, null: float = 0.5, mde: float, alpha: float = 0.05
) -> SequentialResult:
    """The mSPRT look at one share against a known value (interleaving's win share).

    `rate_a` of the result is `null`, `difference` the observed share minus it; the
    variance is the null's null(1 − null), the largest a share can have at 0.5.
    """
    share = successes / n if n > 0 else null
    return _look(int(n), null, share, _variance(null), mde=mde, alpha=alpha)


def _look(
    n: int, rate_a: float, rate_b: float, sigma2: float, *, mde: float, alpha: float
) -> SequentialResult:
    difference = rate_b - rate_a
    if n <= 0:
        return SequentialResult(0, rate_a, rate_b, difference, 1.0, 1.0, -math.inf, math.inf)
    tau2 = mixing_variance(mde)
    log_ratio = float(log_likelihood_ratio(difference, n, sigma2, tau2))
    ratio = math.exp(min(log_ratio, 700.0))
    width = half_width(n, sigma2, tau2, alpha)
    return SequentialResult(
        n,
        rate_a,
        rate_b,
        difference,
        ratio,
        min(1.0, 1.0 / ratio),
        difference - width,
        difference + width,
    )


def _variance(rate: float) -> float:
    return rate * (1.0 - rate) if rate <= 1.0 else rate


def fixed_sample_size(baseline: float, mde: float, *, alpha: float, power: float) -> int:
    """Units per arm of a one-look two-sided z-test (the textbook estimate, for reference)."""
    _check_plan(baseline, mde, alpha, power)
    sigma2 = _variance(baseline) + _variance(baseline + mde)
    z = float(stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power))
    return math.ceil(sigma2 * z * z / (mde * mde))


def sequential_sample_size(baseline: float, mde: float, *, alpha: float, power: float) -> int:
    """Units per arm by which the mSPRT detects a true difference `mde` with `power`.

    The smallest n at which an observed difference at the (1 − power) quantile of its
    distribution under the true difference already crosses 1/α: looks before n only add
    chances to stop, so the power at n is at least `power` (the simulation test shows
    how close). Larger than `fixed_sample_size`: the price of looking at any time.
    """
    _check_plan(baseline, mde, alpha, power)
    sigma2 = _variance(baseline) + _variance(baseline + mde)
    tau2 = mixing_variance(mde)
    z = float(stats.norm.ppf(power))
    threshold = math.log(1.0 / alpha)

    def crosses(n: int) -> bool:
        observed = mde - z * math.sqrt(sigma2 / n)
        return observed > 0 and float(log_likelihood_ratio(observed, n, sigma2, tau2)) >= threshold

    high = 16
    while not crosses(high):
        high *= 2
        if high > 10**12:
            raise ConfigError(f"no sample size detects {mde} on {baseline} at power {power}")
    low = high // 2
    while low + 1 < high:
        middle = (low + high) // 2
        low, high = (low, middle) if crosses(middle) else (middle, high)
    return high


def _check_plan(baseline: float, mde: float, alpha: float, power: float) -> None:
    if not 0 < baseline:
        raise ConfigError(f"the baseline rate must be positive, got {baseline}")
    if mde <= 0:
        raise ConfigError(f"the minimum detectable effect must be positive, got {mde}")
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ConfigError(f"alpha and power must lie in (0, 1), got {alpha} and {power}")


__all__ = [
    "SequentialResult",
    "compare_means",
    "compare_rates",
    "compare_share",
    "fixed_sample_size",
    "half_width",
    "log_likelihood_ratio",
    "mixing_variance",
    "sequential_sample_size",
]
