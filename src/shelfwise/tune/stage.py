"""The tune stage (see the package docstring): every enabled family within the budget."""

from __future__ import annotations

import time
from typing import Any

from shelfwise._internal.artifacts import atomic_write_json, read_csr
from shelfwise._internal.stage import StageContext, StageResult
from shelfwise.config import ModelConfig
from shelfwise.evaluate.recommend import EvalSplit, evaluation_users
from shelfwise.retrieval.fitting import TrainingData, why_not
from shelfwise.tune.study import tune_family


def run(ctx: StageContext) -> StageResult:
    """Tune every enabled, tunable family within the budget."""
    config = ctx.config
    features = ctx.inputs["features"]
    best: dict[str, dict[str, Any]] = {}
    trials: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    data = TrainingData.load(features)
    targets = read_csr(features / "valid_targets.npz")
    users = evaluation_users(targets, max_users=config.tune.max_eval_users, seed=config.seed)
    valid = EvalSplit(data.matrix, data.sequences, targets, users)

    families: dict[str, ModelConfig] = {}
    if not config.tune.enabled or users.size == 0:
        skipped["all"] = "tune disabled" if not config.tune.enabled else "no validation users"
    else:
        from shelfwise.tune.spaces import SPACES  # imports optuna: only when tuning

        families = {
            name: family
            for name, family in config.models.families().items()
            if family.enabled and family.tune and name in SPACES
        }
    started = time.perf_counter()
    for position, (name, family) in enumerate(families.items()):
        reason = why_not(name, data)
        if reason:
            skipped[name] = reason
            continue
        left = config.tune.budget_seconds - (time.perf_counter() - started)
        if left <= 0:
            skipped[name] = "tune.budget_seconds spent; configured parameters kept"
            continue
        share = left / (len(families) - position)
        result = tune_family(
            name,
            family,
            _space(name),
            data,
            valid,
            metric=config.evaluate.primary_metric,
            n_trials=config.tune.trials_per_model,
            budget_seconds=share,
            seed=config.seed,
        )
        best[name] = {
            "params": result.best_params,
            "value": result.best_value,
            "baseline_value": result.baseline_value,
            "seconds": round(result.seconds, 2),
            "trials": len(result.trials),
        }
        trials.extend(result.trials)
    atomic_write_json(ctx.out / "best.json", best)
    atomic_write_json(ctx.out / "trials.json", trials)
    metric = config.evaluate.primary_metric
    lines = [f"{n} {b['baseline_value']:.4f}→{b['value']:.4f}" for n, b in best.items()]
    return StageResult(
        row_counts={"families": len(best), "trials": len(trials), "valid_users": int(users.size)},
        extra={"skipped": skipped, "seconds": round(time.perf_counter() - started, 2)},
        summary=(f"{metric} on valid: " + ", ".join(lines)) if lines else "nothing tuned",
    )


def _space(name: str) -> Any:
    from shelfwise.tune.spaces import SPACES

    return SPACES[name]
