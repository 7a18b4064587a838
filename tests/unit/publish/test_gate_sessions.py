"""The gate judges the session model (issue 15): held-out sessions through the served
session path, compared with the champion or, for a first version, the trivial rule.

The shop is the package tests' four items (0 a-laptop, 1 b-mouse, 2 c-tea, 3 d-cup).
In the run's sessions the mouse follows the laptop and the cup follows the tea; a
"good" session model learnt that, a "bad" one learnt the opposite pairs.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from tests.unit.compute.conftest import LoopbackCluster, ray_cluster
from tests.unit.package.conftest import BundleFactory

from shelfwise._internal.artifacts import atomic_write_json
from shelfwise._internal.sequences import Sequences
from shelfwise.compute import open_executor
from shelfwise.config import ComputeConfig, load_config
from shelfwise.features.sessions import SESSION_FILES, SESSIONS_JSON
from shelfwise.publish import session_rescore
from shelfwise.publish.gate import QUALITY_GUARD, check_rules, decide, session_k_values
from shelfwise.publish.session_rescore import (
    baseline_metrics,
    load_frozen_sessions,
    score_sessions,
)
from shelfwise.retrieval.session_knn import STANRecommender
from shelfwise.runtime import load_engine

ITEMS = ["a-laptop", "b-mouse", "c-tea", "d-cup"]
GOOD = [[0, 1], [2, 3]] * 3
BAD = [[0, 3], [2, 1]] * 3
__all__ = ["ray_cluster"]  # the compute tests' loopback cluster, for the slow Ray test


@pytest.fixture
def features(tmp_path: Path) -> Path:
    """A features folder with the run's sessions: train / valid as GOOD, four test ones."""
    folder = tmp_path / "features"
    folder.mkdir()
    pl.DataFrame({"raw_item_id": ITEMS}).write_parquet(folder / "items.parquet")
    rows = {"train": GOOD, "valid": GOOD[:2], "test": [[0, 1], [2, 3], [0, 1], [2, 3]]}
    for split, file in SESSION_FILES.items():
        Sequences.from_rows(rows[split]).save(folder / file)
    atomic_write_json(folder / SESSIONS_JSON, {"sessions": {k: len(v) for k, v in rows.items()}})
    return folder


def _session_bundle(
    make_bundle: BundleFactory, models: dict[str, Path], tmp_path: Path, name: str
) -> Path:
    model = STANRecommender(reminders=0.0)  # no reminders: the pairs alone decide
    model.fit_sequences(Sequences.from_rows(GOOD if name == "good" else BAD), len(ITEMS))
    model.save(tmp_path / f"stan-{name}")
    return make_bundle(
        name,
        components={
            "recommender": ("item_knn", models["item_knn"]),
            "popular": ("popularity", models["popularity"]),
            "session": ("stan", tmp_path / f"stan-{name}"),
        },
    )


@pytest.fixture
def scored(
    features: Path, make_bundle: BundleFactory, model_folders: dict[str, Path], tmp_path: Path
) -> dict[str, dict[str, float]]:
    """`session.*` metrics of the good and bad bundles, and the trivial rule's."""
    frozen = load_frozen_sessions(features, targets="last", max_cases=None, seed=0)
    assert frozen is not None
    assert frozen.prefixes == [["a-laptop"], ["c-tea"], ["a-laptop"], ["c-tea"]]
    ks = session_k_values(load_config(None, environ={}))
    result = {
        name: score_sessions(
            load_engine(_session_bundle(make_bundle, model_folders, tmp_path, name)),
            frozen,
            ks,
            allow_repeats=True,
        )
        for name in ("good", "bad")
    }
    result["baseline"] = baseline_metrics(features, frozen, ks, targets="last", allow_repeats=True)
    return result


