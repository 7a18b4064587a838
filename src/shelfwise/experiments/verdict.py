"""Verdicts of a live experiment from its counts: A/B on a rate or a mean, or interleaving.

The server's experiments (`shelfwise.serve.experiments`) count lists, clicks,
conversions and revenue per variant; this module turns those counts into one of four
verdicts with the mixture SPRT of `sequential` (valid however often it is read):

- `guardrail-breach`: a guardrail (error rate, p99 latency) is over its limit;
- `significant-lift`: the treatment (second variant) is significantly better on the
  primary metric, or, interleaving, wins significantly more requests;
- `significant-loss`: significantly worse;
- `waiting`: not enough units yet, or no significant difference.

Each metric is a mean per list. With the sums of squares of each list's total (the
server keeps them), its variance is the observed one, Σ x² / n − mean²: clicks per list
are over-dispersed (a list can get several clicks, and shoppers differ in how much they
click), and the Bernoulli variance p(1 − p) underestimates it (0.16 against 0.25 in
`benchmarks/experiments.py --interleaving`'s simulated shop), which would make the test
claim significance too early. Without squares, rates fall back to the Bernoulli
(Poisson above 1) variance of `compare_rates`, and revenue to a compound Poisson
variance with every purchase at the mean value (N v̄² / lists).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from shelfwise.experiments.interleaving import judge_wins
from shelfwise.experiments.sequential import SequentialResult, compare_means, compare_rates

Metric = Literal["ctr", "conversion", "revenue"]
Verdict = Literal["waiting", "significant-lift", "significant-loss", "guardrail-breach"]


@dataclass(frozen=True)
class ArmCounts:
    """What one variant got.

    Attributes:
        lists: lists served (units of the test).
        clicks: attributed clicks.
        conversions: attributed purchases.
        revenue: the summed value of attributed purchases.
        revenue_squares: Σ over lists of the squared revenue of each list (0: unknown).
        clicks_squares: Σ over lists of the squared clicks of each list (0: unknown).
        conversions_squares: Σ over lists of the squared purchases of each list.
    """

    lists: int = 0
    clicks: int = 0
    conversions: int = 0
    revenue: float = 0.0
    revenue_squares: float = 0.0
    clicks_squares: float = 0.0
    conversions_squares: float = 0.0

    def squares(self, metric: Metric) -> float:
        """Σ over lists of the squared per-list value of `metric` (0 when not kept)."""
        value = {
            "ctr": self.clicks_squares,
            "conversion": self.conversions_squares,
            "revenue": self.revenue_squares,
        }
        return value[metric]

    def rate(self, metric: Metric) -> float | None:
        """Clicks, conversions or revenue per list (None before the first list)."""
        if self.lists <= 0:
            return None
        value = {"ctr": self.clicks, "conversion": self.conversions, "revenue": self.revenue}
        return value[metric] / self.lists


@dataclass(frozen=True)
class Decision:
    """A verdict with its numbers.

    Attributes:
        verdict: see the module doc.
        reason: one line an operator reads.
        estimate: A/B: the relative lift of the treatment over the control (absolute
            when the control's rate is 0); interleaving: the treatment's win share − 0.5.
        ci_low: the confidence sequence's lower end, same scale.
        ci_high: its upper end.
        p_value: the always-valid p-value (None while waiting for units).
    """

    verdict: Verdict
    reason: str
    estimate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None


def decide_ab(
    control: ArmCounts,
    treatment: ArmCounts,
    *,
    metric: Metric,
    alpha: float,
    mde: float,
    min_lists: int,
    breaches: Sequence[str] = (),
) -> Decision:
    """The A/B verdict on the primary metric.

    Args:
        control: the first variant's counts.
        treatment: the second variant's counts.
        metric: the primary metric.
        alpha: the error rate.
        mde: the relative lift the experiment was planned to detect.
        min_lists: lists each side needs before any verdict but a guardrail breach.
        breaches: the guardrails over their limits, as lines to report.
    """
    if breaches:
        result = _compare(control, treatment, metric, mde, alpha)
        return _with_numbers("guardrail-breach", "; ".join(breaches), result)
    if control.lists < min_lists or treatment.lists < min_lists:
        return Decision(
            "waiting",
            f"served lists: {control.lists} and {treatment.lists}; each side needs {min_lists}",
        )
    result = _compare(control, treatment, metric, mde, alpha)
    if result is None:
        return Decision("waiting", f"no {metric} on either side yet")
    if result.low > 0:
        verdict: Verdict = "significant-lift"
    elif result.high < 0:
        verdict = "significant-loss"
    else:
        verdict = "waiting"
    reason = (
        f"{metric} {result.rate_b:.4g} vs {result.rate_a:.4g} after {result.n:,} lists per "
        f"side: always-valid p = {result.p_value:.3g} (α = {alpha:g})"
    )
    return _with_numbers(verdict, reason, result)


def decide_interleaving(
    wins_a: int,
    wins_b: int,
    *,
    alpha: float,
    mde: float,
    min_decided: int,
    breaches: Sequence[str] = (),
) -> Decision:
    """The interleaving verdict: the sequential sign test on requests won.

    Args:
        wins_a: requests where the first variant's items got more credit.
        wins_b: requests where the second variant's did.
        alpha: the error rate.
        mde: the departure of the win share from one half to plan for.
        min_decided: decided requests (wins of either) needed before a verdict.
        breaches: the guardrails over their limits.
    """
    result = judge_wins(wins_a, wins_b, mde=mde, alpha=alpha)
    numbers = Decision(
        "waiting",
        "",
        result.difference,
        result.low,
        result.high,
        result.p_value,
    )
    if breaches:
        return _replace(numbers, "guardrail-breach", "; ".join(breaches))
    decided = wins_a + wins_b
    if decided < min_decided:
        return _replace(
            numbers, "waiting", f"decided requests: {decided}; the test needs {min_decided}"
        )
    verdict: Verdict = (
        "significant-lift"
        if result.low > 0
        else "significant-loss"
        if result.high < 0
        else "waiting"
    )
    reason = (
        f"second variant won {wins_b} of {decided} decided requests "
        f"({result.rate_b:.1%}): always-valid p = {result.p_value:.3g} (α = {alpha:g})"
    )
    return _replace(numbers, verdict, reason)


def _compare(
    control: ArmCounts, treatment: ArmCounts, metric: Metric, mde: float, alpha: float
) -> SequentialResult | None:
    base = control.rate(metric)
    new = treatment.rate(metric)
    if base is None or new is None or (base <= 0 and new <= 0):
        return None
    # as `canary judge`: the planned lift is relative to the control, at least one unit
    scale = max(base, 1.0 / control.lists)
    if control.squares(metric) > 0 and treatment.squares(metric) > 0:
        return compare_means(
            base,
            max(control.squares(metric) / control.lists - base * base, 0.0),
            control.lists,
            new,
            max(treatment.squares(metric) / treatment.lists - new * new, 0.0),
            treatment.lists,
            mde=mde * scale,
            alpha=alpha,
        )
    if metric != "revenue":
        return compare_rates(
            base * control.lists,
            control.lists,
            new * treatment.lists,
            treatment.lists,
            mde=mde * scale,
            alpha=alpha,
        )
    # compound Poisson, purchases arriving independently at the mean value: N v̄² per lists
    purchases_a = control.revenue * control.revenue / max(control.conversions, 1)
    purchases_b = treatment.revenue * treatment.revenue / max(treatment.conversions, 1)
    return compare_means(
        base,
        purchases_a / control.lists,
        control.lists,
        new,
        purchases_b / treatment.lists,
        treatment.lists,
        mde=mde * scale,
        alpha=alpha,
    )


def _with_numbers(verdict: Verdict, reason: str, result: SequentialResult | None) -> Decision:
    if result is None or result.n <= 0:
        return Decision(verdict, reason)
    if result.rate_a > 0:
        low, high = result.relative_low, result.relative_high
        estimate = result.difference / result.rate_a
    else:
        low, high, estimate = result.low, result.high, result.difference
    return Decision(verdict, reason, estimate, low, high, result.p_value)


def _replace(decision: Decision, verdict: Verdict, reason: str) -> Decision:
    return Decision(
        verdict, reason, decision.estimate, decision.ci_low, decision.ci_high, decision.p_value
    )


__all__ = ["ArmCounts", "Decision", "Metric", "Verdict", "decide_ab", "decide_interleaving"]
