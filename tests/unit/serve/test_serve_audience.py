"""`GET /v1/items/{id}/audience` end to end on the tiny audience bundle (issue 15)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from shelfwise.runtime import load_engine
from shelfwise.serve import ServeSettings

if TYPE_CHECKING:
    from tests.unit.serve.conftest import ClientFactory


def test_audience_route(audience_bundle_path: Path, make_client: ClientFactory) -> None:
    engine = load_engine(audience_bundle_path)
    client = make_client(ServeSettings(bundle_path=None), engine=engine)
    response = client.get("/v1/items/sku-mouse/audience", params={"k": 2})
    assert response.status_code == 200
    body = response.json()
    assert body["item_id"] == "sku-mouse"
    assert body["users"][0]["user_id"] == "u5"
    assert len(body["users"]) == 2
    assert body["model_version"] == engine.version
    cold = client.get("/v1/items/sku-tea-gift/audience", params={"k": 2, "active_days": 365})
    assert {u["user_id"] for u in cold.json()["users"]} == {"u3", "u4"}
    missing = client.get("/v1/items/sku-x/audience")
    assert missing.status_code == 404
    assert missing.json()["code"] == "unknown-item"
    bad = client.get("/v1/items/sku-mouse/audience", params={"active_days": 0})
    assert bad.status_code == 422