def test_held_out_sessions_are_scored_through_the_served_session_path(
    scored: dict[str, dict[str, float]],
) -> None:
    good, bad = scored["good"], scored["bad"]
    assert good["session.cases"] == 4
    assert good["session.repeat_targets"] == 0
    # the visit's own item first (repeats allowed, as served), then its follower
    assert good["session.mrr@20"] == pytest.approx(0.5)
    assert bad["session.mrr@20"] < good["session.mrr@20"]
    assert "session.p99_latency_ms" in good
    assert scored["baseline"]["session.mrr@20"] == pytest.approx(good["session.mrr@20"])


def test_a_challenger_with_a_worse_session_model_is_refused_with_the_rule_named(
    scored: dict[str, dict[str, float]],
) -> None:
    config = load_config(None, environ={})
    outcomes = check_rules(config.gate.rules, scored["bad"], scored["good"])
    failed = [rule.metric for rule in outcomes if not rule.passed]
    assert failed == ["session.mrr@20"]
    assert decide(config, outcomes, has_champion=True) == "refused"
    better = check_rules(config.gate.rules, scored["good"], scored["bad"])
    assert decide(config, better, has_champion=True) == "promoted"


def test_a_first_session_model_is_judged_against_the_trivial_rule(
    scored: dict[str, dict[str, float]],
) -> None:
    config = load_config(None, environ={})
    baseline = scored["baseline"]
    bad = check_rules(config.gate.rules, scored["bad"], None, baseline=baseline)
    refused = next(rule for rule in bad if rule.metric == "session.mrr@20")
    assert not refused.passed
    assert not refused.skipped
    assert "trivial rule" in refused.message
    assert decide(config, bad, has_champion=False) == "refused"
    good = check_rules(config.gate.rules, scored["good"], None, baseline=baseline)
    assert decide(config, good, has_champion=False) == "first-champion"


def test_a_session_only_shop_is_never_promoted_on_size_alone() -> None:
    config = load_config(None, environ={})
    # the session model could not be scored (nothing but the bundle size measured)
    outcomes = check_rules(config.gate.rules, {"bundle_mb": 1.0}, {"bundle_mb": 9.0})
    assert any(rule.metric == QUALITY_GUARD for rule in outcomes)
    assert decide(config, outcomes, has_champion=True) == "challenger"
    # with the session metrics measured, they decide
    champion = {"bundle_mb": 9.0, "session.mrr@20": 0.30, "session.hr@20": 0.60}
    smaller_but_worse = {"bundle_mb": 1.0, "session.mrr@20": 0.20, "session.hr@20": 0.60}
    assert decide(
        config, check_rules(config.gate.rules, smaller_but_worse, champion), has_champion=True
    ) == ("refused")


def test_session_rules_are_gate_metrics_scored_at_their_own_k() -> None:
    config = load_config(
        None, environ={}, overrides={"gate.rules": {"session.hr_new@5": {"min": 0.1}}}
    )
    assert 5 in session_k_values(config)
    assert config.gate.rules["session.hr_new@5"].min == pytest.approx(0.1)


@pytest.mark.slow  # starts a loopback Ray cluster (about a minute on 2 shared cores)
@pytest.mark.timeout(900)
def test_session_blocks_are_answered_on_ray_like_local(
    features: Path,
    make_bundle: BundleFactory,
    model_folders: dict[str, Path],
    tmp_path: Path,
    ray_cluster: LoopbackCluster,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frozen = load_frozen_sessions(features, targets="last", max_cases=None, seed=0)
    assert frozen is not None
    path = _session_bundle(make_bundle, model_folders, tmp_path, "good")
    monkeypatch.setattr(session_rescore, "BLOCK_CASES", 3)  # two blocks
    engine = load_engine(path)
    local = score_sessions(engine, frozen, [5, 20], allow_repeats=True)
    executor = open_executor(ComputeConfig(engine="ray", address=ray_cluster.address))
    on_ray = score_sessions(
        engine, frozen, [5, 20], allow_repeats=True, executor=executor, bundle_path=path
    )

    def quality(found: dict[str, float]) -> dict[str, float]:
        return {k: v for k, v in found.items() if "latency" not in k}

    assert quality(on_ray) == quality(local)
