"""Sold-out items leave every list by default (`serve.hide_out_of_stock`, issue 17).

Over the tiny bundle of tests/unit/conftest.py: coffee is sold out in the bundle, the
lamp's stock is unknown (shown), tea's best neighbour is coffee, and u1's precomputed
list holds the phone. Each test loads its own engine: the live catalog and precomputed
lists change an engine, and the session's shared one must stay as built.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from shelfwise.runtime import load_engine
from shelfwise.serve import ServeSettings

if TYPE_CHECKING:
    from fastapi.testclient import TestClient
    from tests.unit.serve.conftest import ClientFactory

TOKEN = "stock-4Fh8Qz2Wn6Xc1Vb9Lm3Rt7Kp5Gd0Sy"  # noqa: S105 - a test-only token
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SHOW_ALL = {"include_out_of_stock": True}
SOLD_OUT_ONLY = {"in_stock": False}


def _client(
    make_client: ClientFactory, bundle_path: Path, tmp_path: Path, **changes: Any
) -> TestClient:
    settings = ServeSettings(
        bundle_path=None,
        max_k=20,
        default_k=5,
        admin_enabled=True,
        admin_token=TOKEN,
        event_log_dir=tmp_path / "events",
        catalog_log_dir=tmp_path / "catalog",
        drift_interval_s=0,
        **changes,
    )
    engine = load_engine(bundle_path, verify=False)
    engine.precompute(10, max_k=20)
    return make_client(settings, engine=engine)


def _ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["item_id"] for item in response.json()["items"]]


def _recommend(client: TestClient, **body: Any) -> list[str]:
    return _ids(client.post("/v1/recommend", json={"k": 8, **body}))


def _search(client: TestClient, query: str, **body: Any) -> list[str]:
    return _ids(client.post("/v1/search", json={"query": query, "k": 8, **body}))


def _similar(client: TestClient, item: str, k: int = 3) -> list[str]:
    return _ids(client.get(f"/v1/items/{item}/similar", params={"k": k}))


@pytest.fixture
def client(make_client: ClientFactory, bundle_path: Path, tmp_path: Path) -> TestClient:
    return _client(make_client, bundle_path, tmp_path)


def test_recommend_leaves_sold_out_items_out_unless_asked(client: TestClient) -> None:
    shown = _recommend(client)
    assert "sku-coffee" not in shown
    assert "sku-lamp" in shown  # unknown stock stays shown
    assert len(shown) == 7  # every item but the sold-out one
    assert "sku-coffee" in _recommend(client, filters=SHOW_ALL)
    assert _recommend(client, filters=SOLD_OUT_ONLY) == ["sku-coffee"]  # back office


def test_search_leaves_sold_out_items_out_with_a_hint(client: TestClient) -> None:
    response = client.post("/v1/search", json={"query": "coffee beans"})
    assert response.json()["items"] == []
    assert "sold out" in response.json()["hint"]
    assert _search(client, "coffee beans", filters=SHOW_ALL)[0] == "sku-coffee"
    assert _search(client, "coffee beans", filters=SOLD_OUT_ONLY) == ["sku-coffee"]
    both = {"category": "grocery", "include_out_of_stock": True}
    assert "sku-coffee" in _search(client, "tea coffee", filters=both)


def test_similar_items_leave_sold_out_items_out_and_stay_full(client: TestClient) -> None:
    similar = _similar(client, "sku-tea")
    assert "sku-coffee" not in similar  # tea's best neighbour, sold out
    assert len(similar) == 3
    assert _similar(client, "sku-coffee")  # a sold-out item still has similar items


def test_a_precomputed_list_drops_an_item_sold_out_online_and_stays_k_long(
    client: TestClient,
) -> None:
    assert _recommend(client, user_id="u1", k=3)[0] == "sku-phone"  # u1's precomputed list
    sold = client.put(
        "/v1/items", json={"items": [{"item_id": "sku-phone", "in_stock": False}]}, headers=AUTH
    )
    assert sold.status_code == 200, sold.text
    listed = _recommend(client, user_id="u1", k=3)
    assert "sku-phone" not in listed
    assert len(listed) == 3
    assert "sku-phone" not in _search(client, "智能手机")
    assert "sku-phone" not in _similar(client, "sku-laptop", k=6)
    assert _recommend(client, user_id="u1", k=3, filters=SHOW_ALL)[0] == "sku-phone"
    back = client.put(
        "/v1/items", json={"items": [{"item_id": "sku-phone", "in_stock": True}]}, headers=AUTH
    )
    assert back.status_code == 200, back.text
    assert _recommend(client, user_id="u1", k=3)[0] == "sku-phone"


def test_a_new_item_sold_out_on_arrival_is_not_listed(client: TestClient) -> None:
    new = {"item_id": "sku-kettle", "title": "Electric Kettle 电热水壶", "category": "home"}
    response = client.put("/v1/items", json={"items": [{**new, "in_stock": False}]}, headers=AUTH)
    assert response.status_code == 200, response.text
    assert "sku-kettle" not in _search(client, "kettle")
    assert _search(client, "kettle", filters=SHOW_ALL)[0] == "sku-kettle"
    assert "sku-kettle" not in _similar(client, "sku-lamp", k=7)


def test_the_setting_off_lists_sold_out_items(
    make_client: ClientFactory, bundle_path: Path, tmp_path: Path
) -> None:
    client = _client(make_client, bundle_path, tmp_path, hide_out_of_stock=False)
    assert "sku-coffee" in _recommend(client)
    assert _similar(client, "sku-tea")[0] == "sku-coffee"
    assert "sku-coffee" not in _recommend(client, filters={"in_stock": True})


# the request and response bodies issue 17 added or changed (a live shop)
LIVE_SHOP_SCHEMAS = (
    "FiltersIn", "DiversityIn", "RecommendRequest", "SearchRequest", "RecommendResponse",
    "SearchResponse", "ItemIn", "ItemsRequest", "ItemsResponse", "ExplanationOut",
    "FeatureContribution", "SimilarToHistory", "SimilarToRecent", "PopularIn",
    "ClickModelReason", "MatchedTerms", "DenseSimilarity", "RankingFeatures", "RuleReason",
    "Rule", "RulesIn", "RulesOut", "RulesHistory",
)  # fmt: skip


def test_every_live_shop_field_is_documented_in_the_openapi_document(
    client: TestClient,
) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    undocumented = [
        f"{name}.{field}"
        for name in LIVE_SHOP_SCHEMAS
        for field, spec in schemas[name]["properties"].items()
        if not spec.get("description")
    ]
    assert undocumented == []
    fields = schemas["FiltersIn"]["properties"]
    assert "hide_out_of_stock" in fields["in_stock"]["description"]
    assert "hide_out_of_stock" in fields["include_out_of_stock"]["description"]
    assert schemas["ItemOut"]["properties"]["explanation"]["description"]
