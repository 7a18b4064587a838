"""`POST /v1/events` and what it changes: the durable log, the online store, real-time
recommendations, attribution metrics, and Redis failures that never become 5xx.

Over the tiny bundle of conftest.py: u1's history is laptop, mouse, headphones and its
top recommendation is the phone; tea's true neighbours are coffee then book.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pytest

from shelfwise._internal.artifacts import read_csr
from shelfwise.config import EventsConfig
from shelfwise.contracts import RAW_ITEM_ID, RAW_USER_ID, EventType
from shelfwise.ingest import read_source
from shelfwise.package.bundle import BundleSpec, read_bundle_manifest, write_bundle
from shelfwise.runtime import Engine, load_engine
from shelfwise.serve import ServeSettings
from shelfwise.stores.event_log import EVENT_LOG_COLUMNS, iter_event_records

if TYPE_CHECKING:
    from fastapi.testclient import TestClient
    from tests.unit.conftest import ShopFacts
    from tests.unit.serve.conftest import ClientFactory


def item_ids(body: dict[str, Any]) -> list[str]:
    return [item["item_id"] for item in body["items"]]


def metric(client: TestClient, name: str, **labels: str) -> float:
    value = client.app.state.metrics.registry.get_sample_value(name, labels)  # type: ignore[attr-defined]
    return 0.0 if value is None else float(value)


def settings_for(tmp_path: Path, **overrides: Any) -> ServeSettings:
    values: dict[str, Any] = {
        "bundle_path": None,
        "max_k": 20,
        "default_k": 5,
        "event_log_dir": tmp_path / "events",
        # the tiny shop's coffee is sold out, and these tests follow tea's neighbour
        # (coffee): sold-out items stay listed (`serve.hide_out_of_stock` is tested in
        # test_serve_stock.py)
        "hide_out_of_stock": False,
    }
    values.update(overrides)
    return ServeSettings(**values)


def post(client: TestClient, *events: dict[str, Any], **headers: str) -> Any:
    return client.post("/v1/events", json={"events": list(events)}, headers=headers)


def ev(user: str, item: str, event_type: str = "view", **more: Any) -> dict[str, Any]:
    return {"user_id": user, "item_id": item, "event_type": event_type, **more}


@pytest.fixture(params=["memory", "redis"])
def store_url(request: pytest.FixtureRequest) -> str:
    """Each behaviour test runs on the in-process store and on a real Redis."""
    if request.param == "memory":
        return "memory://"
    url: str = request.getfixturevalue("redis_url")
    return url


@pytest.fixture
def live(make_client: ClientFactory, engine: Engine, tmp_path: Path, store_url: str) -> TestClient:
    return make_client(settings_for(tmp_path, online_store_url=store_url), engine=engine)


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (ev("u1", "sku-tea", "wishlist"), "body.events.0.event_type"),
        ({"user_id": "u1", "event_type": "view"}, "body.events.0.item_id"),
        ({"item_id": "sku-tea", "event_type": "view"}, "body.events.0.user_id"),
        (ev("u1", "sku-tea", timestamp=-5), "body.events.0.timestamp"),
        (ev("u1", "sku-tea", position=0), "body.events.0.position"),
        (ev("u1", "sku-tea", request_id="bad id!"), "body.events.0.request_id"),
        (ev("u1", "sku-tea", colour="red"), "body.events.0.colour"),
        (ev("u1", "sku-tea", "search"), "body.events.0"),
    ],
)
def test_invalid_event_is_422_naming_the_field_and_nothing_is_written(
    make_client: ClientFactory,
    engine: Engine,
    tmp_path: Path,
    event: dict[str, Any],
    field: str,
) -> None:
    client = make_client(settings_for(tmp_path), engine=engine)
    good = ev("u-good", "sku-tea")
    response = post(client, good, event)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "invalid-request"
    assert body["message"].startswith(field.replace(".0", ".1", 1))
    assert list(iter_event_records(tmp_path / "events")) == []
    assert client.app.state.store.state("u-good").is_empty  # type: ignore[attr-defined]


def test_empty_and_oversized_batches_are_422(
    make_client: ClientFactory, engine: Engine, tmp_path: Path
) -> None:
    client = make_client(settings_for(tmp_path, max_events_per_batch=2), engine=engine)
    response = client.post("/v1/events", json={"events": []})
    assert response.status_code == 422
    assert response.json()["message"].startswith("body.events:")
    response = post(client, *[ev("u1", "sku-tea")] * 3)
    assert response.status_code == 422
    assert response.json()["message"] == (
        "body.events: 3 events in one batch; send at most 2 per request"
    )
    assert not (tmp_path / "events").exists()


# --- accepted: log and store ---------------------------------------------------------------


def test_accepted_events_are_in_the_log_and_the_store(live: TestClient, tmp_path: Path) -> None:
    response = post(
        live,
        ev("u1", "sku-tea", timestamp=1_700_000_000),
        ev("u1", "sku-unknown", "click", request_id="r-1", position=2),
        ev("u9", "sku-coffee", "search", query="coffee"),
        **{"X-Request-ID": "batch-1"},
    )
    assert response.status_code == 202, response.text
    assert response.json() == {
        "accepted": 3,
        "unknown_items": 1,
        "attributed": 0,
        "request_id": "batch-1",
        "degraded": False,
    }
    logged = list(iter_event_records(tmp_path / "events"))
    assert [tuple(record) for record in logged] == [EVENT_LOG_COLUMNS] * 3
    assert logged[0] == {
        "raw_user_id": "u1",
        "raw_item_id": "sku-tea",
        "event_type": "view",
        "timestamp": 1_700_000_000,
        "query": None,
        "position": None,
        "request_id": None,
        "session_id": None,
    }
    assert (logged[1]["position"], logged[1]["request_id"]) == (2, "r-1")
    assert logged[2]["query"] == "coffee"
    assert isinstance(logged[2]["timestamp"], int)  # the server's clock
    files = list((tmp_path / "events").glob("date=*/hour=*/events-*.jsonl"))
    assert len(files) == 1
    state = live.app.state.store.state("u1")  # type: ignore[attr-defined]
    assert [(e.raw_item_id, e.event_type.value) for e in state.recent] == [
        ("sku-unknown", "click"),
        ("sku-tea", "view"),
    ]
    assert metric(live, "shelfwise_serve_events_total", event_type="view") == 1
    assert metric(live, "shelfwise_serve_events_unknown_items_total") == 1


def test_the_log_survives_a_restart_and_ingest_reads_it(
    make_client: ClientFactory, engine: Engine, tmp_path: Path
) -> None:
    accepted = 0
    for restart in range(3):
        client = make_client(settings_for(tmp_path), engine=engine)
        for batch in range(2):
            events = [ev(f"u{restart}", "sku-tea", timestamp=batch * 10 + n) for n in range(3)]
            accepted += post(client, *events).json()["accepted"]
        client.__exit__(None, None, None)  # shutdown closes the log; a new app follows
    logged = list(iter_event_records(tmp_path / "events"))
    assert len(logged) == accepted == 18
    lines = sum(
        len(path.read_bytes().splitlines())
        for path in (tmp_path / "events").glob("date=*/hour=*/*.jsonl")
    )
    assert lines == accepted
    data, quarantine = read_source(EventsConfig(path=tmp_path / "events"), "events")
    assert data.height == accepted
    assert quarantine.height == 0
    assert data[RAW_USER_ID].value_counts().sort(RAW_USER_ID)["count"].to_list() == [6, 6, 6]
    assert set(data[RAW_ITEM_ID].to_list()) == {"sku-tea"}


def test_event_log_failure_is_503_and_accepts_nothing(
    make_client: ClientFactory, engine: Engine, tmp_path: Path
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the log folder should be")
    client = make_client(settings_for(tmp_path, event_log_dir=blocked), engine=engine)
    response = post(client, ev("u1", "sku-tea"))
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "event-log-unavailable"
    assert str(tmp_path) not in body["message"]  # no internal paths
    assert response.headers["retry-after"] == "5"
    assert client.app.state.store.state("u1").is_empty  # type: ignore[attr-defined]


def test_a_batch_refused_by_a_full_disk_is_kept_whole_by_its_retry(
    make_client: ClientFactory, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # issue 14: a refused batch left 40 events and a torn line in the log; the client's
    # retry then duplicated them
    import errno
    import os

    from shelfwise.stores import event_log

    client = make_client(settings_for(tmp_path), engine=engine)
    assert post(client, ev("early", "sku-tea")).status_code == 202
    real_pwrite = os.pwrite

    def full_after_a_few_bytes(fd: int, data: Any, offset: int) -> int:
        view = memoryview(data)
        if len(view) > 64:
            return real_pwrite(fd, view[:64], offset)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(event_log.os, "pwrite", full_after_a_few_bytes)
    batch = [ev(f"u{n}", "sku-tea", "purchase") for n in range(40)]
    refused = post(client, *batch)
    assert refused.status_code == 503
    monkeypatch.setattr(event_log.os, "pwrite", real_pwrite)
    assert post(client, *batch).status_code == 202
    users = [record["raw_user_id"] for record in iter_event_records(tmp_path / "events")]
    assert users == ["early"] + [f"u{n}" for n in range(40)]


# --- real-time recommendations -------------------------------------------------------------


def test_recommend_blends_in_neighbours_of_a_just_viewed_item(live: TestClient) -> None:
    before = live.post("/v1/recommend", json={"user_id": "u1", "k": 3}).json()
    assert before["personalisation"] == "history"
    assert "sku-coffee" not in item_ids(before)
    assert post(live, ev("u1", "sku-tea")).status_code == 202
    after = live.post("/v1/recommend", json={"user_id": "u1", "k": 3}).json()
    assert after["personalisation"] == "realtime"
    assert after["fallback"] is None
    assert item_ids(after)[0] == "sku-coffee"  # tea's best neighbour leads
    assert item_ids(after)[1] == item_ids(before)[0]  # then the model's own best
    assert "sku-tea" not in item_ids(after)  # just seen
    assert len(item_ids(after)) == len(set(item_ids(after))) == 3


def test_recommend_excludes_a_just_purchased_item(
    make_client: ClientFactory, engine: Engine, tmp_path: Path, store_url: str
) -> None:
    # exclude_seen off, so only the purchase flag can remove the phone
    client = make_client(
        settings_for(tmp_path, online_store_url=store_url, exclude_seen=False), engine=engine
    )
    assert "sku-phone" in item_ids(client.post("/v1/recommend", json={"user_id": "u1"}).json())
    assert post(client, ev("u1", "sku-phone", "purchase")).status_code == 202
    body = client.post("/v1/recommend", json={"user_id": "u1"}).json()
    assert "sku-phone" not in item_ids(body)
    kept = client.post("/v1/recommend", json={"user_id": "u1", "exclude_purchased": False}).json()
    assert "sku-phone" in item_ids(kept)


def test_unknown_user_with_events_gets_session_recommendations(
    live: TestClient, engine: Engine, facts: ShopFacts
) -> None:
    body = live.post("/v1/recommend", json={"user_id": "newcomer", "k": 3}).json()
    assert (body["fallback"], body["personalisation"]) == ("popular", None)
    post(live, ev("newcomer", "sku-tea"), ev("newcomer", "sku-coffee", "cart"))
    body = live.post("/v1/recommend", json={"user_id": "newcomer", "k": 3}).json()
    assert body["fallback"] is None
    assert body["personalisation"] == "session"
    assert item_ids(body)[0] == "sku-book"  # what tea and coffee buyers also took
    assert item_ids(body) != facts.popular_order[:3]
    assert not {"sku-tea", "sku-coffee"} & set(item_ids(body))
    filtered = live.post(
        "/v1/recommend",
        json={"user_id": "newcomer", "k": 3, "filters": {"category": "electronics"}},
    ).json()
    assert len(filtered["items"]) == 3
    assert {item["category"] for item in filtered["items"]} == {"electronics"}


def test_live_events_weigh_what_the_bundle_was_trained_with(
    make_client: ClientFactory, engine: Engine, bundle_path: Path, tmp_path: Path
) -> None:
    # The tiny bundle again, its histories built (as it records) with purchases weighing
    # 0.2 instead of the default 5: a session of a laptop view and a tea purchase is
    # then led by the laptop's neighbour, not by tea's (training/serving skew fix).
    manifest = read_bundle_manifest(bundle_path)
    light = tmp_path / "light-purchase"
    write_bundle(
        BundleSpec(
            items=pl.read_parquet(bundle_path / "items.parquet"),
            users=pl.read_parquet(bundle_path / "users.parquet"),
            histories=read_csr(bundle_path / "histories.npz"),
            components={
                role: (name, bundle_path / "models" / name)
                for role, name in manifest.components.items()
            },
            event_weights={EventType.VIEW: 1.0, EventType.PURCHASE: 0.2},
        ),
        light,
    )
    session = (ev("newcomer", "sku-laptop"), ev("newcomer", "sku-tea", "purchase"))
    firsts = []
    for served in (engine, load_engine(light)):
        client = make_client(settings_for(tmp_path / served.version), engine=served)
        assert post(client, *session).status_code == 202
        body = client.post("/v1/recommend", json={"user_id": "newcomer", "k": 3}).json()
        assert body["personalisation"] == "session"
        firsts.append(item_ids(body)[0])
    assert firsts == ["sku-coffee", "sku-mouse"]


def test_events_on_unknown_items_only_keep_the_popular_fallback(
    live: TestClient, facts: ShopFacts
) -> None:
    post(live, ev("newcomer", "sku-not-in-catalog"))
    body = live.post("/v1/recommend", json={"user_id": "newcomer", "k": 3}).json()
    assert (body["fallback"], body["personalisation"]) == ("popular", None)
    assert item_ids(body) == facts.popular_order[:3]


# --- attribution ------------------------------------------------------------------------------


def test_clicks_and_purchases_on_served_lists_count_per_model_version(
    live: TestClient, engine: Engine
) -> None:
    version = engine.version
    served = live.post(
        "/v1/recommend", json={"user_id": "u1", "k": 3}, headers={"X-Request-ID": "list-1"}
    ).json()
    assert served["request_id"] == "list-1"
    shown = item_ids(served)
    assert metric(live, "shelfwise_serve_impressions_total", endpoint="recommend",
                  model_version=version) == 3  # fmt: skip
    assert metric(live, "shelfwise_serve_served_lists_total", endpoint="recommend",
                  model_version=version) == 1  # fmt: skip
    first = post(
        live,
        ev("u1", shown[0], "click", request_id="list-1"),
        ev("u1", shown[0], "click", request_id="list-1"),  # a resend counts once
        ev("u1", "sku-lamp", "click", request_id="list-1"),  # not in the list
        ev("u1", shown[1], "view", request_id="list-1"),  # views are not attributed
        ev("u1", shown[0], "click", request_id="list-unknown"),
    ).json()
    assert first["attributed"] == 1
    second = post(live, ev("u1", shown[0], "purchase", request_id="list-1")).json()
    assert second["attributed"] == 1
    clicks = metric(
        live, "shelfwise_serve_attributed_events_total", event_type="click", model_version=version
    )
    purchases = metric(
        live,
        "shelfwise_serve_attributed_events_total",
        event_type="purchase",
        model_version=version,
    )
    assert (clicks, purchases) == (1, 1)
    text = live.get("/metrics").text
    assert "# HELP shelfwise_serve_attributed_events_total" in text
    assert "# HELP shelfwise_serve_online_store_degraded" in text


def test_search_lists_are_attributed_too(live: TestClient, engine: Engine) -> None:
    served = live.post(
        "/v1/search", json={"query": "tea", "k": 2}, headers={"X-Request-ID": "search-1"}
    ).json()
    assert served["degraded"] is False
    shown = item_ids(served)
    assert post(live, ev("u3", shown[0], "click", request_id="search-1")).json()["attributed"] == 1
    assert metric(live, "shelfwise_serve_impressions_total", endpoint="search",
                  model_version=engine.version) == len(shown)  # fmt: skip


# --- Redis unreachable ------------------------------------------------------------------------


def test_unreachable_redis_degrades_and_never_fails(
    make_client: ClientFactory, engine: Engine, tmp_path: Path, closed_redis_url: str
) -> None:
    client = make_client(settings_for(tmp_path, online_store_url=closed_redis_url), engine=engine)
    response = post(client, ev("u1", "sku-tea"), ev("newcomer", "sku-tea"))
    assert response.status_code == 202
    assert response.json()["degraded"] is True
    assert len(list(iter_event_records(tmp_path / "events"))) == 2  # the log has them all
    assert metric(client, "shelfwise_serve_online_store_degraded") == 1
    assert metric(client, "shelfwise_serve_online_store_errors_total", operation="append") == 1
    recommended = client.post("/v1/recommend", json={"user_id": "u1", "k": 4})
    assert recommended.status_code == 200
    assert recommended.json()["degraded"] is True
    # this replica's in-process store still saw the view
    assert recommended.json()["personalisation"] == "realtime"
    anonymous = client.post("/v1/recommend", json={"k": 3})
    assert anonymous.status_code == 200
    assert anonymous.json()["fallback"] == "popular"
    searched = client.post("/v1/search", json={"query": "tea"})
    assert searched.status_code == 200
    assert searched.json()["degraded"] is True
    assert metric(client, "shelfwise_serve_requests_total", route="/v1/events", method="POST",
                  status="500") == 0  # fmt: skip


def test_log_lines_are_json_with_unicode_kept(
    make_client: ClientFactory, engine: Engine, tmp_path: Path
) -> None:
    client = make_client(settings_for(tmp_path), engine=engine)
    post(client, ev("用户", "sku-tea", "search", query="龙井绿茶"))
    (path,) = (tmp_path / "events").glob("date=*/hour=*/*.jsonl")
    line = path.read_text(encoding="utf-8").strip()
    assert "龙井绿茶" in line
    assert json.loads(line)["raw_user_id"] == "用户"
