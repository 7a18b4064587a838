"""Every metric and label the alert rules and the dashboard use is exported by the service.

The PromQL is read with a small tokenizer, enough for the expressions in
deploy/monitoring (selectors, aggregations with `by`, vector matching with `on`,
functions, ranges, offsets); promtool checks the syntax itself (test_monitoring_rules).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

if TYPE_CHECKING:
    from conftest import Exported

# Added by Prometheus, not by the service.
SCRAPE_SERIES = {"up": {"job", "instance"}}
TARGET_LABELS = {"job", "instance"}
# Label values the rules and panels filter on, which the exercised app must show.
CHECKED_VALUES = ("role", "event_type", "endpoint")

AGGREGATIONS = {"sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk"}
AGGREGATIONS |= {"quantile", "count_values", "group"}
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left"}
KEYWORDS |= {"group_right", "offset", "bool", "inf", "nan", "atan2"}
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "6h"}

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^}]*)\}")
_MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_IDENTIFIER = re.compile(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")
_RANGE = re.compile(r"\[[^\]]*\]")
_DURATION = re.compile(r"\b\d+(ms|[smhdwy])\b")


@dataclass
class Query:
    """The metrics, matchers and grouping labels of one PromQL expression."""

    expr: str
    metrics: set[str] = field(default_factory=set)
    matchers: list[tuple[str, str, str, str]] = field(
        default_factory=list
    )  # metric, label, op, value
    grouping: set[str] = field(default_factory=set)


def parse(expr: str) -> Query:
    """Metric names, label matchers and `by`/`on` labels of `expr` (see the module doc)."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    query = Query(expr)
    for match in _SELECTOR.finditer(expr):
        name = match.group(1) or ""
        for label, op, value in _MATCHER.findall(match.group(2)):
            if label == "__name__" and op == "=":
                name = value
            query.matchers.append((name, label, op, value))
    rest = _SELECTOR.sub(lambda m: f" {m.group(1) or ''} ", expr)
    rest = _STRING.sub(" ", _RANGE.sub(" ", rest))
    for keyword, labels in _GROUPING.findall(rest):
        del keyword
        query.grouping |= {label.strip() for label in labels.split(",") if label.strip()}
    rest = _DURATION.sub(" ", _GROUPING.sub(" ", rest))
    for name, call in _IDENTIFIER.findall(rest):
        if call or name in AGGREGATIONS or name.lower() in KEYWORDS:
            continue
        query.metrics.add(name)
    query.metrics |= {name for name, *_ in query.matchers if name}
    return query


