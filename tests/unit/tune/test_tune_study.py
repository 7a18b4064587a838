"""Optuna search on a tiny shop: trials recorded, never worse than the baseline, seeded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

from shelfwise._internal.artifacts import read_csr
from shelfwise.config import ModelConfig, ShelfwiseConfig
from shelfwise.evaluate.recommend import EvalSplit, evaluation_users
from shelfwise.pipeline import run_pipeline
from shelfwise.retrieval.fitting import TrainingData
from shelfwise.tune import study, tune_family


def space(trial: optuna.Trial) -> dict[str, Any]:
    return {"neighbours": trial.suggest_int("neighbours", 2, 200, log=True)}


def _valid(features: Path) -> tuple[TrainingData, EvalSplit]:
    data = TrainingData.load(features)
    targets = read_csr(features / "valid_targets.npz")
    users = evaluation_users(targets, max_users=None, seed=1)
    return data, EvalSplit(data.matrix, data.sequences, targets, users)


def test_tune_family_records_trials_and_never_loses_to_baseline(
    tiny_config: ShelfwiseConfig,
) -> None:
    outcome = run_pipeline(tiny_config, until="features")
    data, valid = _valid(outcome.run_dir / "features")
    family = ModelConfig(params={"neighbours": 5})
    kwargs: dict[str, Any] = {"metric": "ndcg@10", "n_trials": 6, "budget_seconds": 60.0, "seed": 3}
    first = tune_family("item_knn", family, space, data, valid, **kwargs)
    assert first.trials[0]["number"] == "baseline"
    assert len(first.trials) == 7
    assert first.best_value >= first.baseline_value
    assert {t["state"] for t in first.trials} <= {"COMPLETE", "PRUNED"}
    second = tune_family("item_knn", family, space, data, valid, **kwargs)
    assert second.best_params == first.best_params  # seeded: same data, same pick
    assert second.best_value == first.best_value


def test_no_trial_starts_when_the_budget_left_is_shorter_than_the_last_trial(
    tiny_config: ShelfwiseConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fake clock: every fit-and-score takes 10 "seconds"; the budget is 25."""
    outcome = run_pipeline(tiny_config, until="features")
    data, valid = _valid(outcome.run_dir / "features")
    now = [0.0]

    def fake_score(*args: Any, **kwargs: Any) -> float:
        now[0] += 10.0
        return now[0] / 1000.0

    monkeypatch.setattr(study, "_clock", lambda: now[0])
    monkeypatch.setattr(study, "score_params", fake_score)
    family = ModelConfig(params={"neighbours": 5})
    result = tune_family(
        "item_knn",
        family,
        space,
        data,
        valid,
        metric="ndcg@10",
        n_trials=50,
        budget_seconds=25.0,
        seed=0,
    )
    # baseline ends at 10 (15 left >= 10: one trial), that trial at 20 (5 left < 10: stop)
    assert [t["number"] for t in result.trials] == ["baseline", 0]
    assert result.seconds == 20.0
    short = tune_family(
        "item_knn",
        family,
        space,
        data,
        valid,
        metric="ndcg@10",
        n_trials=50,
        budget_seconds=15.0,
        seed=0,
    )
    assert [t["number"] for t in short.trials] == ["baseline"]  # 5 left after the baseline
