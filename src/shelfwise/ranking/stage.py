"""The ranking stage: train the click model on valid users, test it on test users.

See the package docstring (`shelfwise.ranking`) for the design. Batch role only.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import polars as pl
import scipy.sparse as sp

from shelfwise._internal.artifacts import atomic_write_json, read_csr
from shelfwise._internal.stage import StageContext, StageResult
from shelfwise.config import RankingConfig
from shelfwise.contracts import SPLIT, FloatArray, IntArray, SplitName
from shelfwise.evaluate.classifier import (
    best_f1_threshold,
    classifier_metrics,
    curves,
    plot_curves,
)
from shelfwise.evaluate.metrics import ranking_metrics
from shelfwise.evaluate.policy import repeat_targets
from shelfwise.ranking._candidates import (
    Candidates,
    PairSet,
    labelled_pairs,
    ordered_histories,
    retrieve,
)
from shelfwise.ranking._train import Fitted, fit_lightgbm, fit_mlp, standardisation
from shelfwise.ranking.features import (
    FEATURE_NAMES,
    REPURCHASE_FEATURES,
    ItemTable,
    UserTable,
)
from shelfwise.ranking.features import build_tables as _build_tables
from shelfwise.ranking.model import ClickModel
from shelfwise.retrieval import load_recommender
from shelfwise.retrieval.base import Recommender
from shelfwise.retrieval.stage import train_only_folder

MODEL_DIR: Final = "model"
REPORT_FILE: Final = "ranking.json"
CURVES_FILE: Final = "curves.json"
USERS_FILE: Final = "users.npz"
HOLDOUT_SHARE: Final = 0.2
RERANK_METRIC: Final = "ndcg@10"
_TRAINERS: Final = {"lightgbm": fit_lightgbm, "mlp": fit_mlp}
_CUTOFFS: Final[dict[str, tuple[str, ...]]] = {
    "train": (SplitName.TRAIN.value,),
    "train_valid": (SplitName.TRAIN.value, SplitName.VALID.value),
    "full": tuple(name.value for name in SplitName),
}


@dataclass(frozen=True)
class _Inputs:
    retriever_name: str
    retriever: Recommender  # served: test candidates
    train_retriever: Recommender  # fitted on train: valid candidates
    features: Path
    valid_targets: sp.csr_matrix
    test_targets: sp.csr_matrix
    tables: dict[str, tuple[ItemTable, UserTable]]
    repeats: bool = False  # candidates may be seen items, targets keep repeats


def run(ctx: StageContext) -> StageResult:
    """Train, compare, test and save the click model (see `shelfwise.ranking`)."""
    config = ctx.config.ranking
    if not config.enabled:
        return _skipped(ctx, "ranking.enabled is false")
    metrics = json.loads((ctx.inputs["evaluate"] / "metrics.json").read_text(encoding="utf-8"))
    name = (metrics.get("selected") or {}).get("recommender")
    if not name:
        return _skipped(ctx, "no recommender was selected (a shop without events)")
    features = ctx.inputs["features"]
    targets = _targets(features, str((metrics.get("selected") or {}).get("repeat_policy")))
    valid_targets, test_targets, repeats = targets
    if valid_targets.nnz == 0:
        return _skipped(ctx, "the split has no valid events; set split.valid_fraction > 0")
    timings: dict[str, float] = {}
    started = time.perf_counter()
    served, train_only = _model_folders(ctx, name)
    retriever = load_recommender(name, served)
    inputs = _Inputs(
        retriever_name=name,
        retriever=retriever,
        train_retriever=retriever if train_only == served else load_recommender(name, train_only),
        features=features,
        valid_targets=valid_targets,
        test_targets=test_targets,
        tables=_tables(features),
        repeats=repeats,
    )
    timings["tables"] = time.perf_counter() - started
    return _train_and_report(ctx, config, inputs, timings)


def _train_and_report(
    ctx: StageContext, config: RankingConfig, inputs: _Inputs, timings: dict[str, float]
) -> StageResult:
    seed = ctx.config.seed
    k_values = sorted({*ctx.config.evaluate.k_values, 10})
    clock = time.perf_counter()
    users = sample_users(inputs.valid_targets, max_users=config.max_users, seed=seed)
    holdout_users = split_holdout(users, share=HOLDOUT_SHARE, seed=seed)
    candidates = _candidates(inputs, "train", users, config.candidates)
    train_items, train_users = inputs.tables["train"]
    pairs = labelled_pairs(candidates, inputs.valid_targets, train_items, train_users)
    in_holdout = np.isin(candidates.users, holdout_users)
    fit, holdout = pairs.subset(~in_holdout), pairs.subset(in_holdout)
    timings["train_candidates"] = time.perf_counter() - clock
    if not fit.labels.any() or not holdout.labels.any():
        return _skipped(
            ctx,
            f"the {inputs.retriever_name} candidates hold too few valid targets "
            f"({int(fit.labels.sum())} in training, {int(holdout.labels.sum())} held out); "
            "raise ranking.candidates or use more data",
        )

    feature_names = tuple(
        name
        for name in FEATURE_NAMES
        if config.repurchase_features or name not in REPURCHASE_FEATURES
    )
    columns = np.array([FEATURE_NAMES.index(name) for name in feature_names], dtype=np.int64)
    mean, std = standardisation(fit.features[:, columns])
    names = list(_TRAINERS) if config.model == "auto" else [config.model]
    models: dict[str, ClickModel] = {}
    fitted: dict[str, Fitted] = {}
    for model_name in names:
        clock = time.perf_counter()
        fitted[model_name] = _TRAINERS[model_name](
            fit.features[:, columns],
            fit.labels,
            holdout.features[:, columns],
            holdout.labels,
            seed=seed,
            feature_names=feature_names,
        )
        timings[f"fit_{model_name}"] = time.perf_counter() - clock
        models[model_name] = ClickModel(
            scorer=fitted[model_name].scorer,
            items=train_items,
            users=train_users,
            mean=mean,
            std=std,
            candidates=config.candidates,
            retriever=inputs.retriever_name,
            feature_names=feature_names,
            repeats=inputs.repeats,
        )
    holdout_probabilities = {n: m.probabilities(holdout.features) for n, m in models.items()}
    holdout_auc = {
        n: classifier_metrics(holdout.labels, p, 0.5)["auc"] or 0.0
        for n, p in holdout_probabilities.items()
    }
    # max() keeps the first of equal AUCs: LightGBM, the cheaper one to serve
    chosen = max(names, key=lambda n: holdout_auc[n])
    thresholds = {n: best_f1_threshold(holdout.labels, p) for n, p in holdout_probabilities.items()}
    rerank_holdout = _order_metrics(
        holdout, holdout_probabilities[chosen], inputs.valid_targets, k_values
    )
    kept = rerank_holdout["reranked"][RERANK_METRIC] > rerank_holdout["retriever"][RERANK_METRIC]

    clock = time.perf_counter()
    test = _test_pairs(inputs, config, seed)
    timings["test_candidates"] = time.perf_counter() - clock
    report_models: dict[str, Any] = {}
    all_curves: dict[str, Any] = {}
    test_aucs: dict[str, float | None] = {}
    rerank_test: dict[str, Any] = {}
    for model_name, model in models.items():
        entry: dict[str, Any] = {
            "holdout": classifier_metrics(
                holdout.labels, holdout_probabilities[model_name], thresholds[model_name]
            ),
            "training": fitted[model_name].report,
        }
        if test is not None:
            probabilities = model.probabilities(test.features)
            entry["test"] = classifier_metrics(test.labels, probabilities, thresholds[model_name])
            test_aucs[model_name] = entry["test"]["auc"]
            all_curves[model_name] = curves(test.labels, probabilities)
            if model_name == chosen:
                rerank_test = _order_metrics(test, probabilities, inputs.test_targets, k_values)
        report_models[model_name] = entry
    if test is not None:
        # the retriever's own order as a classifier: a better rank, a higher score
        baseline = (1.0 / (1.0 + test.columns)).astype(np.float32)
        all_curves["retriever"] = curves(test.labels, baseline)
        test_aucs["retriever"] = classifier_metrics(test.labels, baseline, 1.0)["auc"]

    full_items, full_users = inputs.tables["full"]
    served = ClickModel(
        scorer=fitted[chosen].scorer,
        items=full_items,
        users=full_users,
        mean=mean,
        std=std,
        threshold=thresholds[chosen],
        rerank=bool(kept),
        candidates=config.candidates,
        retriever=inputs.retriever_name,
        info={"holdout_auc": holdout_auc[chosen], "test_auc": test_aucs.get(chosen)},
        feature_names=feature_names,
        repeats=inputs.repeats,
    )
    served.save(ctx.out / MODEL_DIR)
    np.savez(
        ctx.out / USERS_FILE,
        fit=np.sort(fit.candidates.users),
        holdout=np.sort(holdout.candidates.users),
        test=np.sort(test.candidates.users) if test is not None else np.empty(0, np.int64),
    )
    atomic_write_json(ctx.out / CURVES_FILE, {"selected": chosen, "test": all_curves})
    plots = (
        plot_curves(
            all_curves,
            test_aucs,
            float(test.labels.mean()) if test is not None else 0.0,
            ctx.out,
        )
        if all_curves
        else []
    )
    report = {
        "status": "trained",
        "retriever": inputs.retriever_name,
        "candidates": config.candidates,
        "selected_model": chosen,
        "selection": "highest held-out AUC" if config.model == "auto" else "ranking.model",
        "kept": bool(kept),
        "rerank": bool(kept),
        "threshold": thresholds[chosen],
        "test": report_models[chosen].get("test"),
        "retriever_test_auc": test_aucs.get("retriever"),
        "models": report_models,
        "rerank_holdout": rerank_holdout,
        "rerank_test": rerank_test,
        "data": {
            "fit_users": int(fit.candidates.users.size),
            "holdout_users": int(holdout.candidates.users.size),
            "test_users": int(test.candidates.users.size) if test is not None else 0,
            "fit_rows": int(fit.labels.size),
            "fit_positives": int(fit.labels.sum()),
            "holdout_rows": int(holdout.labels.size),
            "holdout_positives": int(holdout.labels.sum()),
            "test_rows": int(test.labels.size) if test is not None else 0,
            "test_positives": int(test.labels.sum()) if test is not None else 0,
            "labels": {
                split: f"{target}_targets{'_all' if inputs.repeats else ''}"
                for split, target in (("fit", "valid"), ("holdout", "valid"), ("test", "test"))
            },
            "histories": {"fit": "train", "holdout": "train", "test": "train_valid"},
            "served_tables": "full",
        },
        "features": list(feature_names),
        "repeat_policy": "allow" if inputs.repeats else "exclude",
        "plots": plots,
        "timings_s": {key: round(value, 3) for key, value in timings.items()},
    }
    atomic_write_json(ctx.out / REPORT_FILE, report)
    return _result(report)


def _result(report: dict[str, Any]) -> StageResult:
    test = report.get("test") or {}
    holdout = report["rerank_holdout"]
    auc = test.get("auc")
    auc_text = f"test AUC {auc:.3f}, " if auc is not None else ""
    decision = "re-ranking on" if report["rerank"] else "re-ranking off (no gain)"
    summary = (
        f"click model {report['selected_model']} on {report['retriever']} candidates: "
        f"{auc_text}held-out {RERANK_METRIC} {holdout['retriever'][RERANK_METRIC]:.4f} -> "
        f"{holdout['reranked'][RERANK_METRIC]:.4f}, {decision}"
    )
    data = report["data"]
    return StageResult(
        row_counts={
            "fit_rows": data["fit_rows"],
            "holdout_rows": data["holdout_rows"],
            "test_rows": data["test_rows"],
            "fit_users": data["fit_users"],
            "holdout_users": data["holdout_users"],
            "test_users": data["test_users"],
        },
        extra={
            "status": "trained",
            "selected_model": report["selected_model"],
            "rerank": report["rerank"],
            "test_auc": auc,
        },
        summary=summary,
    )


def _skipped(ctx: StageContext, reason: str) -> StageResult:
    atomic_write_json(ctx.out / REPORT_FILE, {"status": "skipped", "reason": reason})
    return StageResult(extra={"status": "skipped", "reason": reason}, summary=f"skipped: {reason}")


def _targets(features: Path, policy: str) -> tuple[sp.csr_matrix, sp.csr_matrix, bool]:
    """Valid and test targets, and whether candidates may be seen items.

    Under the evaluate stage's resolved policy `allow`, the click model is trained and
    tested as the lists are served: candidates include the user's own items and the
    targets keep repeat purchases (`<split>_targets_all.npz`), which is where the
    repurchase features carry information. Otherwise (or for a features folder
    without those targets) seen items are never candidates.
    """
    if policy == "allow":
        valid_all, test_all = repeat_targets(features, "valid"), repeat_targets(features, "test")
        if valid_all is not None and test_all is not None:
            return valid_all, test_all, True
    return read_csr(features / "valid_targets.npz"), read_csr(features / "test_targets.npz"), False


def _tables(features: Path) -> dict[str, tuple[ItemTable, UserTable]]:
    items = pl.read_parquet(features / "items.parquet")
    n_users = pl.read_parquet(features / "users.parquet").height
    interactions = pl.read_parquet(features / "interactions.parquet")
    return {
        cutoff: _build_tables(
            items, interactions.filter(pl.col(SPLIT).is_in(list(splits))), n_users=n_users
        )
        for cutoff, splits in _CUTOFFS.items()
    }


def _candidates(inputs: _Inputs, cutoff: str, users: IntArray, n: int) -> Candidates:
    # Valid users' candidates (the click model's training rows) come from the fit on
    # train alone: a retriever refitted on train + valid would have learnt the very
    # valid targets they are labelled with. Test users get the served retriever.
    retriever = inputs.train_retriever if cutoff == "train" else inputs.retriever
    history = read_csr(inputs.features / f"{cutoff}.npz").astype(np.float32)
    return retrieve(
        retriever,
        history,
        users,
        n,
        sequences=ordered_histories(inputs.features, cutoff),
        label=f"{inputs.retriever_name} candidates ({cutoff}, {users.size:,} users)",
        exclude_seen=not inputs.repeats,
    )


def _test_pairs(inputs: _Inputs, config: RankingConfig, seed: int) -> PairSet | None:
    users = sample_users(inputs.test_targets, max_users=config.max_users, seed=seed)
    if users.size == 0:
        return None
    candidates = _candidates(inputs, "train_valid", users, config.candidates)
    items, user_table = inputs.tables["train_valid"]
    return labelled_pairs(candidates, inputs.test_targets, items, user_table)


def _order_metrics(
    pairs: PairSet, probabilities: FloatArray, targets: sp.csr_matrix, k_values: list[int]
) -> dict[str, dict[str, float]]:
    """Ranking metrics of the candidates in the retriever's order and by probability."""
    candidates = pairs.candidates
    grid = np.nan_to_num(pairs.grid(probabilities), nan=-np.inf)
    # stable: equal probabilities keep the retriever's order; padding (-inf) goes last
    order = np.argsort(-grid, axis=1, kind="stable")
    reranked = np.take_along_axis(candidates.items, order, axis=1)
    truth = targets[candidates.users]
    return {
        "retriever": ranking_metrics(candidates.items, truth, k_values),
        "reranked": ranking_metrics(reranked, truth, k_values),
    }


def sample_users(targets: sp.csr_matrix, *, max_users: int | None, seed: int) -> IntArray:
    """Users with at least one target, optionally a seeded sample of them (sorted)."""
    users = np.flatnonzero(targets.getnnz(axis=1) > 0).astype(np.int64)
    if max_users is not None and users.size > max_users:
        rng = np.random.default_rng(seed)
        users = np.sort(rng.choice(users, size=max_users, replace=False))
    return users


def split_holdout(users: IntArray, *, share: float, seed: int) -> IntArray:
    """A seeded `share` of `users` (at least one, never all when there are two or more)."""
    if users.size == 0:
        return users
    count = min(max(1, round(users.size * share)), max(users.size - 1, 1))
    rng = np.random.default_rng(seed + 1)
    return np.sort(rng.choice(users, size=count, replace=False))


def _model_folders(ctx: StageContext, name: str) -> tuple[Path, Path]:
    """A fitted model's served and train-only folders: the retrieval stage's, or
    evaluate's for a kept blend (the same folder twice when nothing was refitted)."""
    blend = ctx.inputs["evaluate"] / name
    stage = ctx.inputs["evaluate"] if blend.is_dir() else ctx.inputs["retrieval"]
    return stage / name, train_only_folder(stage, name)
