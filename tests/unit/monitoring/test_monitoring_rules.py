"""deploy/monitoring checked by the real tools: promtool (rules, unit tests, config,
metrics lint), amtool (config, routing), and the Grafana files' structure.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

if TYPE_CHECKING:
    from conftest import Exported

SEVERITIES = {"critical", "warning", "info"}
DRIFT_ALERTS = {"ShelfwiseItemPopularityDrift", "ShelfwiseUnseenItemsHigh"}
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "6h"}


def _run(*command: str | Path, cwd: Path, stdin: str | None = None) -> str:
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


def _rules(monitoring_dir: Path) -> list[dict[str, Any]]:
    groups = yaml.safe_load((monitoring_dir / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _alerts(monitoring_dir: Path) -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for rule in _rules(monitoring_dir) if "alert" in rule}


def _dashboard(monitoring_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (monitoring_dir / "grafana/dashboards/shelfwise.json").read_text()
    )
    return data


# --- Prometheus ----------------------------------------------------------------------


def test_promtool_checks_the_rules(promtool: str, monitoring_dir: Path) -> None:
    output = _run(promtool, "check", "rules", "alerts.yml", cwd=monitoring_dir)
    assert f"SUCCESS: {len(_rules(monitoring_dir))} rules found" in output


def test_promtool_unit_tests_of_the_alerts_pass(promtool: str, monitoring_dir: Path) -> None:
    output = _run(promtool, "test", "rules", "alerts_test.yml", cwd=monitoring_dir)
    assert "SUCCESS" in output


def test_every_alert_has_a_firing_and_a_silent_unit_test(monitoring_dir: Path) -> None:
    # promtool passes a test of a misspelled alert that expects silence; so check names.
    tests = yaml.safe_load((monitoring_dir / "alerts_test.yml").read_text())["tests"]
    firing: set[str] = set()
    silent: set[str] = set()
    for group in tests:
        for case in group.get("alert_rule_test", []):
            (firing if case["exp_alerts"] else silent).add(case["alertname"])
    alerts = set(_alerts(monitoring_dir))
    assert not (firing | silent) - alerts, "tests of alerts that do not exist"
    assert not alerts - firing, "alerts never shown to fire"
    assert not alerts - silent, "alerts never shown to stay silent"


def test_alerts_have_for_severity_and_say_what_to_do(monitoring_dir: Path) -> None:
    alerts = _alerts(monitoring_dir)
    assert {
        "ShelfwiseHighLatencyP99",
        "ShelfwiseHigh5xxRate",
        "ShelfwiseModelStale",
        "ShelfwiseChampionCtrDrop",
        "ShelfwiseChampionConversionDrop",
        "ShelfwiseCanaryCtrWorse",
        "ShelfwiseCanaryErrorRateWorse",
        "ShelfwiseCanaryLatencyWorse",
    } | DRIFT_ALERTS <= set(alerts)
    for name, rule in alerts.items():
        assert re.fullmatch(r"Shelfwise[A-Z][A-Za-z0-9]+", name)
        assert "for" in rule, name
        assert rule["labels"]["severity"] in SEVERITIES, name
        assert set(rule["annotations"]) >= {"summary", "description"}, name
        assert len(rule["annotations"]["description"].split()) >= 15, name
    retrain = {name for name, rule in alerts.items() if rule["labels"].get("action") == "retrain"}
    assert DRIFT_ALERTS | {"ShelfwiseModelStale"} == retrain


def test_promtool_checks_the_scrape_config(promtool: str, monitoring_dir: Path) -> None:
    output = _run(promtool, "check", "config", "prometheus.yml", cwd=monitoring_dir)
    assert "is valid prometheus config file syntax" in output
    config = yaml.safe_load((monitoring_dir / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["shelfwise"]["metrics_path"] == "/metrics"  # the rules match job="shelfwise"
    assert config["rule_files"] == ["alerts.yml"]  # compose mounts it beside this file


def test_the_commented_kubernetes_job_is_valid_yaml(monitoring_dir: Path) -> None:
    # Debian's promtool is built without Kubernetes discovery, so it cannot check this
    # job; at least it must be YAML of the right shape, keeping pods and naming them.
    text = (monitoring_dir / "prometheus.yml").read_text()
    block = re.search(r"^  # - job_name: shelfwise\n(?:  #.*\n)+", text, re.MULTILINE)
    assert block is not None
    job = yaml.safe_load("\n".join(line[4:] for line in block.group(0).splitlines()))[0]
    assert job["kubernetes_sd_configs"] == [{"role": "pod"}]
    relabels = job["relabel_configs"]
    assert {"action", "regex", "source_labels"} <= set(relabels[0])
    assert {"target_label": "pod", "source_labels": ["__meta_kubernetes_pod_name"]} in relabels


def test_promtool_lints_the_service_metrics(promtool: str, exported: Exported) -> None:
    # Naming conventions of the exposition (units, _total on counters, help text).
    output = _run(promtool, "check", "metrics", cwd=Path.cwd(), stdin=exported.text)
    assert output.strip() == ""


# --- Alertmanager --------------------------------------------------------------------


def test_amtool_checks_the_alertmanager_config(amtool: str, monitoring_dir: Path) -> None:
    output = _run(amtool, "check-config", "alertmanager.yml", cwd=monitoring_dir)
    assert "SUCCESS" in output


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (["alertname=ShelfwiseItemPopularityDrift", "action=retrain"], "shelfwise-retrain,team"),
        (["alertname=ShelfwiseModelStale", "action=retrain"], "shelfwise-retrain,team"),
        (["alertname=ShelfwiseHigh5xxRate", "severity=critical"], "team"),
    ],
)
def test_retrain_alerts_are_routed_to_the_webhook(
    amtool: str, monitoring_dir: Path, labels: list[str], receivers: str
) -> None:
    output = _run(
        amtool, "config", "routes", "test", "--config.file=alertmanager.yml", *labels,
        cwd=monitoring_dir,
    )  # fmt: skip
    assert output.splitlines()[0] == receivers


def test_the_webhook_calls_the_retrain_endpoint_with_a_bearer_token_file(
    monitoring_dir: Path,
) -> None:
    config = yaml.safe_load((monitoring_dir / "alertmanager.yml").read_text())
    receiver = next(r for r in config["receivers"] if r["name"] == "shelfwise-retrain")
    (webhook,) = receiver["webhook_configs"]
    assert webhook["url"].endswith("/v1/admin/retrain")
    authorization = webhook["http_config"]["authorization"]
    assert authorization["type"] == "Bearer"
    assert "credentials_file" in authorization  # never the token itself
    assert "credentials" not in authorization


# --- Grafana -------------------------------------------------------------------------

PANEL_KINDS = {
    # kind: (a word in the panel title, a metric or recorded series one of its queries uses)
    "traffic": ("traffic", "shelfwise_serve_requests_total"),
    "latency": ("latency", "shelfwise_serve_request_duration_seconds_bucket"),
    "errors": ("errors", 'status=~"5.."'),
    "model versions": ("model versions", "shelfwise_serve_model_info"),
    "canary share": ("canary share", 'role="challenger"'),
    "CTR": ("ctr", "model_version:shelfwise_serve_ctr:ratio_rate1h"),
    "conversion": ("conversion", "model_version:shelfwise_serve_conversion:ratio_rate1h"),
    "drift": ("drift", "shelfwise_serve_drift_item_psi"),
}


@pytest.mark.parametrize("kind", sorted(PANEL_KINDS))
def test_the_dashboard_has_a_panel_for(kind: str, monitoring_dir: Path) -> None:
    word, used = PANEL_KINDS[kind]
    panels = [
        panel
        for panel in _dashboard(monitoring_dir)["panels"]
        if word in panel["title"].lower()
        and any(used in target["expr"] for target in panel.get("targets", []))
    ]
    assert panels, f"no panel titled *{word}* querying {used}"


def test_the_dashboard_is_well_formed(monitoring_dir: Path) -> None:
    dashboard = _dashboard(monitoring_dir)
    assert dashboard["uid"] == "shelfwise-serve"
    panels = dashboard["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"])
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}"
            assert panel["targets"]
            assert panel.get("description")
            assert len({target["refId"] for target in panel["targets"]}) == len(panel["targets"])
    (variable,) = dashboard["templating"]["list"]
    assert (variable["name"], variable["type"], variable["query"]) == (
        "datasource",
        "datasource",
        "prometheus",
    )


def test_promtool_parses_every_dashboard_query(
    promtool: str, monitoring_dir: Path, tmp_path: Path
) -> None:
    # Each query as a recording rule: `promtool check rules` then parses its PromQL.
    rules = []
    for panel in _dashboard(monitoring_dir)["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, f"unknown Grafana variable in {panel['title']}: {expr}"
            rules.append(
                {"record": f"dashboard:panel_{panel['id']}:{target['refId']}", "expr": expr}
            )
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    output = _run(promtool, "check", "rules", path.name, cwd=tmp_path)
    assert f"SUCCESS: {len(rules)} rules found" in output


def test_grafana_provisioning_points_at_the_mounted_dashboards(monitoring_dir: Path) -> None:
    # deploy/compose mounts deploy/monitoring/grafana at /etc/grafana/shelfwise.
    grafana = monitoring_dir / "grafana"
    (provider,) = yaml.safe_load((grafana / "provisioning/dashboards/shelfwise.yml").read_text())[
        "providers"
    ]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/etc/grafana/shelfwise/dashboards"
    assert list((grafana / "dashboards").glob("*.json")) == [grafana / "dashboards/shelfwise.json"]
    (source,) = yaml.safe_load((grafana / "provisioning/datasources/prometheus.yml").read_text())[
        "datasources"
    ]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"  # the compose service's name
