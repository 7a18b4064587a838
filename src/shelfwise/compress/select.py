"""Choosing a variant: the smallest one within the quality budget, else the baseline.

relative_loss = (baseline − variant) / baseline on the primary metric (negative when
the variant is better); a variant is within budget when relative_loss ≤ budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

BASELINE = "baseline"


@dataclass(frozen=True)
class VariantResult:
    """One measured variant, as `compression.json` lists it."""

    name: str
    kind: str
    size_bytes: int
    compression_ratio: float
    metric: float
    relative_loss: float
    latency_ms: float
    within_budget: bool
    notes: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def relative_loss(baseline: float, value: float) -> float:
    """(baseline − value) / baseline; 0 when both are 0, 1 when only the baseline is."""
    if baseline == 0.0:
        return 0.0 if value >= 0.0 else 1.0
    return (baseline - value) / abs(baseline)


def result(
    name: str,
    kind: str,
    *,
    size_bytes: int,
    metric: float,
    latency_ms: float,
    baseline_size: int,
    baseline_metric: float,
    budget: float,
    notes: str = "",
    details: dict[str, Any] | None = None,
) -> VariantResult:
    """A `VariantResult` with its ratio, loss and budget verdict filled in.

    `details` holds what one kind of component adds (embedding bytes, AUC, ...).
    """
    loss = relative_loss(baseline_metric, metric)
    return VariantResult(
        name=name,
        kind=kind,
        size_bytes=int(size_bytes),
        compression_ratio=round(baseline_size / size_bytes, 3) if size_bytes else 0.0,
        metric=round(float(metric), 6),
        relative_loss=round(loss, 6),
        latency_ms=round(float(latency_ms), 4),
        within_budget=loss <= budget,
        notes=notes,
        details=dict(details or {}),
    )


def choose(variants: list[VariantResult], baseline_size: int) -> str:
    """The smallest variant within budget that is smaller than the baseline, else
    "baseline". Ties on size go to the lower loss, then the earlier variant."""
    eligible = [v for v in variants if v.within_budget and v.size_bytes < baseline_size]
    if not eligible:
        return BASELINE
    best = min(eligible, key=lambda v: (v.size_bytes, v.relative_loss))
    return best.name


__all__ = ["BASELINE", "VariantResult", "choose", "relative_loss", "result"]
