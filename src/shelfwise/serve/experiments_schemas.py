"""The bodies of `/v1/admin/experiments`: an experiment's definition and its summary.

`ExperimentIn` is what `POST /v1/admin/experiments` (and `shelfwise experiment
start`) sends; `ExperimentsOut` is what `GET` answers, the shape the operator
console renders: per variant its counts and rate, the verdict, the lift with its
confidence sequence, the always-valid p-value and the guardrails.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, model_validator

from shelfwise.serve.schemas import Count

NAME_PATTERN: Final = r"^[a-z0-9][a-z0-9_-]{0,62}$"
Mode = Literal["ab", "interleaving"]
PrimaryMetric = Literal["ctr", "conversion", "revenue"]
ExperimentEndpoint = Literal["recommend", "search"]
_ENDPOINTS: Final[tuple[ExperimentEndpoint, ...]] = ("recommend", "search")


class VariantIn(BaseModel):
    """One arm of an experiment: a model version the server has loaded, the merchandising
    rules it applies, and its share."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        pattern=NAME_PATTERN, description="The variant's name (lowercase, digits, - and _)."
    )
    version: str = Field(
        min_length=1,
        max_length=128,
        description="The model version this variant serves: the champion's or the "
        "challenger's (`GET /v1/admin/models`; load one with `POST /v1/admin/reload`).",
    )
    rules: Literal["current", "none"] | Count = Field(
        default="current",
        description="The merchandising rules this variant applies: `current` (those in "
        "force), `none`, or a version number of the rules log (`GET /v1/admin/rules`); two "
        "variants of the same model version compare rule sets.",
    )
    share: StrictFloat = Field(
        default=0.5,
        gt=0.0,
        le=1.0,
        description="A/B: the share of users this variant answers (sticky by user id). "
        "Interleaving: the shares' sum is the share of users whose lists are interleaved.",
    )


class ExperimentIn(BaseModel):
    """An experiment to start (`POST /v1/admin/experiments`)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "knn-vs-ease",
                    "mode": "ab",
                    "primary_metric": "ctr",
                    "variants": [
                        {"name": "control", "version": "3", "share": 0.5},
                        {"name": "treatment", "version": "4", "share": 0.5},
                    ],
                }
            ]
        },
    )

    name: str = Field(pattern=NAME_PATTERN, description="The experiment's unique name.")
    mode: Mode = Field(
        default="ab",
        description="`ab`: each user sees one variant; `interleaving`: each list merges "
        "both variants' lists by team draft and clicks credit the contributing variant.",
    )
    primary_metric: PrimaryMetric = Field(
        default="ctr",
        description="What the verdict compares: clicks per list, purchases per list, or "
        "revenue per list (the listed price of attributed purchases).",
    )
    variants: list[VariantIn] = Field(
        min_length=2,
        max_length=2,
        description="Control first, treatment second; the lift is the treatment's.",
    )
    endpoints: list[ExperimentEndpoint] = Field(
        default_factory=lambda: list(_ENDPOINTS),
        min_length=1,
        json_schema_extra={"uniqueItems": True},
        description="The routes whose lists the experiment answers.",
    )
    alpha: StrictFloat = Field(
        default=0.05, gt=0.0, lt=0.5, description="The sequential test's error rate."
    )
    mde: StrictFloat = Field(
        default=0.05,
        gt=0.0,
        le=10.0,
        description="A/B: the relative lift to plan for (0.05 = +5%, as `shelfwise "
        "experiment plan`); interleaving: the departure of the win share from one half.",
    )
    min_lists: Count = Field(
        default=100,
        description="Lists per variant (interleaving: decided requests) before a verdict "
        "other than a guardrail breach.",
    )
    max_error_rate: StrictFloat = Field(
        default=0.01, ge=0.0, le=1.0, description="Guardrail: each variant's error rate."
    )
    max_p99_ms: StrictFloat = Field(
        default=250.0, gt=0.0, description="Guardrail: each variant's p99 model latency, ms."
    )

    @model_validator(mode="after")
    def _distinct_endpoints(self) -> ExperimentIn:
        if len(set(self.endpoints)) != len(self.endpoints):
            raise ValueError(f"endpoints are listed twice: {self.endpoints}")
        return self

    def inconsistency(self) -> str | None:
        """What no JSON Schema can say and the server refuses (409): repeated variant
        names, shares over 1, interleaving a version with itself; None when consistent."""
        names = [variant.name for variant in self.variants]
        if len(set(names)) != len(names):
            return f"variant names must differ, got {names}"
        if len({(variant.version, str(variant.rules)) for variant in self.variants}) == 1:
            return "both variants serve the same version with the same rules; change one"
        total = sum(variant.share for variant in self.variants)
        if total > 1.0 + 1e-9:
            return f"the variants' shares add up to {total:g}; at most 1"
        return None


class VariantOut(BaseModel):
    """One variant's numbers on this server since the experiment started."""

    name: str
    version: str
    rules: Literal["current", "none"] | int = Field(description="The rules it applies.")
    share: float
    lists: int = Field(description="Lists served (interleaving: lists it took part in).")
    clicks: int = Field(description="Attributed clicks (interleaving: on its own items).")
    conversions: int = Field(description="Attributed purchases.")
    revenue: float = Field(description="The listed price of attributed purchases, summed.")
    rate: float | None = Field(description="The primary metric per list.")


class LiftOut(BaseModel):
    """The treatment's lift and its always-valid confidence interval (null while waiting).

    A/B: relative to the control (0.1 = +10%); interleaving: win share − 0.5.
    """

    estimate: float | None
    ci_low: float | None
    ci_high: float | None


class GuardrailOut(BaseModel):
    """A guardrail of one variant: its value (null without data), its limit, whether it holds."""

    name: str
    value: float | None
    limit: float
    ok: bool


class ExperimentOut(BaseModel):
    """One experiment's state, counts and verdict."""

    name: str
    mode: Mode
    primary_metric: PrimaryMetric
    status: Literal["running", "stopped"]
    endpoints: list[ExperimentEndpoint]
    variants: list[VariantOut]
    verdict: Literal["waiting", "significant-lift", "significant-loss", "guardrail-breach"]
    reason: str = Field(description="The verdict in one line.")
    lift: LiftOut
    p_value: float | None
    guardrails: list[GuardrailOut]
    wins: dict[str, int] | None = Field(
        default=None, description="Interleaving: requests won per variant."
    )


class ExperimentsOut(BaseModel):
    """Every experiment this server knows (running, and stopped since its start)."""

    experiments: list[ExperimentOut]


__all__ = [
    "ExperimentIn",
    "ExperimentOut",
    "ExperimentsOut",
    "GuardrailOut",
    "LiftOut",
    "VariantIn",
    "VariantOut",
]
