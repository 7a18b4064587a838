"""The retrieval stage: fit every enabled model on the train split and save it.

Stage inputs: `features`, `tune`. Output: one sub-folder per model, named by its
registered name (`popularity/`, `ease/`, …, `bm25/`), plus `models.json` with the
kind, fit time, parameters (tuned where `tune` chose them), the split each served
model was fitted on (`fit_on`) and why a family was skipped. With
`evaluate.refit_on_train_valid` (and valid events), the matrix models in `<name>/`
are refitted on train + valid with the same parameters, for test scoring and serving,
and the train-only fits are kept in `train_fit/<name>/` for everything that scores
valid users (see `train_only_folder`). This module is batch-role only; serving loads
the saved folders through `shelfwise.compress.load_recommender` and
`shelfwise.search.load_search_index`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Final

import polars as pl

from shelfwise._internal import progress
from shelfwise._internal.artifacts import atomic_write_json, link_or_copy_tree
from shelfwise._internal.memory import PeakMemory
from shelfwise._internal.stage import StageContext, StageResult
from shelfwise.config import ShelfwiseConfig
from shelfwise.retrieval.bm25 import BM25Search
from shelfwise.retrieval.fitting import TrainingData, build_model, fit_model, stops_early, why_not

TRAIN_FIT: Final = "train_fit"
# The tune stage's folder of its baseline trials' fitted models (one per family): a fit
# on train with the configured parameters, which this stage reuses when tuning kept them.
BASELINE_FITS: Final = "baseline_fits"


def train_only_folder(stage_dir: Path, name: str) -> Path:
    """The folder of `name` fitted on train alone, which is what scores valid users.

    `train_fit/<name>/` when the stage refitted `<name>/` on train + valid, else
    `<name>/` itself. Valid users must never be scored by a model that saw their
    valid events: the validation metrics, the blend weights and the click model's
    training candidates all come from these fits.
    """
    folder = stage_dir / TRAIN_FIT / name
    return folder if folder.is_dir() else stage_dir / name


def run(ctx: StageContext) -> StageResult:
    """Fit the enabled models with their chosen parameters."""
    features = ctx.inputs["features"]
    tuned: dict[str, dict[str, Any]] = json.loads((ctx.inputs["tune"] / "best.json").read_text())
    data = TrainingData.load(features)
    refit_data = _refit_data(ctx.config, features, data)
    report: dict[str, dict[str, Any]] = {}
    skipped = _left_out_by_plan(ctx)
    families = {n: f for n, f in ctx.config.models.families().items() if f.enabled}
    for name, family in progress.track(families.items(), "fitting models", total=len(families)):
        reason = why_not(name, data)
        if reason:
            skipped[name] = reason
            continue
        params = tuned[name]["params"] if name in tuned else dict(family.params)
        reused = _baseline_fit(ctx, name, params, family.params)
        started = time.perf_counter()
        with PeakMemory() as memory:
            fit_on = _fit_family(
                ctx.out, name, params, family.half_life_days, data, refit_data, reused
            )
        report[name] = {
            "kind": "recommender",
            "fit_s": round(time.perf_counter() - started, 3),  # both fits when refitted
            "peak_rss_mb": round(memory.peak_mb, 1),
            "params": params,
            "tuned": name in tuned,
            "fit_on": fit_on,
            "train_fit_from_tune": reused is not None,
        }
    report.update(_fit_search(ctx.config, features, ctx.out))
    atomic_write_json(ctx.out / "models.json", report)
    names = ", ".join(f"{name} ({info['fit_s']:.1f}s)" for name, info in report.items())
    return StageResult(
        row_counts={"models": len(report)},
        extra={"models": report, "skipped": skipped},
        summary=f"fitted {names}" if report else "no model enabled",
    )


def _fit_family(
    out: Path,
    name: str,
    params: dict[str, Any],
    half_life_days: float | None,
    data: TrainingData,
    refit_data: TrainingData | None,
    reused: Path | None,
) -> str:
    """Fit `name` on train (or reuse the tune stage's fit) and refit it on train + valid.

    Returns:
        The split the served model in `out/<name>` was fitted on.
    """
    if reused is not None:  # tuning kept the configured parameters: its fit is this one
        if refit_data is None:
            link_or_copy_tree(reused, out / name)
            return "train"
        link_or_copy_tree(reused, out / TRAIN_FIT / name)
        model = build_model(name, params)
        fit_model(model, refit_data, half_life_days=half_life_days)
        model.save(out / name)
        return "train_valid"
    model = build_model(name, params)
    fit_model(model, data, half_life_days=half_life_days)
    fit_on = "train"
    # Models that early-stop on valid events (SASRec) stay train-only: a refit on those
    # events would have nothing left to stop on.
    if refit_data is not None and not stops_early(model):
        model.save(out / TRAIN_FIT / name)
        model = build_model(name, params)
        fit_model(model, refit_data, half_life_days=half_life_days)
        fit_on = "train_valid"
    model.save(out / name)
    return fit_on


def _baseline_fit(
    ctx: StageContext, name: str, params: dict[str, Any], configured: dict[str, Any]
) -> Path | None:
    """The tune stage's fit of `name` on train, when it used these very parameters."""
    folder = ctx.inputs["tune"] / BASELINE_FITS / name
    if params != dict(configured) or not (folder / "params.json").is_file():
        return None
    return folder


def _left_out_by_plan(ctx: StageContext) -> dict[str, str]:
    """Families the plan left out, with its reasons (none without a plan)."""
    folder = ctx.inputs.get("plan")
    if folder is None or not (folder / "plan.json").is_file():
        return {}
    from shelfwise.plan import load_plan

    plan = load_plan(folder)
    families = ctx.config.models.families()
    return {
        name: reason
        for name, reason in plan.left_out().items()
        if name in families and not reason.startswith("off")  # off in the config: not news
    }


def _refit_data(config: ShelfwiseConfig, features: Path, data: TrainingData) -> TrainingData | None:
    """Train + valid, when the config asks for a refit and valid adds something."""
    if not config.evaluate.refit_on_train_valid:
        return None
    refit = TrainingData.load(features, split="train_valid")
    return refit if (refit.matrix != data.matrix).nnz else None


TITLE_VECTORS = "dense_title"
FEATURE_ENCODER_PREFIX: Final = "dense_extra"


def feature_encoder_folders(number: int) -> tuple[str, str]:
    """Folder names of feature encoder `number` (from 1): item vectors, title vectors."""
    return f"{FEATURE_ENCODER_PREFIX}{number}", f"{FEATURE_ENCODER_PREFIX}{number}_title"


def _embedding_cache(config: ShelfwiseConfig) -> Path | None:
    """The embedding cache folder of dense search, None when caching is off."""
    semantic = config.models.dense
    if not semantic.cache:
        return None
    return semantic.cache_dir or config.state_dir() / "cache" / "embeddings"


def _fit_search(config: ShelfwiseConfig, features: Path, out: Path) -> dict[str, dict[str, Any]]:
    """Fit BM25 and dense search over the catalog text (whichever are enabled)."""
    items = pl.read_parquet(features / "items.parquet")

    def texts(names: list[str]) -> dict[str, list[str | None]]:
        return {
            name: items[name].cast(pl.String).to_list()
            for name in names
            if name in items.columns
            and items[name].drop_nulls().cast(pl.String).str.len_chars().sum()
        }

    report: dict[str, dict[str, Any]] = {}
    lexical = config.models.bm25
    fields = texts(list(lexical.field_weights)) if lexical.enabled else {}
    if fields:
        started = time.perf_counter()
        weights = {name: lexical.field_weights[name] for name in fields}
        model = BM25Search(k1=lexical.k1, b=lexical.b, field_weights=weights)
        model.fit(fields)
        model.save(out / BM25Search.name)
        report[BM25Search.name] = {
            "kind": "search",
            "fit_s": round(time.perf_counter() - started, 3),
            "params": {"k1": lexical.k1, "b": lexical.b, "field_weights": weights},
        }
    semantic = config.models.dense
    fields = texts(semantic.fields) if semantic.enabled else {}
    if fields:
        from shelfwise.retrieval.dense import DenseSearch

        started = time.perf_counter()
        with PeakMemory() as memory:
            dense = DenseSearch(
                encoder=semantic.encoder,
                fields=[name for name in semantic.fields if name in fields],
                max_chars=semantic.max_chars,
                batch_size=semantic.batch_size,
                index=semantic.index,
                exact_max_items=semantic.exact_max_items,
                cache_dir=_embedding_cache(config),
            )
            dense.fit(fields)
            dense.save(out / DenseSearch.name)
        report[DenseSearch.name] = {
            "kind": "search",
            "fit_s": round(time.perf_counter() - started, 3),
            "encode_s": dense.fit_timings.get("encode_s"),
            "index_s": dense.fit_timings.get("index_s"),
            "peak_rss_mb": round(memory.peak_mb, 1),
            "params": {
                "encoder": semantic.encoder,
                "fields": dense.fields,
                "index": dense.index_kind,
            },
        }
        if semantic.title_vectors and "title" in fields and len(dense.fields) > 1:
            # Title-only vectors: a re-ranker feature (titles carry the product's name;
            # the joined text blurs it). Same encoder, so one query vector serves both.
            started = time.perf_counter()
            titles = DenseSearch(
                encoder=dense.encoder,
                fields=["title"],
                max_chars=semantic.max_chars,
                batch_size=semantic.batch_size,
                index="exact",
                cache_dir=_embedding_cache(config),
            )
            titles.fit({"title": fields["title"]})
            titles.save(out / TITLE_VECTORS)
            report[TITLE_VECTORS] = {
                "kind": "search",
                "fit_s": round(time.perf_counter() - started, 3),
                "params": {"encoder": semantic.encoder, "fields": ["title"], "index": "exact"},
            }
        for number, spec in enumerate(semantic.feature_encoders, 1):
            report.update(_fit_feature_encoder(config, number, spec, dense.fields, fields, out))
    return report


def _fit_feature_encoder(
    config: ShelfwiseConfig,
    number: int,
    spec: str,
    order: list[str],
    fields: dict[str, list[str | None]],
    out: Path,
) -> dict[str, dict[str, Any]]:
    """Item (and title) vectors of feature encoder `number`: re-ranker features only.

    Same text as dense search (fields, cut), same index kind (its own top items feed
    pseudo-relevance feedback); kind `search_features`, so evaluation skips them.
    """
    from shelfwise.retrieval.dense import DenseSearch

    semantic = config.models.dense
    report: dict[str, dict[str, Any]] = {}
    encoder = None
    for folder, names in zip(
        feature_encoder_folders(number),
        (order, ["title"] if "title" in fields and len(order) > 1 else []),
        strict=True,
    ):
        if not names:
            continue
        started = time.perf_counter()
        index = DenseSearch(
            encoder=encoder or spec,
            fields=names,
            max_chars=semantic.max_chars,
            batch_size=semantic.batch_size,
            index=semantic.index,
            exact_max_items=semantic.exact_max_items,
            cache_dir=_embedding_cache(config),
        )
        index.fit({name: fields[name] for name in names})
        index.save(out / folder)
        encoder = index.encoder  # one encoder for items and titles
        report[folder] = {
            "kind": "search_features",
            "fit_s": round(time.perf_counter() - started, 3),
            "params": {"encoder": spec, "fields": names, "index": index.index_kind},
        }
    return report
