"""The evaluate stage: score every fitted model and choose the one to serve.

Stage inputs: `features`, `retrieval`. Output: `metrics.json`:

```
{"recommendation": {"valid": {model: {metric: value}}, "test": {...}, "users": {...}},
 "search": {model: {"queries": n, "rerank": {...}, "full": {...}}},
 "selected": {"recommender": name, "search": name, "primary_metric": ..., "split": ...},
 "headline": {metric: value}}          # the selected models' test numbers
```
The served recommender is the best on the primary metric on the valid split (on test
when the split has no valid events).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import polars as pl

from shelfwise._internal.artifacts import atomic_write_json, read_csr
from shelfwise._internal.stage import StageContext, StageResult
from shelfwise.evaluate.recommend import evaluate_recommender, evaluation_users
from shelfwise.evaluate.search import evaluate_search
from shelfwise.retrieval import load_recommender, load_search_index


def run(ctx: StageContext) -> StageResult:
    """Evaluate the fitted models on the frozen split and labelled queries."""
    features, models_dir = ctx.inputs["features"], ctx.inputs["retrieval"]
    fitted: dict[str, dict[str, Any]] = json.loads((models_dir / "models.json").read_text())
    config = ctx.config.evaluate
    k_values = config.k_values

    recommendation: dict[str, Any] = {"valid": {}, "test": {}, "users": {}}
    recommenders = [name for name, info in fitted.items() if info["kind"] == "recommender"]
    if recommenders:
        train = read_csr(features / "train.npz")
        popularity = np.asarray(train.sum(axis=0)).ravel().astype(np.float64)
        plans = {
            "valid": (train, read_csr(features / "valid_targets.npz")),
            "test": (
                read_csr(features / "train_valid.npz"),
                read_csr(features / "test_targets.npz"),
            ),
        }
        for split, (history, targets) in plans.items():
            users = evaluation_users(targets, max_users=config.max_eval_users, seed=ctx.config.seed)
            recommendation["users"][split] = int(users.size)
            for name in recommenders:
                model = load_recommender(name, models_dir / name)
                recommendation[split][name] = evaluate_recommender(
                    model,
                    history,
                    targets,
                    users,
                    k_values,
                    item_popularity=popularity,
                    label=f"{name} on {split} ({users.size:,} users)",
                )

    search: dict[str, Any] = {}
    labelled = pl.read_parquet(features / "queries.parquet")
    for name in (n for n, info in fitted.items() if info["kind"] == "search"):
        if labelled.height:
            index = load_search_index(name, models_dir / name)
            search[name] = evaluate_search(
                index, labelled, k_values, relevance_offset=config.relevance_offset
            )

    selected = _select(recommendation, config.primary_metric, fitted)
    headline = _headline(recommendation, search, selected)
    metrics = {
        "recommendation": recommendation,
        "search": search,
        "selected": selected,
        "headline": headline,
    }
    atomic_write_json(ctx.out / "metrics.json", metrics)
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
        summary="served: "
        + " + ".join(str(selected[r]) for r in ("recommender", "search") if selected.get(r))
        + ("; " if parts else "")
        + ", ".join(parts),
    )


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
    candidates = recommendation.get(split, {})
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
    if best and best in recommendation.get("test", {}):
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
