"""The compress stage: smaller variants of the served models within a quality budget.

Stage inputs: `features`, `retrieval`, `evaluate`, `ranking`, `search`. Outputs:
`compression.json` (schema below) and `models/<name>/`, the chosen variant of each
component that has one (the package stage bundles it instead of the original)::

    {"primary_metric": "ndcg@10", "budget_relative": 0.01,
     "latency_budget": {"max_ratio": 1.2, "max_ms": null, "tolerance_ms": 0.1},
     "components": {name: {"baseline": {"size_bytes", "metric", "latency_ms"},
                           "chosen": variant name or "baseline",
                           "reason": why that one,
                           "variants": [{"name", "kind", "size_bytes",
                                         "compression_ratio", "metric", "relative_loss",
                                         "latency_ms", "latency_ratio",
                                         "within_latency_budget", "within_budget",
                                         "rejected", "notes"}]}}}

A variant is chosen only within both budgets: the quality budget (`budget_relative`)
and the latency budget (`compress.max_latency_ratio`, `max_latency_ms`,
`latency_tolerance_ms`; see `shelfwise.compress.select`). Each variant's latency is
timed in turn with the uncompressed train-only fit on the same validation users, and
`latency_ratio` divides the two medians; `rejected` says why a variant was not
eligible, with the numbers.

Quality is measured on the validation split with the train-only fits (as `evaluate`
chose the model): each variant is built from the train-only fit, compared with that
fit uncompressed, and the chosen transformation is then applied to the served fit.
Components: the served recommender (a blend's components are compressed together),
SASRec when it was fitted (ONNX graphs), the LightGBM click model (`click_model`:
smaller students distilled from it, measured on the ranking stage's held-out valid
users, see `shelfwise.compress.distill`), and the dense search vectors (FAISS SQ8 /
PQ, measured only).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

import numpy as np
import polars as pl

from shelfwise._internal import progress
from shelfwise._internal.artifacts import atomic_write_json, read_array, read_csr
from shelfwise._internal.sequences import Sequences
from shelfwise._internal.stage import StageContext, StageResult
from shelfwise.compress.faiss_index import faiss_component
from shelfwise.compress.loading import load_recommender
from shelfwise.compress.measure import Measurement, folder_bytes, measure
from shelfwise.compress.select import (
    BASELINE,
    LatencyBudget,
    VariantResult,
    choose_with_reason,
    result,
)
from shelfwise.compress.variants import (
    VariantSpec,
    active_items,
    build_matrix_variant,
    matrix_specs,
    onnx_specs,
)
from shelfwise.config import ShelfwiseConfig
from shelfwise.contracts import ITEM_INDEX, SPLIT, TIMESTAMP
from shelfwise.evaluate.recommend import EvalSplit, evaluation_users
from shelfwise.retrieval.base import Recommender
from shelfwise.retrieval.stage import TRAIN_FIT, train_only_folder

REPORT_FILE: Final = "compression.json"
MODELS_DIR: Final = "models"


def run(ctx: StageContext) -> StageResult:
    """Build, measure and choose compressed variants of the served models."""
    config = ctx.config
    settings = config.compress
    primary = config.evaluate.primary_metric
    budget = latency_budget(config)
    report: dict[str, Any] = {
        "primary_metric": primary,
        "budget_relative": settings.budget_relative,
        "latency_budget": {
            "max_ratio": budget.max_ratio,
            "max_ms": budget.max_ms,
            "tolerance_ms": budget.tolerance_ms,
        },
        "components": {},
    }
    if settings.enabled:
        report["components"] = _compress_all(ctx, config)
    atomic_write_json(ctx.out / REPORT_FILE, report)
    chosen = {n: c["chosen"] for n, c in report["components"].items()}
    parts = [f"{name}: {choice}" for name, choice in chosen.items()]
    return StageResult(
        row_counts={"components": len(chosen)},
        extra={"chosen": chosen},
        summary=("; ".join(parts) if parts else "nothing to compress"),
    )


def latency_budget(config: ShelfwiseConfig) -> LatencyBudget:
    """The latency budget of `compress.*`."""
    settings = config.compress
    return LatencyBudget(
        max_ratio=settings.max_latency_ratio,
        max_ms=settings.max_latency_ms,
        tolerance_ms=settings.latency_tolerance_ms,
    )


def _compress_all(ctx: StageContext, config: ShelfwiseConfig) -> dict[str, Any]:
    features, models_dir = ctx.inputs["features"], ctx.inputs["retrieval"]
    evaluate_dir = ctx.inputs["evaluate"]
    fitted: dict[str, Any] = json.loads((models_dir / "models.json").read_text())
    selected = json.loads((evaluate_dir / "metrics.json").read_text())["selected"]
    components: dict[str, Any] = {}
    split = _valid_split(features, config)
    targets: dict[str, tuple[Path, Path, list[VariantSpec]]] = {}
    served = selected.get("recommender")
    if split is not None and served:
        if served == "blend":
            folder = evaluate_dir / "blend"
            train_only = evaluate_dir / TRAIN_FIT / "blend"
            targets["blend"] = (train_only if train_only.is_dir() else folder, folder, [])
        else:
            targets[served] = (train_only_folder(models_dir, served), models_dir / served, [])
    if split is not None and "sasrec" in fitted:
        targets["sasrec"] = (train_only_folder(models_dir, "sasrec"), models_dir / "sasrec", [])
    for name, (train_only, folder, _) in targets.items():
        specs = onnx_specs(config.compress) if name == "sasrec" else matrix_specs(config.compress)
        assert split is not None  # targets exist only with a valid split
        components[name] = _compress_component(
            ctx, config, name, train_only, folder, specs, split, features
        )
    if "ranking" in ctx.inputs and split is not None and "distill" in config.compress.variants:
        from shelfwise.compress.distill import COMPONENT, distill_click_model

        click_model = distill_click_model(
            features=features,
            retrieval=models_dir,
            evaluate=evaluate_dir,
            ranking=ctx.inputs["ranking"],
            out=ctx.out / MODELS_DIR / COMPONENT,
            budget=config.compress.budget_relative,
            seed=config.seed,
            latency_users=config.compress.latency_users,
            latency_budget=latency_budget(config),
        )
        if click_model is not None:
            components[COMPONENT] = click_model
    dense = models_dir / "dense" / "vectors.npy"
    if "faiss" in config.compress.variants and dense.is_file():
        components["dense"] = faiss_component(
            read_array(dense),
            budget=config.compress.budget_relative,
            seed=config.seed,
            latency_budget=latency_budget(config),
        )
    return components


def _valid_split(features: Path, config: ShelfwiseConfig) -> EvalSplit | None:
    """The validation split as `evaluate` scores it (train histories), or None."""
    targets = read_csr(features / "valid_targets.npz")
    limits = [n for n in (config.evaluate.max_eval_users, config.compress.max_eval_users) if n]
    users = evaluation_users(targets, max_users=min(limits, default=None), seed=config.seed)
    if users.size == 0:
        return None
    return EvalSplit(
        history=read_csr(features / "train.npz"),
        sequences=Sequences.load(features / "train_seq.npz"),
        targets=targets,
        users=np.sort(users),
        seen=read_csr(features / "train.npz"),
    )


def _compress_component(
    ctx: StageContext,
    config: ShelfwiseConfig,
    name: str,
    train_only: Path,
    served: Path,
    specs: list[VariantSpec],
    split: EvalSplit,
    features: Path,
) -> dict[str, Any]:
    settings = config.compress
    primary = config.evaluate.primary_metric
    popularity = np.asarray(split.history.sum(axis=0)).ravel().astype(np.float64)

    def measured(model: Recommender, label: str, baseline: Recommender | None) -> Measurement:
        return measure(
            model,
            split,
            k_values=config.evaluate.k_values,
            primary=primary,
            item_popularity=popularity,
            latency_users=settings.latency_users,
            label=label,
            latency_baseline=baseline,
        )

    base_model = load_recommender(name, train_only)
    base = measured(base_model, f"{name} uncompressed on valid", None)
    base_size = folder_bytes(served)  # what the bundle would hold
    kept = _kept_items(features, settings.inactive_days, train_only != served, split)
    results: list[VariantResult] = []
    for spec in progress.track(specs, f"compressing {name}", total=len(specs)):
        model = _build(base_model, train_only, spec, kept[0])
        if model is None:
            continue
        value = measured(model, f"{name} {spec.name} on valid", base_model)
        results.append(
            result(
                spec.name,
                spec.kind,
                size_bytes=value.size_bytes,
                metric=value.metric,
                latency_ms=value.latency_ms,
                baseline_size=base.size_bytes,
                baseline_metric=base.metric,
                budget=settings.budget_relative,
                notes=_notes(spec, kept[0], split.history.shape[1]),
                details={
                    **_size_details(base, value),
                    "baseline_latency_ms": value.baseline_latency_ms,
                },
                baseline_latency_ms=value.baseline_latency_ms,
                latency_budget=latency_budget(config),
            )
        )
    chosen, reason = choose_with_reason(results, base.size_bytes)
    if chosen != BASELINE:
        spec = next(s for s in specs if s.name == chosen)
        served_model = load_recommender(name, served)
        built = _build(served_model, served, spec, kept[1])
        if built is None:  # cannot happen: the same family as the train-only fit
            chosen = BASELINE
        else:
            built.save(ctx.out / MODELS_DIR / name)
            load_recommender(name, ctx.out / MODELS_DIR / name)  # it must load as served
    return {
        "baseline": {
            "size_bytes": base_size,
            "metric": round(base.metric, 6),
            "latency_ms": base.latency_ms,
            "measured_size_bytes": base.size_bytes,
            "embedding_bytes": base.embedding_bytes,
            "component_bytes": base.component_bytes,
        },
        "chosen": chosen,
        "reason": reason,
        "variants": [vars(v) for v in results],
    }


def _build(model: Recommender, folder: Path, spec: VariantSpec, kept: Any) -> Recommender | None:
    if spec.kind == "onnx":
        from shelfwise.compress.onnx_export import export_sasrec
        from shelfwise.retrieval.sasrec import SASRecRecommender

        if not isinstance(model, SASRecRecommender):
            return None
        return export_sasrec(model, folder, quantize=spec.quantize_onnx)
    return build_matrix_variant(model, folder, spec, kept)


def _kept_items(
    features: Path, inactive_days: float | None, refitted: bool, split: EvalSplit
) -> tuple[Any, Any]:
    """Items kept by pruning for the train-only fit and for the served fit."""
    if inactive_days is None:
        return None, None
    interactions = pl.read_parquet(
        features / "interactions.parquet", columns=[ITEM_INDEX, TIMESTAMP, SPLIT]
    )
    n_items = split.history.shape[1]
    train = active_items(interactions, ("train",), inactive_days, n_items)
    served_splits = ("train", "valid") if refitted else ("train",)
    return train, active_items(interactions, served_splits, inactive_days, n_items)


def _size_details(base: Measurement, variant: Measurement) -> dict[str, Any]:
    """Embedding bytes and per-component bytes of a variant, with their ratios."""
    details: dict[str, Any] = {"embedding_bytes": variant.embedding_bytes}
    if base.embedding_bytes and variant.embedding_bytes:
        details["embedding_ratio"] = round(base.embedding_bytes / variant.embedding_bytes, 3)
    if variant.component_bytes:
        details["component_bytes"] = variant.component_bytes
        details["component_ratio"] = {
            name: round(base.component_bytes[name] / size, 3)
            for name, size in variant.component_bytes.items()
            if size and base.component_bytes.get(name)
        }
    return details


def _notes(spec: VariantSpec, kept: Any, n_items: int) -> str:
    if spec.kind == "prune" and kept is not None:
        return f"{n_items - len(kept)} of {n_items} items pruned, weights int8"
    if spec.kind == "svd":
        return f"{spec.keep_fraction:.0%} of factor dimensions, then int8"
    if spec.kind == "onnx":
        return "onnxruntime, dynamic int8 weights" if spec.quantize_onnx else "onnxruntime"
    return {"float16": "float16 weights", "int8_row": "int8, one scale per row"}.get(
        spec.encoding, "int8, one scale per column"
    )


__all__ = ["MODELS_DIR", "REPORT_FILE", "run"]
