"""Promotion gate rules and decisions (pure logic; the registry flow is an integration test)."""

from __future__ import annotations

import pytest

from shelfwise.config import GateRule, load_config
from shelfwise.errors import ConfigError
from shelfwise.publish.gate import check_rules, decide, gate_k_values


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
