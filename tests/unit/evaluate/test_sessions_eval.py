"""The session protocol's cases, metrics and baselines on literal sessions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shelfwise._internal.sequences import Sequences
from shelfwise.config import ShelfwiseConfig, SplitConfig
from shelfwise.errors import ConfigError
from shelfwise.evaluate.sessions import (
    SessionBaselines,
    evaluate_sessions,
    features_session_report,
    rank_cases,
    session_cases,
    session_metrics,
    session_models,
)
from shelfwise.pipeline import run_pipeline
from shelfwise.retrieval import load_recommender

N_ITEMS = 6


def test_last_and_every_targets_and_repeats_are_counted() -> None:
    held_out = Sequences.from_rows([[0, 1, 0], [2, 3], [5]])  # [5] predicts nothing
    last = session_cases(held_out, targets="last")
    assert [last.prefixes.row(i).tolist() for i in range(last.n_cases)] == [[0, 1], [2]]
    assert last.targets.tolist() == [0, 3]
    assert last.repeats.tolist() == [True, False]  # 0 repeats an item of its session
    every = session_cases(held_out, targets="every")
    assert every.targets.tolist() == [1, 0, 3]
    assert every.repeats.tolist() == [False, True, False]
    with pytest.raises(ConfigError, match="session targets must be one of"):
        session_cases(held_out, targets="first")


def test_hr_and_mrr_keep_repeat_targets() -> None:
    cases = session_cases(Sequences.from_rows([[0, 1, 0], [2, 3]]))
    ranked = np.array([[1, 0], [4, 5]])  # case 0 hits at rank 2, case 1 misses
    metrics = session_metrics(ranked, cases, [1, 2])
    assert metrics["cases"] == 2
    assert metrics["repeat_targets"] == 1
    assert metrics["hr@2"] == 0.5
    assert metrics["mrr@2"] == 0.25
    assert metrics["hr@1"] == 0.0
    assert metrics["hr_repeat@2"] == 1.0
    assert metrics["hr_new@2"] == 0.0


def test_excluding_seen_items_makes_repeat_targets_count_as_misses() -> None:
    train = Sequences.from_rows([[0, 1, 0], [1, 0]])
    cases = session_cases(Sequences.from_rows([[0, 1, 0]]))
    baselines = SessionBaselines(train, N_ITEMS)
    scorer = baselines.scorer("session_items")
    assert evaluate_sessions(scorer, cases, N_ITEMS, [2])["hr@2"] == 1.0
    hidden = evaluate_sessions(scorer, cases, N_ITEMS, [2], exclude_seen=True)
    assert hidden["hr@2"] == 0.0
    assert hidden["cases"] == 1.0


def test_baselines_by_hand() -> None:
    # transitions: 0->1 twice, 1->2, 2->3; popularity: 1 (3x), 0 (2x), 2 (2x), 3 (1x)
    train = Sequences.from_rows([[0, 1, 2], [0, 1], [1, 2, 3]])
    baselines = SessionBaselines(train, N_ITEMS)
    cases = session_cases(Sequences.from_rows([[5, 0, 9 % N_ITEMS]]))  # prefix [5, 0]
    ranked = {
        name: rank_cases(baselines.scorer(name), cases, N_ITEMS, 4)[0].tolist()
        for name in ("popularity", "followers", "session_items")
    }
    assert ranked["popularity"] == [1, 0, 2, 3]
    assert ranked["followers"] == [1, 0, 2, 3]  # 0's follower first, then popularity
    # own items most recent first (0, then 5), then followers of them, then popularity
    assert ranked["session_items"] == [0, 5, 1, 2]


def test_the_protocol_over_a_features_folder(tiny_config: ShelfwiseConfig, tmp_path: Path) -> None:
    config = tiny_config.model_copy(update={"split": SplitConfig(method="session")})
    features = run_pipeline(config, until="features").run_dir / "features"
    small = {name: build for name, build in session_models().items() if "stan" not in name}
    kept = tmp_path / "session_model"
    report = features_session_report(features, [5, 20], candidates=small, save_to=kept)
    assert report is not None
    # the chosen model, refitted on train + valid, is kept for the bundle's session role
    assert report["model"] in ("sknn", "vsknn")
    assert load_recommender(str(report["model"]), kept).name == report["model"]
    results = report["results"]
    assert isinstance(results, dict)
    assert {"baseline:popularity", "baseline:followers", "baseline:session_items"} <= set(results)
    assert f"session:{report['chosen']}" in results
    for metrics in results.values():
        assert metrics["cases"] == report["cases"]  # every case counts, repeats too
        assert metrics["repeat_targets"] <= metrics["cases"]
    assert features_session_report(tmp_path, [5]) is None  # no sessions: no report
