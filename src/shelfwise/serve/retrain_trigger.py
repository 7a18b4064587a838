"""Start a retrain from the server: `POST /v1/admin/retrain` (Alertmanager's webhook).

The server does not train: it starts `SHELFWISE_SERVE_RETRAIN_COMMAND` (for example
`shelfwise retrain -c /config/shelfwise.yaml`, or a `kubectl create job --from=cronjob/…`
in a cluster) as a detached process, one at a time, with the trigger and the firing
alert names in its environment (`SHELFWISE_RETRAIN_TRIGGER`, `SHELFWISE_RETRAIN_ALERTS`),
and its output in `<event log>/../retrain-logs/`.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RetrainStart:
    """What a trigger did."""

    status: str  # "started" | "already-running" | "ignored"
    trigger: str  # "alertmanager" | "manual"
    alerts: list[str]
    pid: int | None = None


def firing_alerts(payload: dict[str, Any]) -> tuple[str, list[str]]:
    """(trigger, names of the firing alerts) of an Alertmanager webhook body or `{}`."""
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        return "manual", []
    names = [
        str(alert.get("labels", {}).get("alertname", "unnamed"))
        for alert in alerts
        if isinstance(alert, dict) and alert.get("status", "firing") == "firing"
    ]
    return "alertmanager", sorted(set(names))


class RetrainLauncher:
    """Starts the retrain command, never two at once."""

    def __init__(self, command: str, log_dir: Path) -> None:
        self.command = shlex.split(command)
        self.log_dir = log_dir
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def start(self, payload: dict[str, Any]) -> RetrainStart:
        """Start the command for this trigger, unless one is running or nothing fires."""
        trigger, alerts = firing_alerts(payload)
        if trigger == "alertmanager" and not alerts:
            return RetrainStart("ignored", trigger, alerts)  # only resolved alerts
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                return RetrainStart("already-running", trigger, alerts, self._process.pid)
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log_path = self.log_dir / f"retrain-{time.strftime('%Y%m%dT%H%M%S')}.log"
            env = {
                **os.environ,
                "SHELFWISE_RETRAIN_TRIGGER": trigger,
                "SHELFWISE_RETRAIN_ALERTS": ",".join(alerts),
            }
            with log_path.open("ab") as log:
                self._process = subprocess.Popen(  # noqa: S603 - the operator's own command
                    self.command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,  # survives a server restart
                )
            return RetrainStart("started", trigger, alerts, self._process.pid)
