"""One experiment's counts, guardrails and verdict, as `GET /v1/admin/experiments` shows them.

The verdict is `shelfwise.experiments.verdict`'s (the mixture SPRT, valid however
often this is read); the guardrails are fixed limits per variant: the share of its
requests that failed, and the p99 of its model latency over its last
`LATENCY_WINDOW` requests.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from shelfwise.experiments.verdict import ArmCounts, decide_ab, decide_interleaving
from shelfwise.serve.experiments_schemas import (
    ExperimentIn,
    ExperimentOut,
    GuardrailOut,
    LiftOut,
    VariantOut,
)

# p99 over the last 4,096 requests: 40 samples above the p99, enough for a stable
# estimate, and a window short enough to show a regression within minutes.
LATENCY_WINDOW: Final = 4096


@dataclass
class ArmState:
    """What one variant got on this server (mutated under the book's lock)."""

    lists: int = 0
    clicks: int = 0
    conversions: int = 0
    revenue: float = 0.0
    revenue_squares: float = 0.0  # Σ over lists of (a list's revenue)²
    clicks_squares: float = 0.0  # Σ over lists of (a list's clicks)²
    conversions_squares: float = 0.0
    requests: int = 0
    errors: int = 0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))

    def counts(self) -> ArmCounts:
        """The counts the statistics read."""
        return ArmCounts(
            self.lists,
            self.clicks,
            self.conversions,
            self.revenue,
            self.revenue_squares,
            self.clicks_squares,
            self.conversions_squares,
        )


def guardrails(definition: ExperimentIn, arms: Sequence[ArmState]) -> list[GuardrailOut]:
    """Error rate and p99 latency of every variant against the experiment's limits."""
    out: list[GuardrailOut] = []
    for variant, arm in zip(definition.variants, arms, strict=True):
        error_rate = arm.errors / arm.requests if arm.requests else None
        p99 = float(np.percentile(np.fromiter(arm.latencies, float), 99)) if arm.latencies else None
        p99_ms = None if p99 is None else p99 * 1000.0
        out.append(
            GuardrailOut(
                name=f"{variant.name} error rate",
                value=error_rate,
                limit=definition.max_error_rate,
                ok=error_rate is None or error_rate <= definition.max_error_rate,
            )
        )
        out.append(
            GuardrailOut(
                name=f"{variant.name} p99 ms",
                value=p99_ms,
                limit=definition.max_p99_ms,
                ok=p99_ms is None or p99_ms <= definition.max_p99_ms,
            )
        )
    return out


def summarise(
    definition: ExperimentIn, arms: Sequence[ArmState], *, running: bool, wins: Sequence[int]
) -> ExperimentOut:
    """The experiment's state as the admin API answers it."""
    checks = guardrails(definition, arms)
    breaches = [
        f"{check.name} {check.value:.4g} over its limit {check.limit:g}"
        for check in checks
        if not check.ok and check.value is not None
    ]
    metric = definition.primary_metric
    if definition.mode == "interleaving":
        decision = decide_interleaving(
            wins[0],
            wins[1],
            alpha=definition.alpha,
            mde=definition.mde,
            min_decided=definition.min_lists,
            breaches=breaches,
        )
    else:
        decision = decide_ab(
            arms[0].counts(),
            arms[1].counts(),
            metric=metric,
            alpha=definition.alpha,
            mde=definition.mde,
            min_lists=definition.min_lists,
            breaches=breaches,
        )
    variants = [
        VariantOut(
            name=variant.name,
            version=variant.version,
            rules=variant.rules,
            share=variant.share,
            lists=arm.lists,
            clicks=arm.clicks,
            conversions=arm.conversions,
            revenue=arm.revenue,
            rate=arm.counts().rate(metric),
        )
        for variant, arm in zip(definition.variants, arms, strict=True)
    ]
    return ExperimentOut(
        name=definition.name,
        mode=definition.mode,
        primary_metric=metric,
        status="running" if running else "stopped",
        endpoints=list(definition.endpoints),
        variants=variants,
        verdict=decision.verdict,
        reason=decision.reason,
        lift=LiftOut(
            estimate=_finite(decision.estimate),
            ci_low=_finite(decision.ci_low),
            ci_high=_finite(decision.ci_high),
        ),
        p_value=decision.p_value,
        guardrails=checks,
        wins=(
            {variant.name: count for variant, count in zip(definition.variants, wins, strict=True)}
            if definition.mode == "interleaving"
            else None
        ),
    )


def _finite(value: float | None) -> float | None:
    """JSON has no infinity: an unbounded interval end (no units yet) is null."""
    return value if value is not None and np.isfinite(value) else None


__all__ = ["LATENCY_WINDOW", "ArmState", "guardrails", "summarise"]
