"""The evaluate stage: score every fitted model, try a blend, choose the one to serve.

Stage inputs: `features`, `retrieval`. Outputs: `metrics.json` and, when a blend wins
on valid, `blend/` (a saved BlendRecommender):

```
{"recommendation": {"valid": {model: {metric: value}}, "test": {...}, "users": {...},
                    "slices": {model: {slice: {metric: value}}}},
 "blend": {"tried": [...], "kept": bool, "weights": {...}, ...},
 "repeat": {"policy": {"configured", "resolved", "reason", "best"}, "valid_by_mode": {...},
            "repeat_targets": {split: n}, "excluded_repeat_targets": {split: n},
            "excluded_because": str},   # the repeat policy (`evaluate.policy`)
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
import scipy.sparse as sp

from shelfwise._internal.artifacts import atomic_write_json, read_csr
from shelfwise._internal.sequences import Sequences
from shelfwise._internal.stage import StageContext, StageResult
from shelfwise.compute import Executor, open_executor
from shelfwise.config import ShelfwiseConfig
from shelfwise.contracts import IntArray
from shelfwise.evaluate.blend_search import search_blend
from shelfwise.evaluate.policy import LISTS_ONLY_SEEN, allow_split, repeat_targets, resolve_policy
from shelfwise.evaluate.recommend import (
    ONE_BLAS_THREAD_MAX_ITEMS,
    EvalSplit,
    evaluate_recommender,
    evaluation_users,
)
from shelfwise.evaluate.repeat import PolicyChoice, count_repeat_targets, repeat_explore_metrics
from shelfwise.evaluate.search import evaluate_search
from shelfwise.evaluate.sessions import SESSION_MODEL_DIR, features_session_report
from shelfwise.evaluate.slices import slice_metrics
from shelfwise.retrieval import REPEAT_MODELS, load_recommender, load_search_index
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
    repeat_report: dict[str, Any] = {}
    names = [name for name, info in fitted.items() if info["kind"] == "recommender"]
    if names:
        splits = _splits(features, config)
        train = splits["valid"].history
        popularity = np.asarray(train.sum(axis=0)).ravel().astype(np.float64)
        served_models = {n: load_recommender(n, models_dir / n) for n in names}
        train_only = _train_only_models(models_dir, served_models)
        # user blocks run where compute.engine says (Ray tasks, or here): same lists
        executor = open_executor(config.compute)
        choice, splits, repeat_report = _repeat_policy(
            features, config, splits, train_only, executor
        )
        for split, data in splits.items():
            recommendation["users"][split] = int(data.users.size)
            for name, model in (train_only if split == "valid" else served_models).items():
                if choice.resolved == "exclude" and name in LISTS_ONLY_SEEN:
                    continue  # lists only seen items: nothing to rank with them excluded
                label = f"{name} on {split} ({data.users.size:,} users)"
                metrics, ranked = evaluate_recommender(
                    model,
                    data,
                    config.evaluate.k_values,
                    item_popularity=popularity,
                    label=label,
                    executor=executor,
                )
                every = repeat_report["targets_all"].get(split)
                _add_repeat_metrics(metrics, ranked, data, every, config.evaluate.k_values)
                recommendation[split][name] = metrics
                if split == "test" and data.users.size:
                    recommendation["slices"][name] = slice_metrics(
                        ranked, data.targets, train, data.users, config.evaluate.k_values
                    )
        blend_report = _try_blend(
            ctx.out,
            config,
            train_only,
            served_models,
            splits,
            recommendation,
            popularity,
            repeats=choice.resolved == "allow",
            targets_all=repeat_report["targets_all"],
        )
        del repeat_report["targets_all"]

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

    # the session protocol (split.method: session): baselines, the chosen session model
    # and the run's recommenders on held-out sessions, repeat targets counted; the
    # chosen session model is kept (SESSION_MODEL_DIR) for the bundle's "session" role
    sessions = features_session_report(
        features,
        config.evaluate.k_values,
        targets=config.split.session_targets,
        others=lambda: {n: load_recommender(n, models_dir / n) for n in names},
        save_to=ctx.out / SESSION_MODEL_DIR,
    )
    selected = _select(recommendation, config.evaluate.primary_metric, fitted)
    selected["repeat_policy"] = repeat_report.get("policy", {}).get("resolved", "exclude")
    headline = _headline(recommendation, search, selected)
    metrics_out = {
        "recommendation": recommendation,
        "blend": blend_report,
        "repeat": repeat_report,
        **({"sessions": sessions} if sessions is not None else {}),
        "search": search,
        "selected": selected,
        "headline": headline,
    }
    atomic_write_json(ctx.out / "metrics.json", metrics_out)
    # The search stage (after this one) picks what search serves; saying "served" for
    # a search index here contradicted it (issue 16).
    served = [f"recommender {selected['recommender']}"] if selected.get("recommender") else []
    if search:
        served.append(f"search indexes scored: {', '.join(search)}")
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
        summary="; ".join(served) + ("; " if parts and served else "") + ", ".join(parts),
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
    *,
    repeats: bool = False,
    targets_all: dict[str, sp.csr_matrix | None] | None = None,
) -> dict[str, Any]:
    """Search a blend of the best matrix models; keep it only when it wins on valid.

    With `repeats` (the repeat policy resolved to allow) the repeat models join the
    candidates and at least one exploration model is among them: the blend is then
    the repeat-explore mixture, its mix chosen on validation like any blend's.

    Weights are searched and checked with the train-only fits, then tested and saved
    over the served components.

    Scores with one BLAS thread on catalogs small enough for tuning to do so (see
    `shelfwise.evaluate.recommend`): the blend scores every component three more times.
    """
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    n_items = splits["valid"].history.shape[1]
    with threadpool_limits(1 if n_items <= ONE_BLAS_THREAD_MAX_ITEMS else None, "blas"):
        return _search_and_check_blend(
            out,
            config,
            train_only,
            served,
            splits,
            recommendation,
            popularity,
            repeats,
            targets_all or {},
        )


def _search_and_check_blend(
    out: Path,
    config: ShelfwiseConfig,
    train_only: dict[str, Recommender],
    served: dict[str, Recommender],
    splits: dict[str, EvalSplit],
    recommendation: dict[str, Any],
    popularity: np.ndarray[Any, np.dtype[np.float64]],
    repeats: bool = False,
    targets_all: dict[str, sp.csr_matrix | None] | None = None,
) -> dict[str, Any]:
    primary = config.evaluate.primary_metric
    targets_all = targets_all or {}
    valid_scores = recommendation["valid"]
    # matrix models only: sequential ones are not fused yet (but for the repeat models,
    # whose scoring is a cheap pass over the order, when repeats are allowed)
    ranked_names = _blend_candidates(
        {
            n: m
            for n, m in train_only.items()
            if (not isinstance(m, SequentialRecommender) or (repeats and n in REPEAT_MODELS))
            and valid_scores.get(n)
        },
        valid_scores,
        primary,
        config.models.blend.max_models,
    )
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
    valid_metrics, valid_ranked = evaluate_recommender(
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
    test_metrics, test_ranked = evaluate_recommender(
        served_blend, splits["test"], k_values, item_popularity=popularity, label="blend on test"
    )
    for split, metrics, ranked in (
        ("valid", valid_metrics, valid_ranked),
        ("test", test_metrics, test_ranked),
    ):
        _add_repeat_metrics(metrics, ranked, splits[split], targets_all.get(split), k_values)
    recommendation["valid"][blend.name] = valid_metrics
    recommendation["test"][blend.name] = test_metrics
    served_blend.save(out / blend.name)
    if any(served[name] is not model for name, model in blend.components.items()):
        blend.save(out / TRAIN_FIT / blend.name)
    return {**report, "kept": True}


def _add_repeat_metrics(
    metrics: dict[str, float],
    ranked: IntArray,
    data: EvalSplit,
    targets_all: sp.csr_matrix | None,
    k_values: list[int],
) -> None:
    """Add recall on repeat / new items and the repeat share (`evaluate.repeat`)."""
    if targets_all is None or not data.users.size:
        return
    users = data.users
    metrics.update(
        repeat_explore_metrics(ranked, targets_all[users], data.excluded[users], k_values)
    )


def _blend_candidates(
    models: dict[str, Recommender], valid_scores: dict[str, Any], primary: str, most: int
) -> list[str]:
    """The best `most` models on valid, with an exploration model among them.

    Without one a blend of repeat models alone could never recommend anything new:
    the best non-repeat model takes the last place (the repeat-explore mixture).
    """
    ranked = sorted(models, key=lambda n: -valid_scores[n].get(primary, 0.0))
    chosen = ranked[:most]
    explorers = [n for n in ranked if n not in REPEAT_MODELS]
    if chosen and explorers and all(n in REPEAT_MODELS for n in chosen):
        chosen[-1] = explorers[0]
    return chosen


def _repeat_policy(
    features: Path,
    config: ShelfwiseConfig,
    splits: dict[str, EvalSplit],
    train_only: dict[str, Recommender],
    executor: Executor | None,
) -> tuple[PolicyChoice, dict[str, EvalSplit], dict[str, Any]]:
    """Resolve the repeat policy (`evaluate.policy`) and the splits evaluated under it.

    Returns:
        The choice; the splits (repeat targets counted when it allows repeats); and
        the `repeat` report: the policy, each mode's validation metrics, how many
        repeat targets each split has and how many evaluation left out (with why),
        plus `targets_all` (split -> repeat-inclusive targets, dropped before writing).
    """
    targets_all = {split: repeat_targets(features, split) for split in splits}
    choice, by_mode = resolve_policy(
        config, splits["valid"], targets_all["valid"], train_only, executor
    )
    counts = {
        split: count_repeat_targets(every, data.excluded)
        for split, data in splits.items()
        if (every := targets_all[split]) is not None
    }
    if choice.resolved == "allow":
        max_users, seed = config.evaluate.max_eval_users, config.seed
        splits = {
            split: allow_split(data, every, max_users=max_users, seed=seed)
            if (every := targets_all[split]) is not None
            else data
            for split, data in splits.items()
        }
        left_out = dict.fromkeys(counts, 0)
        why = "none: the repeat policy allows repeats, so repeat targets count"
    else:
        left_out = dict(counts)
        why = (
            "targets the user already has are left out: the repeat policy excludes seen "
            "items, so no list can hold them"
        )
    report = {
        "policy": choice.as_report(),
        "valid_by_mode": by_mode,
        "repeat_targets": counts,
        "excluded_repeat_targets": left_out,
        "excluded_because": why,
        "targets_all": targets_all,
    }
    return choice, splits, report


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
