"""Drift gauges and staleness of a running server, from its own event log."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from shelfwise.runtime import Engine
from shelfwise.serve import ServeSettings
from shelfwise.serve.drift_monitor import DriftMonitor

if TYPE_CHECKING:
    from fastapi.testclient import TestClient
    from tests.unit.serve.conftest import ClientFactory


def _gauge(client: TestClient, name: str, **labels: str) -> float | None:
    value = client.app.state.metrics.registry.get_sample_value(name, labels)  # type: ignore[attr-defined]
    return None if value is None else float(value)


def test_drift_gauges_follow_the_event_log(
    make_client: ClientFactory, engine: Engine, tmp_path: Path
) -> None:
    settings = ServeSettings(
        bundle_path=None, event_log_dir=tmp_path / "events", drift_interval_s=0
    )
    client = make_client(settings, engine=engine)
    now = int(time.time())
    stranger = {"user_id": "stranger", "item_id": "no-such-item", "event_type": "view"}
    known = {"user_id": "u1", "item_id": engine.catalog.raw_item_ids[0], "event_type": "view"}
    events = [{**stranger, "timestamp": now - 5}] * 4 + [{**known, "timestamp": now - 5}]
    assert client.post("/v1/events", json={"events": events}).status_code == 202
    app = client.app
    monitor = DriftMonitor(app.state.holder, app.state.metrics, settings, tmp_path / "events")  # type: ignore[attr-defined]
    assert monitor.measure_once(now=now)
    version = engine.version
    assert _gauge(client, "shelfwise_serve_drift_unseen_items_ratio", model_version=version) == 0.8
    assert _gauge(client, "shelfwise_serve_drift_unseen_users_ratio", model_version=version) == 0.5
    assert _gauge(client, "shelfwise_serve_drift_window_events", model_version=version) == 5
    psi = _gauge(client, "shelfwise_serve_drift_item_psi", model_version=version)
    assert psi is not None
    assert psi > 0.25
    assert _gauge(client, "shelfwise_serve_drift_timestamp_seconds") == now
    text = client.get("/metrics").text
    assert "shelfwise_serve_drift_item_psi" in text
