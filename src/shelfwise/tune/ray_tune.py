"""AutoML trials on Ray Tune (`compute.engine: ray`), with the local study's semantics.

The local path (`shelfwise.tune.study`) runs one Optuna study per family in this
process. With engine ray the same study runs on Ray Tune: `ray.tune.Tuner` with
`OptunaSearch` over the same define-by-run search space and the same seeded
`TPESampler`, each trial a Ray task with one CPU somewhere on the cluster, and the
same rules:

- **Baselines first**: every family's baseline trial (its configured parameters) runs
  before any family's second trial; with Ray they run as parallel tasks
  (`baseline_trials`), their fitted models sent back and saved here.
- **Budget**: a trial starts only while the family's share left is at least its last
  complete trial (the searcher answers "finished" otherwise); a running trial runs to
  its end, as locally. `n_trials` caps the trials.
- **Pruning**: the trial reports its value on the first quarter of the users (step 0)
  and Optuna's `MedianPruner` (3 startup trials, as locally) decides there, on the same
  study the sampler reads, so pruned trials reach TPE as PRUNED, as locally.
- **Output**: the trials read back from that study, summarised by the local path's own
  `summarise_study`, so `best.json` and `trials.json` have the same form.

Concurrency (`compute.tune_concurrent_trials`, default: the cluster's CPUs): the first
`min(5, n_trials)` proposals are TPE's seeded random start-up draws and equal the
local study's whatever the concurrency; later ones depend on which trials have
finished when a trial is asked for, so with more than one trial in flight they can
differ from the local run (and from run to run). With 1 the sequence of proposals,
values and the chosen parameters equal the local path's (tests check it).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import optuna

from shelfwise.compute import open_executor
from shelfwise.config import ComputeConfig, ModelConfig
from shelfwise.evaluate.metrics import parse_metric, ranking_metrics
from shelfwise.evaluate.recommend import EvalSplit, rank_users
from shelfwise.retrieval.fitting import TrainingData, build_model, fit_model
from shelfwise.tune.study import (
    FamilyResult,
    SpaceFunction,
    baseline_trial,
    blas_threads,
    summarise_study,
)

VALUE, STEP, FINAL, SECONDS = "value", "step", "final", "seconds"


def baseline_trials(
    families: dict[str, ModelConfig],
    data: TrainingData,
    valid: dict[str, EvalSplit],
    metric: str,
    *,
    keep: Path,
    compute: ComputeConfig,
) -> dict[str, tuple[float, float]]:
    """Every family's baseline trial as parallel Ray tasks: name -> (value, seconds).

    Each task fits and scores like `baseline_trial` on its family's validation split
    (`valid[name]`: the repeat models' may list seen items) and sends its fitted
    model's files back; they are written here under `keep/<family>` (no shared
    storage needed).
    """
    executor = open_executor(compute)
    names = list(families)
    results = executor.map(
        _baseline_task,
        [(name, families[name]) for name in names],
        (data, valid, metric),
        what="baseline trial",
    )
    baselines: dict[str, tuple[float, float]] = {}
    for name, (value, seconds, files) in zip(names, results, strict=True):
        for relative, content in files.items():
            target = keep / name / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        baselines[name] = (value, seconds)
    return baselines


def _baseline_task(
    family: tuple[str, ModelConfig], shared: tuple[TrainingData, dict[str, EvalSplit], str]
) -> tuple[float, float, dict[str, bytes]]:
    name, config = family
    data, valid, metric = shared
    folder = Path(tempfile.mkdtemp(prefix="shelfwise-baseline-"))
    try:
        value, seconds = baseline_trial(
            name, config, data, valid[name], metric, keep=folder / "fit"
        )
        files = {
            str(path.relative_to(folder / "fit")): path.read_bytes()
            for path in sorted((folder / "fit").rglob("*"))
            if path.is_file()
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return value, seconds, files


def _trial(params: dict[str, Any], inputs: tuple[Any, ...]) -> None:
    """One Ray Tune trial: fit, score step 0 (a quarter of the users), then all users.

    Mirrors `shelfwise.tune.study.score_params` with a trial: the same steps and users.
    """
    from ray import tune
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    name, config, data, valid, metric = inputs
    begun = time.perf_counter()
    with threadpool_limits(blas_threads(data), "blas"):
        model = build_model(name, {**config.params, **params})
        fit_model(model, data, half_life_days=config.half_life_days)
        _, k = parse_metric(metric)
        steps = [max(100, valid.users.size // 4), valid.users.size]
        for step, count in enumerate(steps):
            part = valid.subset(min(count, valid.users.size))
            ranked = rank_users(model, part, k, label=f"{name} trial")
            value = ranking_metrics(ranked, part.targets[part.users], [k]).get(metric, 0.0)
            final = step == len(steps) - 1
            seconds = time.perf_counter() - begun
            tune.report({VALUE: float(value), STEP: step, FINAL: final, SECONDS: seconds})


def tune_family_ray(
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
    baseline: tuple[float, float],
    compute: ComputeConfig,
) -> FamilyResult:
    """`shelfwise.tune.study.tune_family` on Ray Tune (see the module docstring).

    Raises:
        ComputeUnavailableError: the cluster cannot be reached.
        Exception: a trial's own error (MemoryError excepted: that trial is FAIL, as
            locally), re-raised as itself.
    """
    from ray import tune

    open_executor(compute)  # connects, with the executor's clear errors
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Tune's console reporter: the classic one, which verbose=0 silences (the newer one
    # still prints a table per experiment, one per family)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    started = time.perf_counter()
    baseline_value, last_complete = baseline
    if budget_seconds < last_complete:  # no trial would start (the local rule): no Tuner
        best_params, best_value, rows = summarise_study(
            name, config, [], baseline_value, last_complete
        )
        return FamilyResult(name, best_params, best_value, baseline_value, 0.0, rows)
    searcher = _Search(
        space=space,
        metric=VALUE,
        mode="max",
        sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(5, n_trials)),
    )
    searcher.budget(budget_seconds, started, last_complete)
    storage = Path(tempfile.mkdtemp(prefix="shelfwise-tune-"))
    try:
        tuner = tune.Tuner(
            tune.with_parameters(_trial, inputs=(name, config, data, valid, metric)),
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                scheduler=_MedianPruning(searcher),
                num_samples=n_trials,
                max_concurrent_trials=compute.tune_concurrent_trials,
                reuse_actors=True,  # trials in warm processes: a new one costs seconds
            ),
            run_config=tune.RunConfig(
                name=f"tune-{name}",
                storage_path=str(storage),
                verbose=0,
                log_to_file=False,
                # a trial whose node died is rerun from its start (trials are pure)
                failure_config=tune.FailureConfig(max_failures=compute.max_retries),
            ),
        )
        grid = tuner.fit()
    finally:
        shutil.rmtree(storage, ignore_errors=True)
    for index in range(len(grid)):
        result = grid[index]
        if result.error is not None and not _is_memory_error(result.error):
            raise result.error
    best_params, best_value, rows = summarise_study(
        name, config, searcher.study.trials, baseline_value, last_complete
    )
    return FamilyResult(
        name, best_params, best_value, baseline_value, time.perf_counter() - started, rows
    )


def _is_memory_error(error: BaseException) -> bool:
    cause = getattr(error, "cause", None)
    return isinstance(error, MemoryError) or isinstance(cause, MemoryError)


def _search_class() -> Any:
    from ray.tune.search import Searcher
    from ray.tune.search.optuna import OptunaSearch

    class Search(OptunaSearch):
        """OptunaSearch that stops asking when the budget is short and knows pruning."""

        def budget(self, seconds: float, started: float, last_complete: float) -> None:
            self._budget_s, self._started = seconds, started
            self.last_complete = last_complete
            self.pruned: set[str] = set()
            # Optuna's own median pruner on the study the sampler reads (OptunaSearch
            # makes it with a no-op pruner): the same decision rule as locally
            self.study.pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)

        @property
        def study(self) -> optuna.Study:
            return cast(optuna.Study, self._ot_study)

        def suggest(self, trial_id: str) -> dict[str, Any] | None:
            left = self._budget_s - (time.perf_counter() - self._started)
            if left < self.last_complete:
                return cast(dict[str, Any], Searcher.FINISHED)  # a sentinel Tune knows
            return super().suggest(trial_id)

        def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
            """Reported by the scheduler (`_MedianPruning`), which decides on pruning."""

        def on_trial_complete(
            self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
        ) -> None:
            if trial_id in self.pruned or (result and not error and not result.get(FINAL)):
                # stopped at step 0: PRUNED with its reported value, as Optuna does
                self.study.tell(self._ot_trials[trial_id], state=optuna.trial.TrialState.PRUNED)
                self._completed_trials.add(trial_id)
                return
            if result and not error:
                self.last_complete = float(result.get(SECONDS, self.last_complete))
            super().on_trial_complete(trial_id, result, error)

    return Search


def _scheduler_class() -> Any:
    from ray.tune.schedulers import FIFOScheduler, TrialScheduler

    class MedianPruning(FIFOScheduler):
        """Reports step values to the Optuna trial and stops it when Optuna prunes it."""

        def __init__(self, searcher: Any) -> None:
            super().__init__()  # type: ignore[no-untyped-call]  # Ray's is untyped
            self._searcher = searcher

        def on_trial_result(self, controller: Any, trial: Any, result: dict[str, Any]) -> str:
            if result.get(FINAL):
                return str(TrialScheduler.CONTINUE)
            ot_trial = self._searcher._ot_trials[trial.trial_id]
            ot_trial.report(result[VALUE], int(result[STEP]))
            if ot_trial.should_prune():
                self._searcher.pruned.add(trial.trial_id)
                return str(TrialScheduler.STOP)
            return str(TrialScheduler.CONTINUE)

    return MedianPruning


def _Search(**kwargs: Any) -> Any:  # noqa: N802  # a class made on first use: Ray is optional
    return _search_class()(**kwargs)


def _MedianPruning(searcher: Any) -> Any:  # noqa: N802
    return _scheduler_class()(searcher)
