"""The alerting loop with real parts, all on 127.0.0.1 (issue 7, Monitoring).

A shelfwise server (uvicorn subprocess, the serve tests' tiny bundle, drift gauges
recomputed every second) is scraped by a real Prometheus (Debian `prometheus`) that
loads deploy/monitoring/alerts.yml, with only the drift alert's `for:` shortened to 0s.
Events on items the model does not know make the drift alert fire; a real Alertmanager
(Debian `prometheus-alertmanager`), configured from deploy/monitoring/alertmanager.yml
with short waits and this server's address, delivers it to `POST /v1/admin/retrain`
with the bearer token from a file; the server starts the retrain command, a script that
writes the trigger and the alert names to a marker file.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"
INSTALL = ROOT / "scripts" / "install_monitoring.sh"
DRIFT_ALERT = "ShelfwiseItemPopularityDrift"
ADMIN_TOKEN = "alerting-loop-test-token-0123456789"  # noqa: S105 - a test-only token
DEADLINE_S = 60.0
_T = TypeVar("_T")


def _tool(name: str) -> str:
    """A Prometheus binary, installed with scripts/install_monitoring.sh when missing."""
    if shutil.which(name) is None:
        subprocess.run([str(INSTALL)], capture_output=True, timeout=600, check=False)
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is missing and {INSTALL.name} could not install it (apt, root)")
    return path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _http(
    url: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers or {})  # noqa: S310
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _wait_for(what: str, probe: Callable[[], _T | None], processes: list[Process]) -> _T:
    """Poll `probe` until it returns something, within DEADLINE_S (logs on failure)."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        for process in processes:
            process.check_running()
        try:
            found = probe()
        except OSError:
            found = None
        if found is not None:
            return found
        time.sleep(0.25)
    logs = "\n".join(process.tail() for process in processes)
    raise AssertionError(f"no {what} within {DEADLINE_S:.0f} s\n{logs}")


class Process:
    """A child process with its output in a log file; stopped by `stop`."""

    def __init__(self, name: str, command: list[str], log: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log = log
        with log.open("wb") as sink:
            self.popen = subprocess.Popen(  # noqa: S603 - our own binaries and arguments
                command, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )

    def check_running(self) -> None:
        """Fail with the process's log when it has exited."""
        if self.popen.poll() is not None:
            raise AssertionError(f"{self.name} exited ({self.popen.returncode})\n{self.tail()}")

    def tail(self) -> str:
        """The end of its log."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.name} ({self.log}) ---\n{text[-3000:]}"

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    """Every process the test starts, stopped afterwards (newest first)."""
    started: list[Process] = []
    yield started
    for process in reversed(started):
        process.stop()


def _tiny_bundle(root: Path) -> Path:
    """The serve tests' tiny shop (tests/unit/conftest.py), written under root."""
    path = ROOT / "tests" / "unit" / "conftest.py"
    spec = importlib.util.spec_from_file_location("shelfwise_tests_serve_shop", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    bundle: Path = module.build_bundle(root)
    return bundle


def _rules_with_short_drift_for(path: Path) -> None:
    """alerts.yml as shipped, but the drift alert fires without waiting."""
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    found = [
        rule
        for group in rules["groups"]
        for rule in group["rules"]
        if rule.get("alert") == DRIFT_ALERT
    ]
    assert len(found) == 1
    found[0]["for"] = "0s"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))


def _prometheus_config(path: Path, *, server_port: int, alertmanager_port: int) -> None:
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["alerts.yml"],
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}]
        },
        "scrape_configs": [
            {
                "job_name": "shelfwise",  # as in deploy/monitoring/prometheus.yml
                "scrape_timeout": "1s",
                "static_configs": [{"targets": [f"127.0.0.1:{server_port}"]}],
            }
        ],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def _alertmanager_config(path: Path, *, server_port: int, token_file: Path) -> None:
    """deploy/monitoring/alertmanager.yml with this server's address and short waits."""
    config = yaml.safe_load((MONITORING / "alertmanager.yml").read_text())
    routes = [config["route"], *config["route"]["routes"]]
    for route in routes:
        route.update(group_wait="1s", group_interval="1s")
    (receiver,) = [r for r in config["receivers"] if r["name"] == "shelfwise-retrain"]
    (webhook,) = receiver["webhook_configs"]
    webhook["url"] = f"http://127.0.0.1:{server_port}/v1/admin/retrain"
    webhook["http_config"]["authorization"]["credentials_file"] = str(token_file)
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def _drifting_events(now: int) -> list[dict[str, Any]]:
    """300 events: most on items the model never saw, the rest on its least popular one."""
    unknown = [
        {"user_id": f"new-{n % 40}", "item_id": f"sku-new-{n % 25}", "event_type": "view"}
        for n in range(240)
    ]
    known = [{"user_id": "u1", "item_id": "sku-lamp", "event_type": "view"}] * 60
    return [{**event, "timestamp": now - 2} for event in unknown + known]


def _firing(prometheus: str) -> list[str] | None:
    status, body = _http(f"{prometheus}/api/v1/alerts")
    if status != 200:
        return None
    alerts = json.loads(body)["data"]["alerts"]
    names = [a["labels"]["alertname"] for a in alerts if a["state"] == "firing"]
    return names if DRIFT_ALERT in names else None


