"""How models are measured and chosen: evaluation, the click model, search ranking and
compression (`evaluate:`, `ranking:`, `search:`, `compress:`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from shelfwise.config._base import Section


class EvaluateConfig(Section):
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


class RankingConfig(Section):
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
    repurchase_features: bool = Field(
        default=True,
        description="Give the model the repeat-purchase features (days since the user "
        "last bought the item, and that over the item's typical repurchase gap); they "
        "only vary when the repeat policy lets lists hold items the user has. false "
        "trains without them (for comparisons).",
    )


class SearchRankingConfig(Section):
    """Hybrid search: fusion of lexical and semantic candidates, LambdaMART re-ranker."""

    enabled: bool = Field(
        default=True,
        description="Train the LambdaMART re-ranker (from labelled queries, else from "
        "search events); served only when it beats every unlearned variant by more than "
        "select_tolerance on held-out queries.",
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
        "count as irrelevant), rerank = ordering each query's judged items. auto = "
        "full/ndcg@10, cross-validated by query, with labelled queries and with labels "
        "from search events alike (rerank put every variant within 0.004 on a real "
        "store; both modes stay reported). `full` and `rerank` alone mean their ndcg@10.",
    )
    select_tolerance: float = Field(
        default=0.01,
        ge=0.0,
        le=0.5,
        description="Variants within this relative distance of the best on select_metric "
        "tie, and the fastest of them (median ms per query, timed in the stage) is served; "
        "the learned variant must beat the best unlearned one by more than this.",
    )
    latency_queries: int = Field(
        default=50,
        ge=1,
        description="Queries each variant answers one at a time, query cache off, to time "
        "it for the tie-break (median ms per query).",
    )
    train_candidates: int = Field(
        default=100,
        ge=1,
        le=2000,
        description="Training lists for the learned ranker: per query, its judged items "
        "plus the top this-many of what retrieval returns (BM25 and dense fused); served "
        "re-ranking scores search.candidates of them.",
    )
    weak_negative_weight: float = Field(
        default=1.0,
        ge=0.0,
        description="Row weight of retrieved but unjudged candidates of labelled queries "
        "(weak negatives: the full-catalog metric counts them 0); 0 trains on judged "
        "items only, which orders judged items well but let unjudged ones rise.",
    )
    weak_negative_grade: int = Field(
        default=0,
        ge=0,
        le=3,
        description="Grade given to those unjudged candidates (0 = irrelevant).",
    )
    max_queries: int = Field(
        default=2000,
        ge=10,
        description="Label groups (queries, or user+query pairs from events) sampled for "
        "training and cross-validation.",
    )

    @field_validator("select_metric", mode="before")
    @classmethod
    def _mode_alone(cls, value: object) -> object:
        # `full` / `rerank` alone: that mode's NDCG@10 (the old comment said `full`)
        if value in ("full", "rerank"):
            return f"{value}/ndcg@10"
        return value


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


class CompressConfig(Section):
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
    max_eval_users: int | None = Field(
        default=None,
        ge=100,
        description="Validation users each variant's quality is measured on (a seeded "
        "sample, the same for every variant); null = evaluate.max_eval_users. The plan "
        "lowers it when the run would not fit plan.max_run_minutes.",
    )
    max_latency_ratio: float | None = Field(
        default=1.2,
        ge=1.0,
        description="A variant whose median latency per request is more than this many "
        "times the uncompressed model's (both timed in turn on the same validation users) "
        "is not chosen, however small; null = latency is only reported. An int8 ONNX "
        "SASRec measured 6.9 ms against 1.5 ms for float32.",
    )
    max_latency_ms: float | None = Field(
        default=None,
        gt=0.0,
        description="A variant slower than this many milliseconds per request (median) is "
        "not chosen; null = no absolute limit.",
    )
    latency_tolerance_ms: float = Field(
        default=0.1,
        ge=0.0,
        description="A slowdown of at most this many milliseconds never counts against "
        "max_latency_ratio: FAISS SQ8 answers in 0.084 ms against 0.054 ms exact, 1.56x "
        "but nothing next to a served request's few milliseconds.",
    )
