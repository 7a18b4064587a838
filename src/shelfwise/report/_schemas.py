"""Schemas of the gate and compression files the report reads (`gate/`, `compress/`).

Written by the promotion gate and the compression stage; parsed here with pydantic so
a file of the wrong shape is named in the report rather than half-rendered. Unknown
keys are allowed: the writers may add fields before the report shows them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class ModelRef(_Lenient):
    """A registered model version and the run that produced it."""

    version: str
    run_id: str | None = None


class GateRule(_Lenient):
    """One promotion rule and how the challenger fared against it."""

    metric: str
    rule: str  # "min_delta" | "max" | "min"
    threshold: float
    challenger: float | None = None
    champion: float | None = None
    delta: float | None = None
    passed: bool
    message: str = ""


class MetricCurves(_Lenient):
    """NDCG@K and Recall@K of one side, keyed by K as text ("10")."""

    ndcg: dict[str, float] = Field(default_factory=dict)
    recall: dict[str, float] = Field(default_factory=dict)


class GateMetrics(_Lenient):
    """Headline metrics of both sides (`ndcg@10`, `p99_latency_ms`, `bundle_mb`, …)."""

    challenger: dict[str, float | None] = Field(default_factory=dict)
    champion: dict[str, float | None] | None = None


class GateReport(_Lenient):
    """`gate/gate.json`: the promotion decision with both sides' numbers."""

    decision: str  # "promoted" | "refused" | "first-champion" | "skipped"
    challenger: ModelRef | None = None
    champion: ModelRef | None = None
    rules: list[GateRule] = Field(default_factory=list)
    metrics: GateMetrics = Field(default_factory=GateMetrics)
    latency_ms: dict[str, list[float]] = Field(default_factory=dict)
    k_values: list[int] = Field(default_factory=list)
    curves: dict[str, MetricCurves] = Field(default_factory=dict)


class BaselineMeasure(_Lenient):
    """The uncompressed model's size, quality and latency."""

    size_bytes: int
    metric: float | None = None
    latency_ms: float | None = None


class CompressionVariant(_Lenient):
    """One compressed variant of a model, measured on the validation split."""

    name: str
    kind: str = ""
    size_bytes: int
    compression_ratio: float | None = None
    metric: float | None = None
    relative_loss: float | None = None
    latency_ms: float | None = None
    within_budget: bool | None = None
    notes: str = ""


class CompressedComponent(_Lenient):
    """The baseline, the variants and the kept one of one model."""

    baseline: BaselineMeasure
    chosen: str = "baseline"
    variants: list[CompressionVariant] = Field(default_factory=list)


class CompressionReport(_Lenient):
    """`compress/compression.json`: size/quality trade-off per model."""

    primary_metric: str = "ndcg@10"
    budget_relative: float = 0.01
    latency_budget: dict[str, float | None] = Field(default_factory=dict)
    components: dict[str, CompressedComponent] = Field(default_factory=dict)


__all__ = [
    "BaselineMeasure",
    "CompressedComponent",
    "CompressionReport",
    "CompressionVariant",
    "GateMetrics",
    "GateReport",
    "GateRule",
    "MetricCurves",
    "ModelRef",
]
