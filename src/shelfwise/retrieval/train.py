"""The retrieval stage: fit every enabled model on the train split and save it.

Stage input: the `features` folder. Output: one sub-folder per model, named by its
registered name (`popularity/`, `item_knn/`, `bm25/`), plus `models.json` with the
kind, fit time and parameters of each. This module is batch-role only; serving loads
the saved folders through `shelfwise.retrieval.load_*`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import polars as pl

from shelfwise._internal import progress
from shelfwise._internal.artifacts import atomic_write_json, read_csr
from shelfwise._internal.stage import StageContext, StageResult
from shelfwise.config import ShelfwiseConfig
from shelfwise.retrieval.bm25 import BM25Search
from shelfwise.retrieval.item_knn import ItemKNNRecommender
from shelfwise.retrieval.popularity import PopularityRecommender


@dataclass(frozen=True)
class _Job:
    name: str
    kind: Literal["recommender", "search"]
    fit_and_save: Callable[[Path], dict[str, Any]]


def run(ctx: StageContext) -> StageResult:
    """Fit the enabled models."""
    features = ctx.inputs["features"]
    jobs = _plan(ctx.config, features)
    report: dict[str, dict[str, Any]] = {}
    for job in progress.track(jobs, "fitting models", total=len(jobs)):
        started = time.perf_counter()
        params = job.fit_and_save(ctx.out / job.name)
        report[job.name] = {
            "kind": job.kind,
            "fit_s": round(time.perf_counter() - started, 3),
            "params": params,
        }
    atomic_write_json(ctx.out / "models.json", report)
    names = ", ".join(f"{name} ({info['fit_s']:.1f}s)" for name, info in report.items())
    return StageResult(
        row_counts={"models": len(report)},
        extra={"models": report},
        summary=f"fitted {names}" if report else "no model enabled",
    )


def _plan(config: ShelfwiseConfig, features: Path) -> list[_Job]:
    models = config.models
    jobs: list[_Job] = []
    train_path = features / "train.npz"
    has_events = read_csr(train_path).nnz > 0

    if has_events and models.popularity.enabled:

        def fit_popularity(folder: Path) -> dict[str, Any]:
            model = PopularityRecommender()
            model.fit(read_csr(train_path))
            model.save(folder)
            return {}

        jobs.append(_Job(PopularityRecommender.name, "recommender", fit_popularity))

    if has_events and models.item_knn.enabled:

        def fit_item_knn(folder: Path) -> dict[str, Any]:
            model = ItemKNNRecommender(neighbours=models.item_knn.neighbours)
            model.fit(read_csr(train_path))
            model.save(folder)
            return {"neighbours": models.item_knn.neighbours}

        jobs.append(_Job(ItemKNNRecommender.name, "recommender", fit_item_knn))

    if models.bm25.enabled:
        items = pl.read_parquet(features / "items.parquet")
        fields = {
            name: items[name].to_list()
            for name in models.bm25.field_weights
            if name in items.columns and items[name].drop_nulls().str.len_chars().sum() > 0
        }
        if fields:

            def fit_bm25(folder: Path) -> dict[str, Any]:
                weights = {name: models.bm25.field_weights[name] for name in fields}
                model = BM25Search(k1=models.bm25.k1, b=models.bm25.b, field_weights=weights)
                model.fit(fields)
                model.save(folder)
                return {"k1": models.bm25.k1, "b": models.bm25.b, "field_weights": weights}

            jobs.append(_Job(BM25Search.name, "search", fit_bm25))
    return jobs
