"""Merchandising rules and diversity through the app (issue 17): pins, buries, hides,
time windows, segments, brand caps, `applied_rules`, the rule counter, the admin API.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from shelfwise.errors import ConfigError
from shelfwise.runtime import Engine
from shelfwise.serve import ServeSettings

if TYPE_CHECKING:
    from tests.unit.serve.conftest import ClientFactory

TOKEN = "rules-4Kx9Qm2Wv7Lp1Zt8Hc5Nb3Rf6Jd0Gs"  # noqa: S105 - a test-only token
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _settings(tmp_path: Path, **values: Any) -> ServeSettings:
    return ServeSettings(
        bundle_path=None,
        max_k=20,
        default_k=5,
        admin_enabled=True,
        admin_token=TOKEN,
        event_log_dir=tmp_path / "events",
        **values,
    )


@pytest.fixture
def admin(make_client: ClientFactory, engine: Engine, tmp_path: Path) -> TestClient:
    """A client of an app with the admin routes and its own rules log."""
    return make_client(_settings(tmp_path), engine=engine)


def _put(client: TestClient, *rules: dict[str, Any], **extra: Any) -> Any:
    return client.put("/v1/admin/rules", json={"rules": list(rules), **extra}, headers=AUTH)


def _ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["item_id"] for item in response.json()["items"]]


def _rule_count(client: TestClient, rule: str, endpoint: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("shelfwise_serve_rule_applications_total{") and (
            f'rule="{rule}"' in line and f'endpoint="{endpoint}"' in line
        ):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_pinned_item_comes_first_for_its_query_even_when_not_ranked(admin: TestClient) -> None:
    before = _ids(admin.post("/v1/search", json={"query": "laptop", "k": 3}))
    assert "sku-lamp" not in before
    _put(admin, {"id": "pin-lamp", "action": "pin", "queries": ["LAPTOP "], "items": ["sku-lamp"]})
    answer = admin.post("/v1/search", json={"query": "laptop", "k": 3})
    assert _ids(answer)[0] == "sku-lamp"
    assert _ids(answer)[1:] == before[:2]
    assert answer.json()["applied_rules"] == ["pin-lamp"]
    other = admin.post("/v1/search", json={"query": "phone", "k": 3})
    assert "sku-lamp" not in _ids(other)  # another query: the rule does not apply
    assert other.json()["applied_rules"] == []
    assert _rule_count(admin, "pin-lamp", "search") == 1


def test_bury_moves_an_item_down_and_hide_removes_it(admin: TestClient) -> None:
    body = {"user_id": "u3", "k": 5}
    before = _ids(admin.post("/v1/recommend", json=body))
    first = before[0]
    _put(admin, {"id": "bury-first", "action": "bury", "items": [first], "weight": 1.0})
    buried = _ids(admin.post("/v1/recommend", json=body))
    assert first not in buried[:1]
    assert first not in buried or buried.index(first) > 0
    _put(admin, {"id": "hide-first", "action": "hide", "items": [first]})
    hidden = admin.post("/v1/recommend", json=body)
    assert first not in _ids(hidden)
    assert hidden.json()["applied_rules"] == ["hide-first"]
    assert _rule_count(admin, "hide-first", "recommend") == 1


def test_a_rule_outside_its_time_window_does_nothing(admin: TestClient) -> None:
    before = _ids(admin.post("/v1/search", json={"query": "laptop", "k": 3}))
    _put(
        admin,
        {
            "id": "pin-past",
            "action": "pin",
            "items": ["sku-lamp"],
            "start": "2020-01-01T00:00:00Z",
            "end": "2020-02-01T00:00:00Z",
        },
    )
    answer = admin.post("/v1/search", json={"query": "laptop", "k": 3})
    assert _ids(answer) == before
    assert answer.json()["applied_rules"] == []


def test_a_segment_rule_applies_to_its_segment_only(admin: TestClient) -> None:
    _put(admin, {"id": "vip-tea", "action": "pin", "segments": ["vip"], "items": ["sku-tea"]})
    vip = admin.post("/v1/recommend", json={"user_id": "u1", "k": 3, "segment": "vip"})
    plain = admin.post("/v1/recommend", json={"user_id": "u1", "k": 3})
    assert _ids(vip)[0] == "sku-tea"
    assert vip.json()["applied_rules"] == ["vip-tea"]
    assert plain.json()["applied_rules"] == []


def test_a_brand_cap_holds_in_the_top_k(admin: TestClient) -> None:
    capped = admin.post(
        "/v1/recommend",
        json={"k": 6, "diversity": {"max_per_category": 2}},
    )
    categories = [item["category"] for item in capped.json()["items"]]
    assert len(categories) == 6 or len(set(categories)) * 2 >= len(categories)
    assert max(categories.count(c) for c in set(categories)) <= 2
    per_brand = admin.post(
        "/v1/search", json={"query": "electronics", "k": 5, "diversity": {"max_per_brand": 1}}
    )
    brands = [item["brand"] for item in per_brand.json()["items"]]
    assert len(brands) == len(set(brands))


def test_mmr_with_lambda_zero_is_the_plain_ranking(admin: TestClient) -> None:
    plain = _ids(admin.post("/v1/recommend", json={"user_id": "u1", "k": 5}))
    zero = admin.post(
        "/v1/recommend", json={"user_id": "u1", "k": 5, "diversity": {"mmr_lambda": 0.0}}
    )
    assert _ids(zero) == plain


def test_put_rules_versions_them_with_an_audit_record(admin: TestClient, tmp_path: Path) -> None:
    assert admin.get("/v1/admin/rules", headers=AUTH).json()["version"] == 0
    first = _put(
        admin,
        {"id": "hide-lamp", "action": "hide", "items": ["sku-lamp"]},
        author="merch@shop",
        comment="out of season",
    )
    assert first.status_code == 200, first.text
    assert first.json()["version"] == 1
    second = _put(admin, {"id": "bury-tea", "action": "bury", "category": ["grocery"]})
    assert second.json()["version"] == 2
    current = admin.get("/v1/admin/rules", headers=AUTH).json()
    assert current["version"] == 2
    assert [rule["id"] for rule in current["rules"]] == ["bury-tea"]
    history = admin.get("/v1/admin/rules/history", headers=AUTH).json()["versions"]
    assert [v["version"] for v in history] == [2, 1]
    assert history[1]["by"] == "merch@shop"
    assert history[1]["comment"] == "out of season"
    log = tmp_path / "rules" / "rules.jsonl"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["version"] for line in lines] == [1, 2]


def test_invalid_rules_get_422_with_the_reason_and_change_nothing(admin: TestClient) -> None:
    _put(admin, {"id": "hide-lamp", "action": "hide", "items": ["sku-lamp"]})
    for rules, reason in [
        ([{"id": "p", "action": "pin", "queries": ["x"]}], "needs `items`"),
        ([{"id": "p", "action": "pin", "items": ["a"], "brand": ["b"]}], "pins `items` only"),
        ([{"id": "b", "action": "boost"}], "needs a target"),
        ([{"id": "h", "action": "hide", "items": ["a"], "colour": "red"}], "colour"),
        ([{"id": "bad id!", "action": "hide", "items": ["a"]}], "body.rules.0.id"),
        ([{"id": "w", "action": "hide", "items": ["a"], "weight": 0}], "weight"),
    ]:
        refused = _put(admin, *rules)
        assert refused.status_code == 422, rules
        assert refused.json()["code"] == "invalid-request"
        assert reason in refused.json()["message"]
    assert admin.get("/v1/admin/rules", headers=AUTH).json()["version"] == 1


def test_rules_that_never_apply_are_kept_with_a_warning(admin: TestClient) -> None:
    # the schema cannot state an order between two fields: accepted, and said so
    answer = _put(
        admin,
        {"id": "w", "action": "hide", "items": ["sku-tea"], "start": "2026-02-01T00:00:00Z",
         "end": "2026-01-01T00:00:00Z"},
        {"id": "w", "action": "bury", "price_min": 100.0, "price_max": 10.0},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    warnings = answer.json()["warnings"]
    assert any("never applies: start" in warning for warning in warnings)
    assert any("price_min 100.0 is above price_max 10.0" in warning for warning in warnings)
    assert any("'w' is used twice" in warning for warning in warnings)
    recommended = admin.post("/v1/recommend", json={"user_id": "u4", "k": 5})
    assert recommended.json()["applied_rules"] == []


def test_rules_endpoints_need_the_token(admin: TestClient) -> None:
    assert admin.get("/v1/admin/rules").status_code == 401
    assert admin.put("/v1/admin/rules", json={"rules": []}).status_code == 401


def test_the_rules_file_is_loaded_at_start_and_survives_a_restart(
    make_client: ClientFactory, engine: Engine, tmp_path: Path
) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(
        "rules:\n  - id: pin-book\n    action: pin\n    queries: [laptop]\n    items: [sku-book]\n"
    )
    first = make_client(_settings(tmp_path, rules_file=rules_file), engine=engine)
    assert _ids(first.post("/v1/search", json={"query": "laptop", "k": 2}))[0] == "sku-book"
    assert first.get("/v1/admin/rules", headers=AUTH).json()["by"] == "rules_file"
    again = make_client(_settings(tmp_path, rules_file=rules_file), engine=engine)
    assert again.get("/v1/admin/rules", headers=AUTH).json()["version"] == 1  # unchanged file


def test_an_invalid_rules_file_refuses_to_start(
    make_client: ClientFactory, engine: Engine, tmp_path: Path
) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text("rules:\n  - id: x\n    action: pin\n    colour: red\n")
    with pytest.raises(ConfigError, match=r"rules.0.colour: Extra inputs are not permitted"):
        make_client(_settings(tmp_path, rules_file=rules_file), engine=engine)


def test_server_defaults_cap_every_list_and_a_request_overrides_them(
    make_client: ClientFactory, engine: Engine, tmp_path: Path
) -> None:
    client = make_client(_settings(tmp_path, max_per_category=1), engine=engine)
    capped = client.post("/v1/recommend", json={"k": 4})
    categories = [item["category"] for item in capped.json()["items"]]
    assert len(categories) == len(set(categories))
    wider = client.post("/v1/recommend", json={"k": 4, "diversity": {"max_per_category": 3}})
    categories = [item["category"] for item in wider.json()["items"]]
    assert len(categories) == 4
    assert len(set(categories)) < 4


def test_a_rules_version_reaches_a_replica_on_another_disk_through_redis(
    make_client: ClientFactory,
    engine: Engine,
    tmp_path: Path,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shelfwise.serve import rules_book

    monkeypatch.setattr(rules_book, "REFRESH_S", 0.0)  # look at every request
    first = make_client(_settings(tmp_path / "a", online_store_url=redis_url), engine=engine)
    second = make_client(_settings(tmp_path / "b", online_store_url=redis_url), engine=engine)
    written = _put(
        first, {"id": "pin-lamp", "action": "pin", "queries": ["laptop"], "items": ["sku-lamp"]}
    )
    assert written.json()["version"] == 1
    answer = second.post("/v1/search", json={"query": "laptop", "k": 2})
    assert _ids(answer)[0] == "sku-lamp"
    assert answer.json()["applied_rules"] == ["pin-lamp"]
    adopted = second.get("/v1/admin/rules", headers=AUTH).json()
    assert (adopted["version"], adopted["by"]) == (1, "admin")
    # the adopted version is in the second replica's own log: it survives a restart
    log = tmp_path / "b" / "rules" / "rules.jsonl"
    assert json.loads(log.read_text().splitlines()[-1])["version"] == 1
    # and the next version from the second replica is numbered after it, everywhere
    assert (
        _put(second, {"id": "hide-tea", "action": "hide", "items": ["sku-tea"]}).json()["version"]
        == 2
    )
    assert first.get("/v1/admin/rules", headers=AUTH).json()["version"] == 2


def test_rules_keep_working_when_redis_is_down(
    make_client: ClientFactory, engine: Engine, tmp_path: Path, closed_redis_url: str
) -> None:
    client = make_client(_settings(tmp_path, online_store_url=closed_redis_url), engine=engine)
    written = _put(client, {"id": "pin-lamp", "action": "pin", "items": ["sku-lamp"]})
    assert written.status_code == 200, written.text
    assert written.json()["version"] == 1  # durable in the local log, not published
    assert _ids(client.post("/v1/search", json={"query": "laptop", "k": 2}))[0] == "sku-lamp"
