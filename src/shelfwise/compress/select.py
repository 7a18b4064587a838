"""Choosing a variant: the smallest one within the quality and latency budgets, else
the baseline.

relative_loss = (baseline − variant) / baseline on the primary metric (negative when
the variant is better); a variant is within the quality budget when relative_loss ≤
budget. It is within the latency budget (`LatencyBudget`) when its median latency is
at most `max_ratio` times the uncompressed model's, measured in the same run on the
same users, or no more than `tolerance_ms` above it, and at most `max_ms` when that is
set. Issue 14: without the latency budget an int8 ONNX SASRec was chosen at 6.9 ms
per request against 1.5 ms for float32, because it was smaller and as good.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

BASELINE = "baseline"


@dataclass(frozen=True)
class LatencyBudget:
    """How much slower than the uncompressed model a chosen variant may be.

    Attributes:
        max_ratio: most variant / baseline median latency (None: no ratio limit).
        max_ms: most median milliseconds per request (None: no absolute limit).
        tolerance_ms: a slowdown of at most this many milliseconds never counts
            against `max_ratio`: a model answering in microseconds may be 1.5x slower
            at no cost a request would notice (FAISS SQ8: 0.084 ms against 0.054 ms).
    """

    max_ratio: float | None = 1.2
    max_ms: float | None = None
    tolerance_ms: float = 0.0

    def why_not(self, latency_ms: float, baseline_ms: float) -> str:
        """Why a variant with this latency is over budget; "" when it is within it."""
        reasons: list[str] = []
        if (
            self.max_ratio is not None
            # 1e-9: a variant exactly at the limit is within it, whatever the rounding
            and latency_ms > baseline_ms * self.max_ratio * (1.0 + 1e-9)
            and latency_ms > baseline_ms + self.tolerance_ms
        ):
            ratio = latency_ms / baseline_ms if baseline_ms > 0 else float("inf")
            reasons.append(
                f"latency {latency_ms:.3f} ms is {ratio:.2f}x the uncompressed model's "
                f"{baseline_ms:.3f} ms (compress.max_latency_ratio {self.max_ratio:g})"
            )
        if self.max_ms is not None and latency_ms > self.max_ms:
            reasons.append(
                f"latency {latency_ms:.3f} ms is over compress.max_latency_ms {self.max_ms:g}"
            )
        return "; ".join(reasons)


@dataclass(frozen=True)
class VariantResult:
    """One measured variant, as `compression.json` lists it.

    `within_budget` is the verdict selection reads: within the quality budget (and any
    extra quality check, such as the click model's AUC) and within the latency budget.
    `rejected` says why not, with the numbers, "" when within.
    """

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
    latency_ratio: float | None = None
    within_latency_budget: bool = True
    rejected: str = ""


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
    baseline_latency_ms: float | None = None,
    latency_budget: LatencyBudget | None = None,
) -> VariantResult:
    """A `VariantResult` with its ratios, loss and budget verdicts filled in.

    `details` holds what one kind of component adds (embedding bytes, AUC, ...).
    The latency budget applies when both `latency_budget` and `baseline_latency_ms`
    (the uncompressed model timed with the variant, see `measure.paired_median_ms`)
    are given.
    """
    loss = relative_loss(baseline_metric, metric)
    reasons: list[str] = []
    if loss > budget:
        reasons.append(
            f"quality: loses {loss:.2%} of the metric (compress.budget_relative {budget:.2%})"
        )
    latency_ratio: float | None = None
    slow = ""
    if baseline_latency_ms is not None:
        if baseline_latency_ms > 0:
            latency_ratio = round(latency_ms / baseline_latency_ms, 3)
        if latency_budget is not None:
            slow = latency_budget.why_not(latency_ms, baseline_latency_ms)
    if slow:
        reasons.append(slow)
    variant = VariantResult(
        name=name,
        kind=kind,
        size_bytes=int(size_bytes),
        compression_ratio=round(baseline_size / size_bytes, 3) if size_bytes else 0.0,
        metric=round(float(metric), 6),
        relative_loss=round(loss, 6),
        latency_ms=round(float(latency_ms), 4),
        within_budget=True,
        notes=notes,
        details=dict(details or {}),
        latency_ratio=latency_ratio,
        within_latency_budget=not slow,
    )
    return reject(variant, "; ".join(reasons)) if reasons else variant


def reject(variant: VariantResult, reason: str) -> VariantResult:
    """`variant` marked out of budget for `reason` (added to any earlier reason).

    The reason also ends the notes, which the run report shows next to the verdict.
    """
    rejected = "; ".join(part for part in (variant.rejected, reason) if part)
    notes = "; ".join(part for part in (variant.notes, f"not chosen: {reason}") if part)
    return replace(variant, within_budget=False, rejected=rejected, notes=notes)


def choose(variants: list[VariantResult], baseline_size: int) -> str:
    """The smallest variant within budget that is smaller than the baseline, else
    "baseline". Ties on size go to the lower loss, then the earlier variant."""
    return choose_with_reason(variants, baseline_size)[0]


def choose_with_reason(variants: list[VariantResult], baseline_size: int) -> tuple[str, str]:
    """`choose`'s pick and a sentence saying why, for `compression.json`."""
    eligible = [v for v in variants if v.within_budget and v.size_bytes < baseline_size]
    if eligible:
        best = min(eligible, key=lambda v: (v.size_bytes, v.relative_loss))
        return best.name, "the smallest variant within the quality and latency budgets"
    if not variants:
        return BASELINE, "no variant was built"
    if any(v.within_budget for v in variants):
        return BASELINE, "no variant within budget is smaller than the uncompressed model"
    why = "; ".join(f"{v.name}: {v.rejected}" for v in variants)
    return BASELINE, f"no variant is within budget ({why})"


__all__ = [
    "BASELINE",
    "LatencyBudget",
    "VariantResult",
    "choose",
    "choose_with_reason",
    "reject",
    "relative_loss",
    "result",
]