def test_drift_alert_reaches_the_retrain_endpoint(tmp_path: Path, processes: list[Process]) -> None:
    prometheus_bin = _tool("prometheus")
    alertmanager_bin = _tool("prometheus-alertmanager")
    server_port, prometheus_port, alertmanager_port = _free_port(), _free_port(), _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("SHELFWISE_")}

    # The server, with admin on and a retrain command that leaves a marker.
    marker = tmp_path / "retrain-marker"
    script = tmp_path / "retrain.sh"
    script.write_text(
        '#!/bin/sh\nprintf "%s:%s" "$SHELFWISE_RETRAIN_TRIGGER" "$SHELFWISE_RETRAIN_ALERTS"'
        ' > "$1.tmp" && mv "$1.tmp" "$1"\n'
    )
    server_env = {
        **env,
        "SHELFWISE_SERVE_BUNDLE_PATH": str(_tiny_bundle(tmp_path / "shop")),
        "SHELFWISE_SERVE_EVENT_LOG_DIR": str(tmp_path / "state" / "events"),
        "SHELFWISE_SERVE_ADMIN_ENABLED": "true",
        "SHELFWISE_SERVE_ADMIN_TOKEN": ADMIN_TOKEN,
        "SHELFWISE_SERVE_RETRAIN_COMMAND": f"sh {script} {marker}",
        "SHELFWISE_SERVE_DRIFT_INTERVAL_S": "1",
        "SHELFWISE_SERVE_DRIFT_WINDOW_S": "600",
        "SHELFWISE_SERVE_LOG_LEVEL": "warning",
    }
    server = f"http://127.0.0.1:{server_port}"
    uvicorn = [sys.executable, "-m", "uvicorn", "shelfwise.serve.app:create_app", "--factory"]
    uvicorn += ["--host", "127.0.0.1", "--port", str(server_port), "--log-level", "warning"]
    processes.append(Process("shelfwise", uvicorn, tmp_path / "server.log", server_env))

    # Alertmanager, then Prometheus.
    token_file = tmp_path / "admin-token"
    token_file.write_text(ADMIN_TOKEN)
    token_file.chmod(0o600)
    _alertmanager_config(
        tmp_path / "alertmanager.yml", server_port=server_port, token_file=token_file
    )
    processes.append(
        Process(
            "alertmanager",
            [
                alertmanager_bin,
                f"--config.file={tmp_path / 'alertmanager.yml'}",
                f"--storage.path={tmp_path / 'alertmanager-data'}",
                f"--web.listen-address=127.0.0.1:{alertmanager_port}",
                "--cluster.listen-address=",  # no gossip port: one instance
            ],
            tmp_path / "alertmanager.log",
            env,
        )
    )
    _rules_with_short_drift_for(tmp_path / "alerts.yml")
    _prometheus_config(
        tmp_path / "prometheus.yml", server_port=server_port, alertmanager_port=alertmanager_port
    )
    prometheus = f"http://127.0.0.1:{prometheus_port}"
    processes.append(
        Process(
            "prometheus",
            [
                prometheus_bin,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
            ],
            tmp_path / "prometheus.log",
            env,
        )
    )

    def ready(url: str) -> bool | None:
        return True if _http(url)[0] == 200 else None

    _wait_for("ready server", lambda: ready(f"{server}/readyz"), processes)
    _wait_for(
        "ready Alertmanager",
        lambda: ready(f"http://127.0.0.1:{alertmanager_port}/-/ready"),
        processes,
    )
    _wait_for("ready Prometheus", lambda: ready(f"{prometheus}/-/ready"), processes)
    assert not _firing(prometheus)  # nothing drifts before the events

    # Shifted traffic: the drift gauges move within a second, the alert fires.
    status, body = _http(f"{server}/v1/events", {"events": _drifting_events(int(time.time()))})
    assert status == 202, body
    firing = _wait_for("firing drift alert in Prometheus", lambda: _firing(prometheus), processes)
    assert DRIFT_ALERT in firing

    # Alertmanager delivers it; the server starts the retrain command.
    text = _wait_for(
        "retrain marker", lambda: marker.read_text() if marker.exists() else None, processes
    )
    assert text == f"alertmanager:{DRIFT_ALERT}"
    _, metrics = _http(f"{server}/metrics")
    started = 'shelfwise_serve_retrains_total{outcome="started",trigger="alertmanager"} '
    (line,) = [line for line in metrics.decode().splitlines() if line.startswith(started)]
    assert float(line.removeprefix(started)) >= 1

    # Every shipped rule evaluates on real data without an error.
    _, body = _http(f"{prometheus}/api/v1/rules")
    rules = [rule for group in json.loads(body)["data"]["groups"] for rule in group["rules"]]
    assert len(rules) == sum(
        len(group["rules"])
        for group in yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"]
    )
    broken = {rule["name"]: rule.get("lastError") for rule in rules if rule["health"] != "ok"}
    assert not broken

    # And every dashboard query runs against it.
    dashboard = json.loads((MONITORING / "grafana" / "dashboards" / "shelfwise.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$__rate_interval", "1m").replace("$__range", "5m")
            query = urllib.parse.urlencode({"query": expr})
            status, body = _http(f"{prometheus}/api/v1/query?{query}")
            assert status == 200, (panel["title"], expr, body[:300])
