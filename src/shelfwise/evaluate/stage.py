"""The evaluate stage: score every fitted model, try a blend, choose the one to serve.

Stage inputs: `features`, `retrieval`. Outputs: `metrics.json` and, when a blend wins
on valid, `blend/` (a saved BlendRecommender):

```
{"recommendation": {"valid": {model: {metric: value}}, "test": {...}, "users": {...},
                    "slices": {model: {slice: {metric: value}}}},
 "blend": {"tried": [...], "kept": bool, "weights": {...}, ...},
 "search": {model: {"queries": n, "rerank": {...}, "full": {...}}},
 "selected": {"recommender": name, "search": name, "primary_metric": ..., "split": ...},
 "headline": {metric: value}}          # the selected models' test numbers
```
The served recommender is the best on the primary metric on the valid split (on test
when the split has no valid events); test numbers never choose anything. Valid users
are scored with the models fitted on train alone; test users with the served models,
which the retrieval stage refits on train + valid when `evaluate.refit_on_train_valid`
(a kept blend: the valid-chosen weights over the refitted components, saved in
`blend/`, and over the train-only ones in `train_fit/blend/` for the click model).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from shelfwise._internal.artifacts import atomic_write_json, read_csr
from shelfwise._internal.sequences import Sequences
from shelfwise._internal.stage import StageContext, StageResult
from shelfwise.config import ShelfwiseConfig
from shelfwise.evaluate.blend_search import search_blend
from shelfwise.evaluate.recommend import (
    ONE_BLAS_THREAD_MAX_ITEMS,
    EvalSplit,
    evaluate_recommender,
    evaluation_users,
)
from shelfwise.evaluate.search import evaluate_search
from shelfwise.evaluate.slices import slice_metrics
from shelfwise.retrieval import load_recommender, load_search_index
from shelfwise.retrieval.base import Recommender, SequentialRecommender
from shelfwise.retrieval.blend import BlendRecommender
from shelfwise.retrieval.stage import TRAIN_FIT, train_only_folder


def run(ctx: StageContext) -> StageResult:
    """Evaluate the fitted models on the frozen split and labelled queries."""
    features, models_dir = ctx.inputs["features"], ctx.inputs["retrieval"]
    fitted: dict[str, dict[str, Any]] = json.loads((models_dir / "models.json").read_text())
    config = ctx.config
    recommendation: dict[str, Any] = {"valid": {}, "test": {}, "users": {}, "slices": {}}
    blend_report: dict[str, Any] = {"kept": False}
    names = [name for name, info in fitted.items() if info["kind"] == "recommender"]
    if names:
        splits = _splits(features, config)
        train = splits["valid"].history
        popularity = np.asarray(train.sum(axis=0)).ravel().astype(np.float64)
        served_models = {n: load_recommender(n, models_dir / n) for n in names}
        train_only = _train_only_models(models_dir, served_models)
        for split, data in splits.items():
            recommendation["users"][split] = int(data.users.size)
            for name, model in (train_only if split == "valid" else served_models).items():
                label = f"{name} on {split} ({data.users.size:,} users)"
                metrics, ranked = evaluate_recommender(
                    model, data, config.evaluate.k_values, item_popularity=popularity, label=label
                )
                recommendation[split][name] = metrics
                if split == "test" and data.users.size:
                    recommendation["slices"][name] = slice_metrics(
                        ranked, data.targets, train, data.users, config.evaluate.k_values
                    )
        blend_report = _try_blend(
            ctx.out, config, train_only, served_models, splits, recommendation, popularity
        )

    search: dict[str, Any] = {}
    labelled = pl.read_parquet(features / "queries.parquet")
    for name in (n for n, info in fitted.items() if info["kind"] == "search"):
        if labelled.height:
            index = load_search_index(name, models_dir / name)
            search[name] = evaluate_search(
                index,
                labelled,
                config.evaluate.k_values,
                relevance_offset=config.evaluate.relevance_offset,
            )

    selected = _select(recommendation, config.evaluate.primary_metric, fitted)
    headline = _headline(recommendation, search, selected)
    metrics_out = {
        "recommendation": recommendation,
        "blend": blend_report,
        "search": search,
        "selected": selected,
        "headline": headline,
    }
    atomic_write_json(ctx.out / "metrics.json", metrics_out)
    served = [str(selected[r]) for r in ("recommender", "search") if selected.get(r)]
    parts = [f"{key} {value:.4f}" for key, value in headline.items()]
    return StageResult(
        row_counts={
            "eval_users_valid": recommendation["users"].get("valid", 0),
            "eval_users_test": recommendation["users"].get("test", 0),
            "labelled_queries": int(labelled[labelled.columns[0]].n_unique())
            if labelled.height
            else 0,
        },
        extra={"selected": selected, "headline": headline},
        summary="served: " + " + ".join(served) + ("; " if parts else "") + ", ".join(parts),
    )


def _splits(features: Path, config: ShelfwiseConfig) -> dict[str, EvalSplit]:
    max_users, seed = config.evaluate.max_eval_users, config.seed
    result = {}
    # Test users are scored from train + valid (production-like) or, as RecBole does,
    # from train alone; either way train and valid items are never ranked.
    test_input = "train" if config.evaluate.test_history == "train" else "train_valid"
    for split, history, seen in (
        ("valid", "train", "train"),
        ("test", test_input, "train_valid"),
    ):
        targets = read_csr(features / f"{split}_targets.npz")
        result[split] = EvalSplit(
            history=read_csr(features / f"{history}.npz"),
            sequences=Sequences.load(features / f"{history}_seq.npz"),
            targets=targets,
            users=np.sort(evaluation_users(targets, max_users=max_users, seed=seed)),
            seen=read_csr(features / f"{seen}.npz"),
        )
    return result


def _train_only_models(models_dir: Path, served: dict[str, Recommender]) -> dict[str, Recommender]:
    """Each model fitted on train alone: the served one itself unless it was refitted."""
    models: dict[str, Recommender] = {}
    for name, model in served.items():
        folder = train_only_folder(models_dir, name)
        models[name] = model if folder == models_dir / name else load_recommender(name, folder)
    return models


def _try_blend(
    out: Path,
    config: ShelfwiseConfig,
    train_only: dict[str, Recommender],
    served: dict[str, Recommender],
    splits: dict[str, EvalSplit],
    recommendation: dict[str, Any],
    popularity: np.ndarray[Any, np.dtype[np.float64]],
) -> dict[str, Any]:
    """Search a blend of the best matrix models; keep it only when it wins on valid.

    Weights are searched and checked with the train-only fits, then tested and saved
    over the served components.

    Scores with one BLAS thread on catalogs small enough for tuning to do so (see
    `shelfwise.evaluate.recommend`): the blend scores every component three more times.
    """
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    n_items = splits["valid"].history.shape[1]
    with threadpool_limits(1 if n_items <= ONE_BLAS_THREAD_MAX_ITEMS else None, "blas"):
        return _search_and_check_blend(
            out, config, train_only, served, splits, recommendation, popularity
        )


def _search_and_check_blend(
    out: Path,
    config: ShelfwiseConfig,
    train_only: dict[str, Recommender],
    served: dict[str, Recommender],
    splits: dict[str, EvalSplit],
    recommendation: dict[str, Any],
    popularity: np.ndarray[Any, np.dtype[np.float64]],
) -> dict[str, Any]:
    primary = config.evaluate.primary_metric
    valid_scores = recommendation["valid"]
    # matrix models only: sequential ones are not fused yet
    ranked_names = sorted(
        (
            n
            for n, m in train_only.items()
            if not isinstance(m, SequentialRecommender) and valid_scores.get(n)
        ),
        key=lambda n: -valid_scores[n].get(primary, 0.0),
    )[: config.models.blend.max_models]
    if not config.models.blend.enabled or len(ranked_names) < 2 or not splits["valid"].users.size:
        return {"kept": False, "reason": "fewer than two models with validation metrics"}
    candidates = {name: train_only[name] for name in ranked_names}
    blend, sample_value, trials = search_blend(
        candidates,
        splits["valid"],
        metric=primary,
        trials=config.models.blend.trials,
    )
    k_values = config.evaluate.k_values
    valid_metrics, _ = evaluate_recommender(
        blend, splits["valid"], k_values, item_popularity=popularity, label="blend on valid"
    )
    best_single = max(valid_scores[n].get(primary, 0.0) for n in ranked_names)
    report: dict[str, Any] = {
        "candidates": ranked_names,
        "weights": blend.weights,
        "sample_value": sample_value,
        "valid_value": valid_metrics.get(primary, 0.0),
        "best_single_valid_value": best_single,
        "trials": trials,
    }
    if valid_metrics.get(primary, 0.0) <= best_single or len(blend.components) < 2:
        return {**report, "kept": False, "reason": "no better than the best single model"}
    # the valid-chosen weights over the served (maybe refitted) components
    components = {name: served[name] for name in blend.components}
    served_blend = BlendRecommender(blend.weights, components)
    test_metrics, _ = evaluate_recommender(
        served_blend, splits["test"], k_values, item_popularity=popularity, label="blend on test"
    )
    recommendation["valid"][blend.name] = valid_metrics
    recommendation["test"][blend.name] = test_metrics
    served_blend.save(out / blend.name)
    if any(served[name] is not model for name, model in blend.components.items()):
        blend.save(out / TRAIN_FIT / blend.name)
    return {**report, "kept": True}


def _select(
    recommendation: dict[str, Any], primary: str, fitted: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    searchers = [name for name, info in fitted.items() if info["kind"] == "search"]
    selected: dict[str, Any] = {
        "primary_metric": primary,
        "recommender": None,
        "search": searchers[0] if searchers else None,
    }
    split = "valid" if recommendation["users"].get("valid") else "test"
    candidates = {n: m for n, m in recommendation.get(split, {}).items() if m}
    if candidates:
        # max() keeps the first of equal scores: config order (simplest model first)
        best = max(candidates, key=lambda name: candidates[name].get(primary, 0.0))
        selected.update(recommender=best, split=split, value=candidates[best].get(primary, 0.0))
    return selected


def _headline(
    recommendation: dict[str, Any], search: dict[str, Any], selected: dict[str, Any]
) -> dict[str, float]:
    headline: dict[str, float] = {}
    best = selected.get("recommender")
    if best and recommendation.get("test", {}).get(best):
        test = recommendation["test"][best]
        for key in sorted(test):
            if key.split("@")[0] in {"ndcg", "recall", "hit"} and key.endswith("@10"):
                headline[key] = test[key]
        primary = selected["primary_metric"]
        if primary in test:
            headline[primary] = test[primary]
    name = selected.get("search")
    if name and name in search:
        for mode in ("rerank", "full"):
            value = search[name][mode].get("ndcg@10")
            if value is not None:
                headline[f"search_{mode}_ndcg@10"] = value
    return headline
