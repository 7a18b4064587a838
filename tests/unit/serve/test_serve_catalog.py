"""Catalog updates against running servers (uvicorn on loopback, a real Redis).

Each server loads its own engine from the session's bundle: updates change an engine,
and the session's shared one must stay as built.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.unit.conftest import free_port
from tests.unit.serve.conftest import in_test_process

from shelfwise.runtime import load_engine
from shelfwise.serve import ServeSettings, create_app

TOKEN = "catalog-7Hq2Wm9Xc4Rz8Lb1Nt5Vy3Kd6Pf0Gs"  # noqa: S105 - a test-only token
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EARBUDS = {
    "item_id": "sku-earbuds",
    "title": "小米 无线蓝牙耳机",
    "category": "electronics",
    "brand": "Xiaomi",
    "price": 199.0,
    "in_stock": True,
}
IN_STOCK = {"in_stock": True}


def _settings(root: Path, **changes: Any) -> ServeSettings:
    return ServeSettings(
        bundle_path=None,
        max_k=20,
        default_k=5,
        admin_enabled=True,
        admin_token=TOKEN,
        event_log_dir=root / "events",
        catalog_log_dir=root / "catalog",
        drift_interval_s=0,
        **changes,
    )


@contextmanager
def running(bundle_path: Path, settings: ServeSettings) -> Iterator[httpx.Client]:
    """A uvicorn server on loopback over its own engine; a client of it."""
    import uvicorn

    app = create_app(in_test_process(settings), engine=load_engine(bundle_path, verify=False))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(30)


def _put(client: httpx.Client, *items: dict[str, Any]) -> httpx.Response:
    return client.put("/v1/items", json={"items": list(items)}, headers=AUTH)


def _search(client: httpx.Client, query: str, **body: Any) -> list[str]:
    response = client.post("/v1/search", json={"query": query, "k": 8, **body})
    assert response.status_code == 200, response.text
    return [item["item_id"] for item in response.json()["items"]]


def _recommend(client: httpx.Client, **body: Any) -> list[str]:
    response = client.post("/v1/recommend", json={"k": 8, **body})
    assert response.status_code == 200, response.text
    return [item["item_id"] for item in response.json()["items"]]


def _similar(client: httpx.Client, item: str) -> list[str]:
    response = client.get(f"/v1/items/{item}/similar", params={"k": 8})
    assert response.status_code == 200, response.text
    return [entry["item_id"] for entry in response.json()["items"]]


def test_a_sold_out_item_leaves_both_endpoints_on_the_next_request(
    bundle_path: Path, tmp_path: Path
) -> None:
    with running(bundle_path, _settings(tmp_path)) as client:
        assert "sku-headphones" in _search(client, "耳机", filters=IN_STOCK)
        assert "sku-headphones" in _recommend(client, user_id="u2", filters=IN_STOCK)
        response = _put(client, {"item_id": "sku-headphones", "in_stock": False})
        assert response.status_code == 200, response.text
        assert response.json()["applied"] == 1
        assert "sku-headphones" not in _search(client, "耳机", filters=IN_STOCK)
        assert "sku-headphones" not in _recommend(client, user_id="u2", filters=IN_STOCK)
        # sold out: gone by default too (serve.hide_out_of_stock), listed when asked for
        assert "sku-headphones" not in _search(client, "耳机")
        assert "sku-headphones" not in _recommend(client, user_id="u2")
        shown = client.post(
            "/v1/search", json={"query": "耳机", "filters": {"include_out_of_stock": True}}
        ).json()["items"]
        assert {i["item_id"]: i["in_stock"] for i in shown}["sku-headphones"] is False


def test_a_new_chinese_product_is_found_and_listed_as_similar(
    bundle_path: Path, tmp_path: Path
) -> None:
    with running(bundle_path, _settings(tmp_path)) as client:
        assert "sku-earbuds" not in _search(client, "蓝牙")
        response = _put(client, EARBUDS)
        assert response.status_code == 200, response.text
        assert response.json()["new_items"] == 1
        assert _search(client, "蓝牙")[0] == "sku-earbuds"
        assert "sku-earbuds" in _similar(client, "sku-headphones")
        assert "sku-headphones" in _similar(client, "sku-earbuds")
        assert client.delete("/v1/items/sku-earbuds", headers=AUTH).status_code == 200
        assert "sku-earbuds" not in _search(client, "蓝牙")
        assert client.get("/v1/items/sku-earbuds/similar").status_code == 404


def test_updates_survive_a_restart(bundle_path: Path, tmp_path: Path) -> None:
    with running(bundle_path, _settings(tmp_path)) as client:
        assert _put(client, EARBUDS, {"item_id": "sku-phone", "hidden": True}).status_code == 200
    with running(bundle_path, _settings(tmp_path)) as restarted:
        assert "sku-earbuds" in _search(restarted, "蓝牙")
        assert "sku-phone" not in _recommend(restarted)


def test_invalid_updates_get_422_naming_the_rows_and_change_nothing(
    bundle_path: Path, tmp_path: Path
) -> None:
    with running(bundle_path, _settings(tmp_path)) as client:
        cases = [
            ([{"item_id": "sku-tea", "price": 1.0}, {"item_id": ""}], "body.items.1.item_id"),
            ([{"item_id": "sku-tea", "price": -1.0}], "body.items.0.price"),
            ([{"item_id": "sku-tea", "in_stock": 0}], "body.items.0.in_stock"),
            ([{"item_id": "sku-tea", "price": "5"}], "body.items.0.price"),
            ([{"item_id": "sku-tea", "colour": "red"}], "body.items.0.colour"),
        ]
        for items, named in cases:
            response = _put(client, *items)
            assert response.status_code == 422, response.text
            assert response.json()["code"] == "invalid-request"
            assert named in response.json()["message"]
        prices = {
            i["item_id"]: i["price"]
            for i in client.post("/v1/search", json={"query": "tea"}).json()["items"]
        }
        assert prices["sku-tea"] == 128.0
        unauthorised = client.put(
            "/v1/items", json={"items": [{"item_id": "sku-tea", "price": 1.0}]}
        )
        assert unauthorised.status_code == 401
        assert client.delete("/v1/items/sku-nothing", headers=AUTH).status_code == 404
    assert not list((tmp_path / "catalog").rglob("*.jsonl"))  # nothing was logged


def test_a_new_item_without_a_title_waits_for_one(bundle_path: Path, tmp_path: Path) -> None:
    with running(bundle_path, _settings(tmp_path)) as client:
        held = _put(client, {"item_id": "sku-kettle", "category": "home", "price": 30})
        assert held.json()["pending_items"] == 1
        assert client.get("/v1/items/sku-kettle/similar").status_code == 404
        titled = _put(client, {"item_id": "sku-kettle", "title": "Electric Kettle 电热水壶"})
        assert titled.json()["new_items"] == 1
        found = client.post("/v1/search", json={"query": "kettle"}).json()["items"]
        assert found[0]["item_id"] == "sku-kettle"
        assert (found[0]["category"], found[0]["price"]) == ("home", 30)


def test_an_update_reaches_a_second_server_through_redis(
    bundle_path: Path, tmp_path: Path, redis_url: str
) -> None:
    first = _settings(tmp_path / "a", online_store_url=redis_url)
    second = _settings(tmp_path / "b", online_store_url=redis_url)  # its own disk
    with running(bundle_path, first) as one, running(bundle_path, second) as two:
        response = _put(one, EARBUDS, {"item_id": "sku-mouse", "hidden": True})
        assert response.json()["propagated"] is True
        deadline = time.monotonic() + 5
        while "sku-earbuds" not in _search(two, "蓝牙") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "sku-earbuds" in _search(two, "蓝牙")
        assert "sku-mouse" not in _recommend(two, user_id="u2")
    # a third server started later reads the stream before it answers
    with running(bundle_path, _settings(tmp_path / "c", online_store_url=redis_url)) as three:
        assert "sku-earbuds" in _search(three, "蓝牙")


@pytest.mark.parametrize("method", ["put", "delete"])
def test_the_catalog_routes_are_in_the_openapi_document(
    bundle_path: Path, tmp_path: Path, method: str
) -> None:
    from fastapi.testclient import TestClient

    app = create_app(
        in_test_process(_settings(tmp_path)), engine=load_engine(bundle_path, verify=False)
    )
    document = TestClient(app).get("/openapi.json").json()
    path = "/v1/items" if method == "put" else "/v1/items/{item_id}"
    operation = document["paths"][path][method]
    assert {"200", "401", "422", "503"} <= set(operation["responses"])
    item = document["components"]["schemas"]["ItemIn"]["properties"]
    assert {"item_id", "title", "description", "category", "brand", "price", "in_stock",
            "hidden", "attributes"} <= set(item)  # fmt: skip
