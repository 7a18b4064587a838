"""Optuna search for one model family on the validation split.

Each trial fits the model on the train matrix and scores a seeded sample of validation
users on the primary metric. Pruning is by growing evaluation: a trial is first scored
on a quarter of the sampled users and stopped there when the median pruner finds it
worse than earlier trials at that step, so bad settings cost a fraction of a trial.
The configured parameters are always scored first (trial "baseline"), so tuning can
only improve on them.

Time: a trial starts only while the family's remaining budget is at least as long as
its last trial that ran to the end (the baseline at first), so a family overshoots its
share by less than one trial's spread, not by a whole trial. On catalogs of at most
`ONE_BLAS_THREAD_MAX_ITEMS` items trials run with one BLAS thread (why: see
`shelfwise.evaluate.recommend`).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from shelfwise.config import ModelConfig
from shelfwise.evaluate.metrics import parse_metric, ranking_metrics
from shelfwise.evaluate.recommend import ONE_BLAS_THREAD_MAX_ITEMS, EvalSplit, rank_users
from shelfwise.retrieval.fitting import TrainingData, build_model, fit_model

logger = logging.getLogger(__name__)
SpaceFunction = Any  # Callable[[optuna.Trial], dict[str, Any]]
_clock = time.perf_counter  # the budget's clock (a module attribute, so tests can replace it)


@dataclass
class FamilyResult:
    """The outcome of tuning one family."""

    name: str
    best_params: dict[str, Any]
    best_value: float
    baseline_value: float
    seconds: float
    trials: list[dict[str, Any]] = field(default_factory=list)


def score_params(
    name: str,
    params: dict[str, Any],
    config: ModelConfig,
    data: TrainingData,
    valid: EvalSplit,
    metric: str,
    trial: optuna.Trial | None = None,
    keep: Path | None = None,
) -> float:
    """Fit `name` with `params` and return the metric on the validation users.

    Args:
        keep: save the fitted model into this folder (the baseline's fit, which the
            retrieval stage reuses when tuning keeps the configured parameters).
    """
    model = build_model(name, params)
    fit_model(model, data, half_life_days=config.half_life_days)
    if keep is not None:
        model.save(keep)
    _, k = parse_metric(metric)
    steps = [max(100, valid.users.size // 4), valid.users.size] if trial else [valid.users.size]
    value = 0.0
    for step, count in enumerate(steps):
        part = valid.subset(min(count, valid.users.size))
        ranked = rank_users(model, part, k, label=f"{name} trial")
        value = ranking_metrics(ranked, part.targets[part.users], [k]).get(metric, 0.0)
        if trial is not None and step < len(steps) - 1:
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
    return float(value)


def tune_family(
    name: str,
    config: ModelConfig,
    space: SpaceFunction,
    data: TrainingData,
    valid: EvalSplit,
    *,
    metric: str,
    n_trials: int,
    budget_seconds: float,
    seed: int,
    baseline: tuple[float, float] | None = None,
) -> FamilyResult:
    """Search `space` for `name` within `n_trials` and `budget_seconds`.

    A trial starts only while the time left is at least the duration of the family's
    last complete trial (the baseline's at first).

    Args:
        baseline: the configured parameters' (value, seconds) when already scored
            (`baseline_trial`); None scores them first, within the budget.
    """
    # threadpoolctl comes with scikit-learn (the train extra), as optuna does.
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    started = _clock()
    with threadpool_limits(blas_threads(data), "blas"):
        if baseline is None:
            baseline = baseline_trial(name, config, data, valid, metric)
        baseline_value, last_complete = baseline
        baseline_seconds = last_complete
        durations: dict[int, float] = {}

        def objective(trial: optuna.Trial) -> float:
            params = {**config.params, **space(trial)}
            begun = _clock()
            try:
                return score_params(name, params, config, data, valid, metric, trial)
            finally:
                durations[trial.number] = _clock() - begun

        def stop_when_short(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            nonlocal last_complete
            if trial.state == optuna.trial.TrialState.COMPLETE:
                last_complete = durations.get(trial.number, last_complete)
            if budget_seconds - (_clock() - started) < last_complete:
                study.stop()

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(5, n_trials))
        pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
        study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
        remaining = budget_seconds - (_clock() - started)
        if remaining >= last_complete:
            study.optimize(
                objective,
                n_trials=n_trials,
                timeout=remaining,
                catch=(MemoryError,),
                callbacks=[stop_when_short],
            )
    best_params, best_value, trials = summarise_study(
        name, config, study.trials, baseline_value, baseline_seconds
    )
    seconds = _clock() - started
    logger.info("%s: %s %.4f -> %.4f in %.1fs", name, metric, baseline_value, best_value, seconds)
    return FamilyResult(name, best_params, best_value, baseline_value, seconds, trials)


def summarise_study(
    name: str,
    config: ModelConfig,
    study_trials: list[optuna.trial.FrozenTrial],
    baseline_value: float,
    baseline_seconds: float,
) -> tuple[dict[str, Any], float, list[dict[str, Any]]]:
    """(best params, best value, `trials.json` rows) of a family's study.

    The baseline row first; the best is the baseline unless a complete trial beat it.
    Used by the local study and by the Ray Tune path (`shelfwise.tune.ray_tune`), so
    both write the same results.
    """
    trials: list[dict[str, Any]] = [
        {
            "family": name,
            "number": "baseline",
            "params": dict(config.params),
            "value": baseline_value,
            "seconds": round(baseline_seconds, 3),
            "state": "COMPLETE",
        }
    ]
    best_params, best_value = dict(config.params), baseline_value
    for trial in study_trials:
        value = trial.value if trial.value is not None else math.nan
        trials.append(
            {
                "family": name,
                "number": trial.number,
                "params": {**config.params, **trial.params},
                "value": None if math.isnan(value) else value,
                "seconds": round(trial.duration.total_seconds(), 3) if trial.duration else None,
                "state": trial.state.name,
            }
        )
        if trial.state == optuna.trial.TrialState.COMPLETE and value > best_value:
            best_params, best_value = {**config.params, **trial.params}, value
    return best_params, best_value, trials


def baseline_trial(
    name: str,
    config: ModelConfig,
    data: TrainingData,
    valid: EvalSplit,
    metric: str,
    *,
    keep: Path | None = None,
) -> tuple[float, float]:
    """Score the configured parameters once: (value, seconds).

    A plain function over plain data, so one family's baseline is one unit of work
    (the tune stage runs every family's before any family's second trial). With
    `keep`, the fitted model is saved there.
    """
    from threadpoolctl import threadpool_limits

    started = _clock()
    with threadpool_limits(blas_threads(data), "blas"):
        value = score_params(name, dict(config.params), config, data, valid, metric, keep=keep)
    return value, _clock() - started


def blas_threads(data: TrainingData) -> int | None:
    """BLAS threads for a trial: 1 on catalogs small enough (see the module docstring)."""
    return 1 if data.n_items <= ONE_BLAS_THREAD_MAX_ITEMS else None
