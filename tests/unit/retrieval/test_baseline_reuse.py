"""The retrieval stage reuses the tune stage's baseline fits instead of fitting again."""

from __future__ import annotations

import json

from shelfwise.config import ShelfwiseConfig
from shelfwise.pipeline import run_pipeline
from shelfwise.retrieval.stage import BASELINE_FITS, TRAIN_FIT


def test_a_kept_baseline_is_not_fitted_twice(tiny_config: ShelfwiseConfig) -> None:
    models = tiny_config.models.model_copy(
        update={
            "dense": tiny_config.models.dense.model_copy(update={"enabled": False}),
            "content": tiny_config.models.content.model_copy(update={"enabled": False}),
        }
    )
    # the baseline and one more trial per family: where the baseline wins, retrieval
    # serves its fit from train
    tune = tiny_config.tune.model_copy(update={"trials_per_model": 1, "budget_seconds": 120.0})
    config = tiny_config.model_copy(update={"models": models, "tune": tune})
    run_dir = run_pipeline(config, until="retrieval").run_dir
    report = json.loads((run_dir / "retrieval" / "models.json").read_text())
    reused = {name for name, info in report.items() if info.get("train_fit_from_tune")}
    best = json.loads((run_dir / "tune" / "best.json").read_text())
    configured = {name: dict(f.params) for name, f in config.models.families().items()}
    # a family is reused exactly when tuning kept its configured parameters
    kept = {name for name, info in best.items() if info["params"] == configured[name]}
    assert reused == kept & set(report)
    assert {"item_knn", "als"} <= reused
    for name in reused:
        tuned = run_dir / "tune" / BASELINE_FITS / name
        train_fit = run_dir / "retrieval" / TRAIN_FIT / name
        for path in tuned.iterdir():
            assert (train_fit / path.name).read_bytes() == path.read_bytes()
    assert report["popularity"]["train_fit_from_tune"] is False  # never tuned