def _alert_rules(monitoring_dir: Path) -> list[dict[str, Any]]:
    groups = yaml.safe_load((monitoring_dir / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _dashboard_exprs(monitoring_dir: Path) -> list[tuple[str, str]]:
    dashboard = json.loads((monitoring_dir / "grafana/dashboards/shelfwise.json").read_text())
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


@dataclass(frozen=True)
class Known:
    """Series a query may use: exported ones, Prometheus's own, and recorded ones."""

    labels: dict[str, set[str]]
    values: dict[str, dict[str, set[str]]]


@pytest.fixture(scope="module")
def known(exported: Exported, monitoring_dir: Path) -> Known:
    """Exported series (with the scrape's job/instance) plus the recording rules' output."""
    labels = {name: own | TARGET_LABELS for name, own in exported.labels.items()}
    labels.update(SCRAPE_SERIES)
    for rule in _alert_rules(monitoring_dir):
        if "record" in rule:
            # A recorded series keeps the labels it is grouped by (every recording rule
            # here aggregates with `by`, or combines earlier recorded series); `le` is
            # consumed by histogram_quantile.
            query = parse(rule["expr"])
            recorded = [name for name in query.metrics if ":" in name]
            inherited = set().union(*(labels.get(name, set()) for name in recorded))
            labels[rule["record"]] = (query.grouping | inherited) - {"le"} - TARGET_LABELS
    return Known(labels=labels, values=exported.values)


def _problems(query: Query, known: Known) -> list[str]:
    problems = [f"metric {name} is not exported" for name in query.metrics - set(known.labels)]
    available = set().union(*(known.labels.get(name, set()) for name in query.metrics))
    for metric, label, op, value in query.matchers:
        own = known.labels.get(metric, set())
        if metric in known.labels and label not in own:
            problems.append(f"{metric} has no label {label} (it has {sorted(own)})")
        seen = known.values.get(metric, {}).get(label)
        if op == "=" and label in CHECKED_VALUES and seen and value not in seen:
            problems.append(f"{metric}{{{label}={value!r}}}: the app shows {sorted(seen)}")
    problems.extend(
        f"grouping label {label} is on none of {sorted(query.metrics)}"
        for label in query.grouping - available
    )
    return problems


def test_the_app_exports_the_documented_collectors(exported: Exported) -> None:
    for name in (
        "shelfwise_serve_requests_total",
        "shelfwise_serve_request_duration_seconds_bucket",
        "shelfwise_serve_model_info",
        "shelfwise_serve_drift_item_psi",
        "shelfwise_serve_attributed_events_total",
    ):
        assert name in exported.labels
    assert {"route", "method", "status"} <= exported.labels["shelfwise_serve_requests_total"]
    roles = exported.values["shelfwise_serve_model_requests_total"]["role"]
    assert roles == {"champion", "challenger"}  # the canary answered some users
    attributed = exported.values["shelfwise_serve_attributed_events_total"]["event_type"]
    assert attributed == {"click", "cart", "purchase"}


def test_the_checker_finds_names_labels_and_values(known: Known) -> None:
    # The checker itself: a wrong name, label, grouping label and role value are caught.
    query = parse(
        'sum by (route, colour) (rate(shelfwise_serve_requests_total{routes="/x"}[5m]))'
        " / on (model_version) shelfwise_serve_no_such_metric"
        ' and shelfwise_serve_model_info{role="champoin"}'
    )
    assert query.metrics == {
        "shelfwise_serve_requests_total",
        "shelfwise_serve_no_such_metric",
        "shelfwise_serve_model_info",
    }
    problems = " | ".join(_problems(query, known))
    assert "shelfwise_serve_no_such_metric is not exported" in problems
    assert "has no label routes" in problems
    assert "grouping label colour" in problems
    assert "'champoin'" in problems
    assert "model_version" not in problems  # model_info has it


def test_alert_rules_use_only_exported_metrics_and_labels(
    monitoring_dir: Path, known: Known
) -> None:
    rules = _alert_rules(monitoring_dir)
    assert sum("alert" in rule for rule in rules) >= 10
    problems = []
    for rule in rules:
        name = rule.get("alert") or rule["record"]
        query = parse(rule["expr"])
        assert query.metrics, name
        problems += [f"{name}: {problem}" for problem in _problems(query, known)]
        # Labels the annotations print must be on the alert.
        available = set().union(*(known.labels.get(m, set()) for m in query.metrics))
        for text in rule.get("annotations", {}).values():
            for label in re.findall(r"\$labels\.([a-zA-Z_]+)", text):
                if label not in available:
                    problems.append(f"{name}: annotation uses $labels.{label}")
    assert not problems, "\n".join(problems)


def test_dashboard_uses_only_exported_metrics_and_labels(
    monitoring_dir: Path, known: Known
) -> None:
    exprs = _dashboard_exprs(monitoring_dir)
    assert len(exprs) >= 20
    problems = []
    for title, expr in exprs:
        query = parse(expr)
        assert query.metrics, title
        problems += [f"{title}: {problem}" for problem in _problems(query, known)]
    assert not problems, "\n".join(problems)


def test_every_exported_family_is_on_the_dashboard_or_in_a_rule(
    monitoring_dir: Path, exported: Exported
) -> None:
    used = set()
    for _, expr in _dashboard_exprs(monitoring_dir):
        used |= parse(expr).metrics
    for rule in _alert_rules(monitoring_dir):
        used |= parse(rule["expr"]).metrics
    families = {
        re.sub(r"_(total|bucket|sum|count|created)$", "", name)
        for name in exported.labels
        if name.startswith("shelfwise_serve_")
    }
    used_families = {re.sub(r"_(total|bucket|sum|count)$", "", name) for name in used}
    missing = sorted(families - used_families)
    assert not missing, f"no panel or rule shows {missing}"
