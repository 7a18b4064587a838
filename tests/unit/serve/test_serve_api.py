"""The HTTP API through TestClient, over the tiny bundle of conftest.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from shelfwise.runtime import Engine
from shelfwise.serve import ServeSettings, create_app

if TYPE_CHECKING:
    from fastapi.testclient import TestClient
    from tests.unit.conftest import ShopFacts
    from tests.unit.serve.conftest import ClientFactory


def item_ids(body: dict[str, Any]) -> list[str]:
    return [item["item_id"] for item in body["items"]]


def assert_error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "message"}
    assert body["code"] == code
    assert body["message"]
    return str(body["message"])


# --- recommend ------------------------------------------------------------------------


def test_recommend_known_user(client: TestClient, facts: ShopFacts, engine: Engine) -> None:
    response = client.post("/v1/recommend", json={"user_id": "u1", "k": 4})
    assert response.status_code == 200
    body = response.json()
    assert len(body["items"]) == 4
    assert item_ids(body)[0] == "sku-phone"
    assert not set(item_ids(body)) & set(facts.history["u1"])
    assert body["fallback"] is None
    assert body["model_version"] == engine.version
    first = body["items"][0]
    assert first["title"] == "Apple iPhone 15 智能手机"
    assert (first["category"], first["brand"], first["price"]) == ("electronics", "Apple", 6999.0)
    assert isinstance(first["score"], float)


def test_recommend_unknown_user_falls_back_to_popular(client: TestClient, facts: ShopFacts) -> None:
    body = client.post("/v1/recommend", json={"user_id": "stranger", "k": 3}).json()
    assert item_ids(body) == facts.popular_order[:3]
    assert body["fallback"] == "popular"


def test_recommend_default_k_and_exclude(client: TestClient) -> None:
    body = client.post("/v1/recommend", json={"exclude": ["sku-phone"]}).json()
    assert len(body["items"]) == 5  # default_k of the test settings
    assert "sku-phone" not in item_ids(body)


def test_recommend_k_above_max_is_422(client: TestClient) -> None:
    response = client.post("/v1/recommend", json={"user_id": "u1", "k": 21})
    message = assert_error(response, 422, "invalid-request")
    assert message == "body.k: Input should be less than or equal to 20"
    message = assert_error(client.post("/v1/recommend", json={"k": 0}), 422, "invalid-request")
    assert message.startswith("body.k:")


def test_recommend_unknown_field_is_422(client: TestClient) -> None:
    response = client.post("/v1/recommend", json={"user_id": "u1", "kk": 3})
    message = assert_error(response, 422, "invalid-request")
    assert "body.kk" in message
    assert "Extra inputs" in message


def test_union_field_errors_name_the_field(client: TestClient) -> None:
    response = client.post("/v1/recommend", json={"filters": {"category": 5}})
    message = assert_error(response, 422, "invalid-request")
    assert message.startswith("body.filters.category: Input should be a valid string")
    assert "constrained" not in message


def test_recommend_malformed_json_is_422(client: TestClient) -> None:
    response = client.post(
        "/v1/recommend", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_error(response, 422, "invalid-request")


def test_recommend_filters(client: TestClient) -> None:
    body = client.post(
        "/v1/recommend",
        json={"user_id": "stranger", "k": 10, "filters": {"category": "grocery"}},
    ).json()
    assert item_ids(body) == ["sku-tea"]  # coffee is sold out: left out by default
    body = client.post(
        "/v1/recommend",
        json={"k": 10, "filters": {"category": "grocery", "include_out_of_stock": True}},
    ).json()
    assert item_ids(body) == ["sku-tea", "sku-coffee"]
    body = client.post(
        "/v1/recommend",
        json={"k": 10, "filters": {"price_min": 100, "price_max": 2000}},
    ).json()
    assert item_ids(body) == ["sku-tea", "sku-headphones", "sku-lamp"]
    assert all(100 <= item["price"] <= 2000 for item in body["items"])
    # a range no price lies in matches nothing, as the schema cannot refuse it
    response = client.post("/v1/recommend", json={"filters": {"price_min": 5, "price_max": 1}})
    assert response.status_code == 200
    assert response.json()["items"] == []


# --- search ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "first"),
    # (coffee beans are sold out, hidden by default: test_serve_stock.py)
    [("笔记本电脑", "sku-laptop"), ("green tea", "sku-tea"), ("智能手机", "sku-phone")],
)
def test_search(client: TestClient, query: str, first: str) -> None:
    response = client.post("/v1/search", json={"query": query, "k": 3})
    assert response.status_code == 200
    body = response.json()
    assert item_ids(body)[0] == first
    assert body["hint"] is None


def test_search_with_filters_and_user(client: TestClient) -> None:
    body = client.post(
        "/v1/search",
        json={"query": "tea coffee", "user_id": "u1", "filters": {"in_stock": True}},
    ).json()
    assert item_ids(body) == ["sku-tea"]


def test_search_without_match_is_empty_with_hint(client: TestClient) -> None:
    response = client.post("/v1/search", json={"query": "zzqx"})
    assert response.status_code == 200
    body = response.json()
    assert body["items"] == []
    assert "zzqx" in body["hint"]


def test_search_query_bounds(client: TestClient) -> None:
    assert_error(client.post("/v1/search", json={"query": ""}), 422, "invalid-request")
    message = assert_error(
        client.post("/v1/search", json={"query": "a" * 513}), 422, "invalid-request"
    )
    assert message.startswith("body.query:")
    assert "a" * 20 not in message  # the input is never echoed


# --- similar --------------------------------------------------------------------------


def test_similar(client: TestClient) -> None:
    response = client.get("/v1/items/sku-laptop/similar", params={"k": 2})
    assert response.status_code == 200
    body = response.json()
    assert body["item_id"] == "sku-laptop"
    assert item_ids(body) == ["sku-mouse", "sku-headphones"]
    assert body["fallback"] is None


def test_similar_fallback_and_k(client: TestClient) -> None:
    body = client.get("/v1/items/sku-lamp/similar").json()
    assert body["fallback"] == "popular"
    assert len(body["items"]) == 5
    response = client.get("/v1/items/sku-lamp/similar", params={"k": 99})
    assert assert_error(response, 422, "invalid-request").startswith("query.k:")


def test_similar_unknown_item_is_404(client: TestClient) -> None:
    response = client.get("/v1/items/sku-missing/similar")
    assert "sku-missing" in assert_error(response, 404, "unknown-item")


# --- operations -----------------------------------------------------------------------


def test_health_and_ready(client: TestClient, engine: Engine) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "model_version": None}
    assert client.get("/readyz").json() == {"status": "ready", "model_version": engine.version}


def test_not_ready_without_bundle(make_client: ClientFactory) -> None:
    client = make_client(ServeSettings(bundle_path=None))
    assert client.get("/healthz").status_code == 200
    assert_error(client.get("/readyz"), 503, "not-ready")
    assert_error(client.post("/v1/recommend", json={}), 503, "not-ready")


def test_bundle_loads_in_lifespan(make_client: ClientFactory, bundle_path: Path) -> None:
    client = make_client(ServeSettings(bundle_path=bundle_path))
    assert client.get("/readyz").status_code == 200
    assert client.post("/v1/search", json={"query": "tea"}).status_code == 200


def test_metrics_after_requests(client: TestClient, engine: Engine) -> None:
    client.post("/v1/recommend", json={"user_id": "stranger", "k": 2})
    client.post("/v1/search", json={"query": "zzqx"})
    text = client.get("/metrics").text
    assert re.search(
        r'shelfwise_serve_requests_total\{method="POST",route="/v1/recommend",status="200"\} 1',
        text,
    )
    assert 'shelfwise_serve_request_duration_seconds_bucket{le="0.001",route="/v1/search"}' in (
        text
    )
    assert re.search(
        r'shelfwise_serve_fallbacks_total\{endpoint="recommend",model_version="\w+",'
        r'reason="unknown-user"\} 1',
        text,
    )
    assert 'shelfwise_serve_empty_results_total{endpoint="search"' in text
    assert f'shelfwise_serve_model_info{{fingerprint="{engine.manifest.fingerprint[:12]}"' in text
    for name in (
        "shelfwise_serve_requests_total",
        "shelfwise_serve_request_duration_seconds",
        "shelfwise_serve_fallbacks_total",
        "shelfwise_serve_model_info",
    ):
        assert f"# HELP {name} " in text


def test_each_app_has_its_own_registry(engine: Engine, settings: ServeSettings) -> None:
    first, second = create_app(settings, engine=engine), create_app(settings, engine=engine)
    assert first.state.metrics.registry is not second.state.metrics.registry


def test_unknown_route_is_404(client: TestClient) -> None:
    assert_error(client.get("/v2/nothing"), 404, "not-found")
    assert_error(client.get("/v1/recommend"), 405, "method-not-allowed")
    text = client.get("/metrics").text
    assert 'route="unmatched"' in text


def test_request_id(client: TestClient) -> None:
    response = client.post("/v1/recommend", json={}, headers={"X-Request-ID": "abc-123.x"})
    assert response.headers["X-Request-ID"] == "abc-123.x"
    assert response.json()["request_id"] == "abc-123.x"
    response = client.post("/v1/recommend", json={}, headers={"X-Request-ID": "bad id\x7f"})
    generated = response.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert response.json()["request_id"] == generated
    error = client.get("/v1/items/nope/similar")
    assert re.fullmatch(r"[0-9a-f]{32}", error.headers["X-Request-ID"])


def test_body_too_large_is_413(make_client: ClientFactory, engine: Engine) -> None:
    client = make_client(ServeSettings(max_body_bytes=1024), engine=engine)
    response = client.post("/v1/recommend", json={"exclude": ["x" * 100] * 20})
    assert_error(response, 413, "payload-too-large")


def test_unexpected_error_is_500_without_details(
    make_client: ClientFactory, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("/secret/path exploded")

    monkeypatch.setattr(engine, "recommend", broken)
    client = make_client(ServeSettings(), engine=engine)
    response = client.post("/v1/recommend", json={})
    message = assert_error(response, 500, "internal")
    assert "secret" not in message
    assert response.headers["X-Request-ID"] in message


def test_openapi_lists_routes(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert schema["info"]["title"] == "shelfwise"
    paths = set(schema["paths"])
    assert {
        "/v1/recommend",
        "/v1/search",
        "/v1/items/{item_id}/similar",
        "/healthz",
        "/readyz",
        "/metrics",
    } <= paths
    assert "examples" in schema["components"]["schemas"]["SearchRequest"]
    assert client.get("/docs").status_code == 200


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHELFWISE_SERVE_MAX_K", "7")
    monkeypatch.setenv("SHELFWISE_SERVE_DEFAULT_K", "3")
    app = create_app()
    assert app.state.settings.max_k == 7
    with pytest.raises(ValueError, match="default_k"):
        ServeSettings(max_k=2, default_k=3)


def test_settings_come_from_the_config_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The `serve:` section is the settings: file < SHELFWISE_SERVE_<KEY> < flags."""
    from shelfwise.config import load_config

    config_file = tmp_path / "shelfwise.yaml"
    config_file.write_text("serve:\n  port: 9000\n  max_k: 50\n", encoding="utf-8")
    monkeypatch.setenv("SHELFWISE_SERVE_PORT", "9100")
    settings = load_config(config_file, overrides={"serve.host": "0.0.0.0"}).serve
    assert isinstance(settings, ServeSettings)
    assert (settings.port, settings.max_k, settings.host) == (9100, 50, "0.0.0.0")


def test_event_log_defaults_to_the_state_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHELFWISE_HOME", str(tmp_path / "home"))
    app = create_app()
    assert app.state.event_log.root == (tmp_path / "home" / "events").resolve()
    given = create_app(ServeSettings(bundle_path=None, event_log_dir=tmp_path / "log"))
    assert given.state.event_log.root == tmp_path / "log"
