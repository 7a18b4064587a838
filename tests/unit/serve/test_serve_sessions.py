"""`POST /v1/recommend` for a session: an inline history or a session_id, end to end on
the tiny bundle (item-kNN over the shop of `tests/unit/conftest.py`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from shelfwise.runtime import Engine
from shelfwise.serve import ServeSettings
from shelfwise.stores.event_log import iter_event_records

if TYPE_CHECKING:
    from fastapi.testclient import TestClient
    from tests.unit.serve.conftest import ClientFactory


def ids(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [item["item_id"] for item in response.json()["items"]]


def test_an_inline_history_goes_through_the_session_path(client: TestClient) -> None:
    response = client.post("/v1/recommend", json={"history": ["sku-laptop", "sku-mouse"], "k": 3})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["personalisation"] == "session"
    assert body["fallback"] is None
    assert body["history_used"] == "request"
    assert body["unknown_history_items"] == 0
    # repeats are allowed within a session by default: the session's items can come back
    assert {"sku-laptop", "sku-mouse"} & set(ids(response))


def test_history_events_with_types_and_timestamps_and_unknown_items(client: TestClient) -> None:
    history = [
        {"item_id": "sku-mouse", "event_type": "cart", "timestamp": 200},
        {"item_id": "sku-unknown", "timestamp": 150},
        {"item_id": "sku-laptop", "event_type": "view", "timestamp": 100},
    ]
    response = client.post("/v1/recommend", json={"history": history, "k": 3})
    assert response.status_code == 200, response.text
    assert response.json()["unknown_history_items"] == 1  # ignored, and said so


def test_a_history_of_unknown_items_falls_back_to_popular(client: TestClient) -> None:
    response = client.post("/v1/recommend", json={"history": ["nope"], "k": 2})
    body = response.json()
    assert body["fallback"] == "popular"
    assert body["unknown_history_items"] == 1
    assert body["history_used"] == "request"


def test_history_length_is_bounded_and_documented(client: TestClient) -> None:
    too_long = client.post("/v1/recommend", json={"history": ["sku-tea"] * 201, "k": 2})
    assert too_long.status_code == 422
    assert too_long.json()["code"] == "invalid-request"
    assert client.post("/v1/recommend", json={"history": [""]}).status_code == 422
    schema = client.get("/openapi.json").json()["components"]["schemas"]["RecommendRequest"]
    history = schema["properties"]["history"]
    assert "200" in history["description"]
    assert any(option.get("maxItems") == 200 for option in history.get("anyOf", [history]))


def test_events_with_a_session_id_form_the_session(client: TestClient) -> None:
    events = [
        {"user_id": "visitor-9", "item_id": "sku-tea", "event_type": "view", "session_id": "S1"},
        {"user_id": "visitor-9", "item_id": "sku-coffee", "event_type": "view", "session_id": "S1"},
    ]
    assert client.post("/v1/events", json={"events": events}).status_code == 202
    response = client.post("/v1/recommend", json={"session_id": "S1", "k": 3})
    body = response.json()
    assert body["history_used"] == "session"
    assert body["personalisation"] == "session"
    both = client.post("/v1/recommend", json={"session_id": "S1", "history": ["sku-book"], "k": 3})
    assert both.json()["history_used"] == "session+request"
    empty = client.post("/v1/recommend", json={"session_id": "S-none", "k": 3}).json()
    assert empty["history_used"] == "session"
    assert empty["fallback"] == "popular"


def test_session_repeats_setting(engine: Engine, make_client: ClientFactory) -> None:
    settings = ServeSettings(bundle_path=None, max_k=20, default_k=5, session_repeats="exclude")
    client = make_client(settings, engine=engine)
    response = client.post("/v1/recommend", json={"history": ["sku-laptop", "sku-mouse"], "k": 5})
    assert response.status_code == 200, response.text
    assert not {"sku-laptop", "sku-mouse"} & set(ids(response))


def test_the_event_log_keeps_the_session_id(
    engine: Engine, make_client: ClientFactory, tmp_path: Path
) -> None:
    settings = ServeSettings(bundle_path=None, event_log_dir=tmp_path / "events")
    client = make_client(settings, engine=engine)
    event = {"user_id": "v1", "item_id": "sku-tea", "event_type": "view", "session_id": "S9"}
    assert client.post("/v1/events", json={"events": [event]}).status_code == 202
    logged = list(iter_event_records(tmp_path / "events"))
    assert [record["session_id"] for record in logged] == ["S9"]  # retraining sees it
