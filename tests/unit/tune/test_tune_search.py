"""Optuna search on a tiny shop: trials recorded, never worse than the baseline, seeded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna

from shelfwise._internal.artifacts import read_csr
from shelfwise.config import ModelConfig, ShelfwiseConfig
from shelfwise.evaluate.recommend import EvalSplit, evaluation_users
from shelfwise.pipeline import run_pipeline
from shelfwise.retrieval.fitting import TrainingData
from shelfwise.tune import tune_family


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
