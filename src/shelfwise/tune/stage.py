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

from typing import Any

from shelfwise._internal.artifacts import atomic_write_json, read_csr
from shelfwise._internal.stage import StageContext, StageResult
from shelfwise.config import ModelConfig
from shelfwise.evaluate.recommend import EvalSplit, evaluation_users
from shelfwise.plan import load_plan
from shelfwise.retrieval.fitting import TrainingData, why_not
from shelfwise.retrieval.stage import BASELINE_FITS
from shelfwise.tune import study
from shelfwise.tune.study import baseline_trial, tune_family


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
            if reason:
                skipped[name] = reason
            else:
                families[name] = family
    # cheapest first: a costly family cannot starve the cheap ones of their baseline
    order = sorted(families, key=lambda name: estimates.get(name, 0.0))
    metric, budget = config.evaluate.primary_metric, config.tune.budget_seconds
    started = study._clock()
    baselines: dict[str, tuple[float, float]] = {}
    for name in order:
        estimate = estimates.get(name)
        if estimate is not None and estimate > budget:
            skipped[name] = _cannot_fit(name, estimate, budget)
            continue
        # Every baseline runs, even past the budget: a family never tried is not tuned
        # at all. The plan sizes the default budget to hold them all; only extra
        # trials stop at the budget.
        baselines[name] = baseline_trial(
            name, families[name], data, valid, metric, keep=ctx.out / BASELINE_FITS / name
        )
    baseline_seconds = study._clock() - started
    tuned = [name for name in order if name in baselines]
    for position, name in enumerate(tuned):
        left = max(budget - (study._clock() - started), 0.0)
        # an equal share of what is left, but never less than one more trial while the
        # budget still holds one: shares smaller than a trial would tune nothing at all
        share = max(left / (len(tuned) - position), min(left, baselines[name][1]))
        result = tune_family(
            name,
            families[name],
            _space(name),
            data,
            valid,
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
