"""Model lifecycle in the server: canary, shadow, admin reloads, swaps under load."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pydantic import ValidationError

from shelfwise.runtime import Engine
from shelfwise.runtime.engine import load_engine
from shelfwise.serve import ServeSettings
from shelfwise.serve.holder import ModelHolder, bucket, overlap_at_k

if TYPE_CHECKING:
    from fastapi.testclient import TestClient
    from tests.unit.conftest import ShopFacts
    from tests.unit.serve.conftest import ClientFactory

TOKEN = "lifecycle-4Tz9Qm2Xv7Lp3Rk8Wn5Bj1Hc6Gd0Fs"  # noqa: S105 - a test-only token
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _recommend(client: TestClient, user: str) -> dict[str, object]:
    response = client.post("/v1/recommend", json={"user_id": user, "k": 3})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def _metric(text: str, prefix: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix)
    )


def test_canary_bucket_is_stable_and_sized() -> None:
    users = [f"user-{n}" for n in range(20_000)]
    share = sum(bucket(u, "canary") < 0.3 for u in users) / len(users)
    assert abs(share - 0.3) < 0.02
    assert [bucket("user-7", "canary")] * 3 == [bucket("user-7", "canary") for _ in range(3)]
    assert bucket("user-7", "canary") == pytest.approx(0.07054, abs=1e-4)  # no process seed
    assert bucket("user-7", "canary") != bucket("user-7", "shadow")


def test_overlap_at_k() -> None:
    assert overlap_at_k(["a", "b", "c"], ["c", "b", "x"], 3) == pytest.approx(2 / 3)
    assert overlap_at_k([], [], 5) == 1.0


def test_canary_users_stick_to_the_challenger_and_metrics_carry_versions(
    make_client: ClientFactory, engine: Engine, bundle_path: Path
) -> None:
    challenger = load_engine(bundle_path, version="v-challenger")
    client = make_client(ServeSettings(bundle_path=None, canary_fraction=0.5), engine=engine)
    client.app.state.holder.swap(challenger, "challenger")  # type: ignore[attr-defined]
    users = [f"u{n}" for n in range(60)]
    first = {u: _recommend(client, u)["model_version"] for u in users}
    again = {u: _recommend(client, u)["model_version"] for u in users}
    assert first == again  # sticky
    assert set(first.values()) == {engine.version, "v-challenger"}
    for user, version in first.items():
        expected = "v-challenger" if bucket(user, "canary") < 0.5 else engine.version
        assert version == expected
    text = client.get("/metrics").text
    canary = (
        "shelfwise_serve_model_requests_total"
        '{endpoint="recommend",model_version="v-challenger",role="challenger"}'
    )
    assert _metric(text, canary) == 2 * sum(v == "v-challenger" for v in first.values())


def test_shadow_scores_off_the_hot_path_and_never_answers(
    make_client: ClientFactory, engine: Engine, bundle_path: Path
) -> None:
    shadow = load_engine(bundle_path, version="v-shadow")
    client = make_client(ServeSettings(bundle_path=None, shadow_fraction=1.0), engine=engine)
    client.app.state.holder.swap(shadow, "challenger")  # type: ignore[attr-defined]
    versions = {_recommend(client, f"u{n}")["model_version"] for n in range(10)}
    assert versions == {engine.version}
    text = client.get("/metrics").text
    assert _metric(text, 'shelfwise_serve_shadow_overlap_ratio_count{endpoint="recommend"}') == 10
    assert _metric(text, 'shelfwise_serve_shadow_overlap_ratio_sum{endpoint="recommend"}') == 10

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("challenger bug")

    shadow.recommend = broken  # type: ignore[method-assign]
    assert _recommend(client, "u1")["model_version"] == engine.version
    text = client.get("/metrics").text
    assert _metric(text, 'shelfwise_serve_shadow_errors_total{endpoint="recommend"}') == 1


def test_admin_needs_a_real_token_and_is_off_by_default(
    make_client: ClientFactory, engine: Engine
) -> None:
    plain = make_client(ServeSettings(bundle_path=None), engine=engine)
    assert plain.get("/v1/admin/models").status_code == 404
    for token in (None, "", "changeme", "short"):
        with pytest.raises(ValidationError, match="ADMIN_TOKEN"):
            ServeSettings(bundle_path=None, admin_enabled=True, admin_token=token)
    admin = make_client(
        ServeSettings(bundle_path=None, admin_enabled=True, admin_token=TOKEN), engine=engine
    )
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token-wrong-token"},
        {"Authorization": TOKEN},
    ):
        response = admin.get("/v1/admin/models", headers=headers)
        assert response.status_code == 401
        assert response.json()["code"] == "unauthorized"
    state = admin.get("/v1/admin/models", headers=AUTH).json()
    assert state["champion"] == engine.version
    assert state["challenger"] is None


def test_reload_swaps_a_verified_bundle_and_refuses_a_damaged_one(
    make_client: ClientFactory, engine: Engine, facts: ShopFacts, tmp_path: Path
) -> None:
    root = tmp_path / "bundles"
    other = facts.build_bundle(root / "two", with_similar=False)  # other content
    client = make_client(
        ServeSettings(bundle_path=None, admin_enabled=True, admin_token=TOKEN, bundle_root=root),
        engine=engine,
    )
    outside = client.post("/v1/admin/reload", json={"bundle_path": "/etc"}, headers=AUTH)
    assert outside.status_code == 404
    assert outside.json()["code"] == "bundle-not-found"
    assert "bundle root" in outside.json()["message"]

    damaged = root / "damaged"
    shutil.copytree(other, damaged)
    (damaged / "items.parquet").write_bytes(b"truncated")
    refused = client.post("/v1/admin/reload", json={"bundle_path": str(damaged)}, headers=AUTH)
    assert refused.status_code == 422
    assert "integrity-check" in refused.json()["message"]
    assert "items.parquet" in refused.json()["message"]
    assert str(tmp_path) not in refused.text  # no server paths in responses
    assert _recommend(client, "alice")["model_version"] == engine.version  # still serving

    swapped = client.post(
        "/v1/admin/reload",
        json={"bundle_path": str(other), "role": "challenger", "canary_fraction": 1.0},
        headers=AUTH,
    )
    assert swapped.status_code == 200, swapped.text
    new_version = swapped.json()["challenger"]
    assert new_version != engine.version
    assert _recommend(client, "alice")["model_version"] == new_version  # 100% canary
    dropped = client.delete("/v1/admin/challenger", headers=AUTH).json()
    assert dropped["challenger"] is None
    assert _recommend(client, "alice")["model_version"] == engine.version
    text = client.get("/metrics").text
    assert _metric(text, 'shelfwise_serve_reloads_total{outcome="failed",role="champion"}') == 1


def test_swaps_under_concurrent_requests_drop_nothing(
    make_client: ClientFactory, engine: Engine, bundle_path: Path
) -> None:
    other = load_engine(bundle_path, version="v2")
    client = make_client(ServeSettings(bundle_path=None), engine=engine)
    holder: ModelHolder = client.app.state.holder  # type: ignore[attr-defined]
    statuses: list[int] = []
    versions: set[str] = set()
    stop = threading.Event()

    def swap_forever() -> None:
        while not stop.is_set():
            holder.swap(other)
            holder.swap(engine)

    swapper = threading.Thread(target=swap_forever)
    swapper.start()
    try:
        for n in range(150):
            response = client.post("/v1/recommend", json={"user_id": f"u{n % 5}", "k": 3})
            statuses.append(response.status_code)
            versions.add(response.json()["model_version"])
    finally:
        stop.set()
        swapper.join()
    assert set(statuses) == {200}
    assert versions <= {engine.version, "v2"}


def test_retrain_webhook_starts_one_retrain_at_a_time(
    make_client: ClientFactory, engine: Engine, tmp_path: Path
) -> None:
    import sys
    import time

    marker = tmp_path / "retrain-started"
    script = tmp_path / "fake_retrain.py"
    script.write_text(
        "import os, pathlib, time\n"
        f"pathlib.Path({str(marker)!r}).write_text("
        "os.environ['SHELFWISE_RETRAIN_TRIGGER'] + ':' + os.environ['SHELFWISE_RETRAIN_ALERTS'])\n"
        "time.sleep(3)\n"
    )
    settings = ServeSettings(
        bundle_path=None,
        admin_enabled=True,
        admin_token=TOKEN,
        event_log_dir=tmp_path / "events",
        retrain_command=f"{sys.executable} {script}",
    )
    client = make_client(settings, engine=engine)
    firing = {"status": "firing", "alerts": [
        {"status": "firing", "labels": {"alertname": "ShelfwiseDrift"}},
        {"status": "resolved", "labels": {"alertname": "Old"}},
    ]}  # fmt: skip
    assert client.post("/v1/admin/retrain", json=firing).status_code == 401
    first = client.post("/v1/admin/retrain", json=firing, headers=AUTH)
    assert first.status_code == 202
    assert first.json() == {
        "status": "started",
        "trigger": "alertmanager",
        "alerts": ["ShelfwiseDrift"],
    }
    second = client.post("/v1/admin/retrain", json={}, headers=AUTH)
    assert second.json()["status"] == "already-running"
    resolved = {"alerts": [{"status": "resolved", "labels": {"alertname": "ShelfwiseDrift"}}]}
    assert (
        client.post("/v1/admin/retrain", json=resolved, headers=AUTH).json()["status"] == "ignored"
    )
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.read_text() == "alertmanager:ShelfwiseDrift"
