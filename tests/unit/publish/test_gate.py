"""Promotion gate rules and decisions (pure logic; the registry flow is an integration test)."""

from __future__ import annotations

import pytest

from shelfwise.config import GateRule, load_config
from shelfwise.errors import ConfigError
from shelfwise.publish.gate import QUALITY_GUARD, check_rules, decide, gate_k_values


def _rules(**rules: GateRule) -> dict[str, GateRule]:
    return {name.replace("_at_", "@"): rule for name, rule in rules.items()}


def test_min_delta_compares_with_the_champion_and_explains_both_numbers() -> None:
    rules = _rules(ndcg_at_10=GateRule(min_delta=-0.005))
    worse = check_rules(rules, {"ndcg@10": 0.30}, {"ndcg@10": 0.32})
    assert [r.passed for r in worse] == [False]
    assert worse[0].delta == pytest.approx(-0.02)
    assert "0.3000" in worse[0].message
    assert "0.3200" in worse[0].message
    within = check_rules(rules, {"ndcg@10": 0.318}, {"ndcg@10": 0.32})
    assert within[0].passed
    assert not within[0].skipped


def test_absolute_bounds_apply_without_a_champion_and_deltas_are_skipped() -> None:
    rules = {
        "ndcg@10": GateRule(min_delta=0.0),
        "p99_latency_ms": GateRule(max=30.0),
        "recall@20": GateRule(min=0.1),
    }
    outcomes = {
        r.metric: r
        for r in check_rules(
            rules, {"ndcg@10": 0.2, "p99_latency_ms": 45.0, "recall@20": 0.2}, None
        )
    }
    assert outcomes["ndcg@10"].skipped
    assert outcomes["ndcg@10"].passed
    assert not outcomes["p99_latency_ms"].passed
    assert "45 > max 30" in outcomes["p99_latency_ms"].message
    assert outcomes["recall@20"].passed


def test_a_metric_the_run_cannot_measure_is_skipped_not_failed() -> None:
    outcome = check_rules({"search.ndcg@10": GateRule(min=0.5)}, {"ndcg@10": 0.2}, None)[0]
    assert outcome.skipped
    assert outcome.passed


def test_decisions() -> None:
    config = load_config(None, environ={})
    passed = check_rules({"ndcg@10": GateRule(min_delta=-1.0)}, {"ndcg@10": 0.1}, {"ndcg@10": 0.2})
    failed = check_rules({"ndcg@10": GateRule(min_delta=0.0)}, {"ndcg@10": 0.1}, {"ndcg@10": 0.2})
    assert decide(config, passed, has_champion=False) == "first-champion"
    assert decide(config, passed, has_champion=True) == "promoted"
    assert decide(config, failed, has_champion=True) == "refused"
    canary = load_config(None, environ={}, overrides={"gate.on_pass": "challenger"})
    assert decide(canary, passed, has_champion=True) == "challenger"


def test_rules_name_known_metrics_and_ks_are_scored() -> None:
    config = load_config(
        None,
        environ={},
        overrides={"gate.rules": {"recall@50": {"min_delta": 0}, "search.ndcg@5": {"min": 0.1}}},
    )
    assert gate_k_values(config) == sorted({*config.evaluate.k_values, 5, 50})
    with pytest.raises(ConfigError, match="not a gate metric"):
        load_config(None, environ={}, overrides={"gate.rules": {"auc": {"min": 0.5}}})
    with pytest.raises(ConfigError, match="min_delta, max or min"):
        load_config(None, environ={}, overrides={"gate.rules": {"ndcg@10": {}}})


def test_default_rules_check_full_catalog_search_and_its_latency() -> None:
    config = load_config(None, environ={})
    assert config.gate.rules["search.full.ndcg@10"].min_delta == pytest.approx(-0.005)
    assert config.gate.rules["search.p99_latency_ms"].max_delta == pytest.approx(50.0)
    assert 10 in gate_k_values(config)


def test_a_search_only_challenger_worse_on_full_catalog_ndcg_is_refused() -> None:
    # a search-only shop (no events): the re-scored metrics hold search numbers only
    config = load_config(None, environ={})
    champion = {"search.ndcg@10": 0.80, "search.p99_latency_ms": 12.0, "bundle_mb": 90.0}
    worse = {"search.ndcg@10": 0.74, "search.p99_latency_ms": 11.0, "bundle_mb": 10.0}
    outcomes = check_rules(config.gate.rules, worse, champion)
    by_metric = {rule.metric: rule for rule in outcomes}
    failed = by_metric["search.full.ndcg@10"]
    assert not failed.passed
    assert failed.challenger == pytest.approx(0.74)
    assert failed.champion == pytest.approx(0.80)
    assert "0.7400" in failed.message
    assert "0.8000" in failed.message
    assert by_metric["ndcg@10"].skipped  # no events: nothing to recommend
    assert decide(config, outcomes, has_champion=True) == "refused"
    better = {**worse, "search.ndcg@10": 0.81}
    assert decide(config, check_rules(config.gate.rules, better, champion), has_champion=True) == (
        "promoted"
    )


def test_a_version_is_never_promoted_on_size_alone() -> None:
    config = load_config(None, environ={})
    # nothing but the bundle size was measured (no test users, no labelled queries)
    outcomes = check_rules(config.gate.rules, {"bundle_mb": 5.0}, {"bundle_mb": 50.0})
    guard = [rule for rule in outcomes if rule.metric == QUALITY_GUARD]
    assert len(guard) == 1
    assert "not promoted on size or latency alone" in guard[0].message
    assert decide(config, outcomes, has_champion=True) == "challenger"
    # the first version of a project still becomes champion: something must be served
    first = check_rules(config.gate.rules, {"bundle_mb": 5.0}, None)
    assert not [rule for rule in first if rule.metric == QUALITY_GUARD]
    assert decide(config, first, has_champion=False) == "first-champion"


def test_search_full_names_are_gate_metrics() -> None:
    config = load_config(
        None, environ={}, overrides={"gate.rules": {"search.full.recall@20": {"min": 0.1}}}
    )
    assert 20 in gate_k_values(config)
    outcome = check_rules(config.gate.rules, {"search.recall@20": 0.3}, None)[0]
    assert outcome.passed
    assert not outcome.skipped


def test_max_delta_bounds_a_lower_is_better_metric_against_the_champion() -> None:
    rules = {"search.p99_latency_ms": GateRule(max_delta=50.0)}
    slower = check_rules(rules, {"search.p99_latency_ms": 180.0}, {"search.p99_latency_ms": 20.0})
    assert not slower[0].passed
    assert "delta +160.0000 > max_delta +50" in slower[0].message
    within = check_rules(rules, {"search.p99_latency_ms": 60.0}, {"search.p99_latency_ms": 20.0})
    assert within[0].passed
    # a busy machine slows the first version too: without a champion nothing to compare
    first = check_rules(rules, {"search.p99_latency_ms": 900.0}, None)
    assert first[0].skipped
    assert first[0].passed
