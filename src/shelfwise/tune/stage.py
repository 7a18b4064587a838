"""The tune stage (see the package docstring): every enabled family within the budget.

Two rounds. First every tunable family's baseline trial (its configured parameters),
cheapest first by the plan's estimate, so the budget reaches every family before any
gets a second trial. Baselines run even when earlier ones ran over (a family never
tried is not tuned at all; the plan sizes the default budget to hold them); only a
family whose baseline alone is estimated over the whole budget is left untuned, and
reported with its estimate, never silently skipped. Then what is left of the budget
is shared out in equal parts (what one family leaves unused goes to the next).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from shelfwise._internal.artifacts import atomic_write_json, read_csr
from shelfwise._internal.stage import StageContext, StageResult
from shelfwise.config import ModelConfig, ShelfwiseConfig
from shelfwise.evaluate.recommend import EvalSplit, evaluation_users
from shelfwise.plan import load_plan
from shelfwise.retrieval import REPEAT_MODELS
from shelfwise.retrieval.fitting import TrainingData, why_not
from shelfwise.retrieval.stage import BASELINE_FITS
from shelfwise.tune import study
from shelfwise.tune.study import FamilyResult, baseline_trial, tune_family


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
    valid_for = _repeat_aware(config, features, valid)
    estimates = _estimates(ctx)

    families: dict[str, ModelConfig] = {}
    if not config.tune.enabled or users.size == 0:
        skipped["all"] = "tune disabled" if not config.tune.enabled else "no validation users"
    else:
        from shelfwise.tune.spaces import SPACES  # imports optuna: only when tuning

        for name, family in config.models.families().items():
            if not (family.enabled and family.tune and name in SPACES):
                continue
            reason = why_not(name, data)
            if name in REPEAT_MODELS and valid_for(name) is valid:
                # no repeat to learn from (or policy exclude): their budget goes to the
                # others (ml-100k's classic families lost trials to them otherwise)
                reason = "no repeat targets in validation (or repeat_policy exclude)"
            if reason:
                skipped[name] = reason
            else:
                families[name] = family
    # cheapest first: a costly family cannot starve the cheap ones of their baseline
    order = sorted(families, key=lambda name: estimates.get(name, 0.0))
    metric, budget = config.evaluate.primary_metric, config.tune.budget_seconds
    started = study._clock()
    baselines: dict[str, tuple[float, float]] = {}
    on_ray = config.compute.engine == "ray"
    for name in order:
        estimate = estimates.get(name)
        if estimate is not None and estimate > budget:
            skipped[name] = _cannot_fit(name, estimate, budget)
            continue
        # Every baseline runs, even past the budget: a family never tried is not tuned
        # at all. The plan sizes the default budget to hold them all; only extra
        # trials stop at the budget.
        if not on_ray:
            baselines[name] = baseline_trial(
                name,
                families[name],
                data,
                valid_for(name),
                metric,
                keep=ctx.out / BASELINE_FITS / name,
            )
    if on_ray:  # the same baselines, as parallel Ray tasks (see tune.ray_tune)
        from shelfwise.tune.ray_tune import baseline_trials

        to_run = {name: families[name] for name in order if name not in skipped}
        baselines = baseline_trials(
            to_run,
            data,
            {name: valid_for(name) for name in to_run},
            metric,
            keep=ctx.out / BASELINE_FITS,
            compute=config.compute,
        )
    baseline_seconds = study._clock() - started
    tuned = [name for name in order if name in baselines]
    for position, name in enumerate(tuned):
        left = max(budget - (study._clock() - started), 0.0)
        # an equal share of what is left, but never less than one more trial while the
        # budget still holds one: shares smaller than a trial would tune nothing at all
        share = max(left / (len(tuned) - position), min(left, baselines[name][1]))
        result = _tune_family(config)(
            name,
            families[name],
            _space(name),
            data,
            valid_for(name),
            metric=metric,
            n_trials=config.tune.trials_per_model,
            budget_seconds=share,
            seed=config.seed,
            baseline=baselines[name],
        )
        best[name] = {
            "params": result.best_params,
            "value": result.best_value,
            "baseline_value": result.baseline_value,
            "seconds": round(result.seconds + baselines[name][1], 2),
            "trials": len(result.trials),
        }
        trials.extend(result.trials)
    atomic_write_json(ctx.out / "best.json", best)
    atomic_write_json(ctx.out / "trials.json", trials)
    lines = [f"{n} {b['baseline_value']:.4f}→{b['value']:.4f}" for n, b in best.items()]
    summary = (f"{metric} on valid: " + ", ".join(lines)) if lines else "nothing tuned"
    unreached = [name for name in families if name not in baselines]
    if unreached:
        summary += f"; not tuned: {', '.join(unreached)} (see the manifest)"
    return StageResult(
        row_counts={"families": len(best), "trials": len(trials), "valid_users": int(users.size)},
        extra={
            "skipped": skipped,
            "seconds": round(study._clock() - started, 2),
            "budget_seconds": budget,
            "baseline_seconds": round(baseline_seconds, 2),
            "order": order,
        },
        summary=summary,
    )


def _tune_family(config: ShelfwiseConfig) -> Callable[..., FamilyResult]:
    """The local Optuna study, or the same study on Ray Tune with engine ray."""
    if config.compute.engine != "ray":
        return tune_family
    from shelfwise.tune.ray_tune import tune_family_ray

    return partial(tune_family_ray, compute=config.compute)


def _repeat_aware(
    config: ShelfwiseConfig, features: Path, valid: EvalSplit
) -> Callable[[str], EvalSplit]:
    """The validation split each family is tuned on (issue 15).

    The repeat models (`buy_again`, `tifu_knn`) score the user's own items, so unless
    the repeat policy is `exclude` they are tuned with seen items listable and repeat
    targets counted, as the evaluate stage will judge them when repeats are allowed;
    every other family is tuned as before. Without a repeat target in validation
    (nothing to learn from) every family gets `valid`.
    """
    every_path = features / "valid_targets_all.npz"
    if config.models.repeat_policy == "exclude" or not every_path.is_file():
        return lambda name: valid
    every = read_csr(every_path)
    if every.nnz <= valid.targets.nnz:
        return lambda name: valid
    users = evaluation_users(every, max_users=config.tune.max_eval_users, seed=config.seed)
    repeats = replace(valid, targets=every, users=users, exclude_seen=False)
    return lambda name: repeats if name in REPEAT_MODELS else valid


def _estimates(ctx: StageContext) -> dict[str, float]:
    """The plan's estimated seconds of one trial per family (none without a plan)."""
    folder = ctx.inputs.get("plan")
    if folder is None or not (folder / "plan.json").is_file():
        return {}
    return dict(load_plan(folder).tune_trial_seconds)


def _cannot_fit(name: str, estimate: float, budget: float) -> str:
    return (
        f"its baseline trial is estimated at ≈{estimate:.0f} s, more than "
        f"tune.budget_seconds={budget:.0f}; it keeps its configured parameters untuned. "
        f"Raise tune.budget_seconds to tune {name}"
    )


def _space(name: str) -> Any:
    from shelfwise.tune.spaces import SPACES

    return SPACES[name]
