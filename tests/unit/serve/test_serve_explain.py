"""`explain: true` on /v1/recommend and /v1/search (issue 17): reasons read off the models
that scored each item, never made up — neighbours come from the user's history, terms
from the analysed query.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shelfwise.runtime import Engine
from shelfwise.serve import ServeSettings

if TYPE_CHECKING:
    from fastapi.testclient import TestClient
    from tests.unit.conftest import ShopFacts
    from tests.unit.serve.conftest import ClientFactory

TOKEN = "explain-8Rv2Lq7Zx4Mt1Kc9Wb6Hn3Jf5Gd0Ps"  # noqa: S105 - a test-only token


def _reasons(item: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    assert item["explanation"] is not None
    return [reason for reason in item["explanation"]["reasons"] if reason["kind"] == kind]


def test_recommendations_are_explained_by_history_items(
    client: TestClient, facts: ShopFacts
) -> None:
    for user, history in facts.history.items():
        answer = client.post("/v1/recommend", json={"user_id": user, "k": 4, "explain": True})
        assert answer.status_code == 200, answer.text
        explained = 0
        for item in answer.json()["items"]:
            for reason in _reasons(item, "similar_to_history"):
                assert reason["items"], item
                assert set(reason["items"]) <= set(history), (user, item["item_id"])
                assert all(value > 0 for value in reason["contributions"])
                assert item["explanation"]["text"].startswith("because you viewed")
                explained += 1
        if answer.json()["fallback"] is None:  # the recommender listed something
            assert explained > 0, user


def test_the_largest_contribution_is_the_history_item_whose_removal_costs_most(
    client: TestClient, engine: Engine
) -> None:
    answer = client.post("/v1/recommend", json={"user_id": "u3", "k": 1, "explain": True})
    item = answer.json()["items"][0]
    (reason,) = _reasons(item, "similar_to_history")
    full = {i.raw_item_id: i.score for i in engine.recommend_from_history(
        ["sku-tea", "sku-coffee"], 8, weights=[5.0, 3.0]).items}  # fmt: skip
    for history_item, value in zip(reason["items"], reason["contributions"], strict=True):
        rest = [raw for raw in ("sku-tea", "sku-coffee") if raw != history_item]
        weights = [5.0 if raw == "sku-tea" else 3.0 for raw in rest]
        without = {i.raw_item_id: i.score for i in engine.recommend_from_history(
            rest, 8, weights=weights).items}  # fmt: skip
        expected = full[item["item_id"]] - without.get(item["item_id"], 0.0)
        assert abs(value - expected) < 1e-3


def test_popular_fallbacks_say_so(client: TestClient) -> None:
    answer = client.post("/v1/recommend", json={"k": 3, "explain": True})
    for item in answer.json()["items"]:
        assert _reasons(item, "popular_in") == [{"kind": "popular_in", "category": None}]
        assert item["explanation"]["text"] == "popular with shoppers"
    page = client.post(
        "/v1/recommend",
        json={"k": 2, "explain": True, "filters": {"category": "grocery"}},
    )
    for item in page.json()["items"]:
        assert item["explanation"]["text"] == "popular in grocery"


def test_search_terms_come_from_the_analysed_query(client: TestClient, engine: Engine) -> None:
    from shelfwise.retrieval import BM25Search

    index = engine.explainer._bm25
    assert isinstance(index, BM25Search)
    for query in ("Lenovo laptop", "笔记本电脑", "wireless mouse", "green tea"):
        answer = client.post("/v1/search", json={"query": query, "k": 3, "explain": True})
        assert answer.status_code == 200, answer.text
        analysed = set(index.query_tokens(query))
        for item in answer.json()["items"]:
            matched = _reasons(item, "matched_terms")
            assert matched, (query, item["item_id"])
            for reason in matched:
                assert set(reason["terms"]) <= analysed, (query, reason)
                assert reason["score"] > 0
            assert item["explanation"]["text"].startswith("matched '")


def test_explanations_are_null_unless_asked(client: TestClient) -> None:
    for path, body in (
        ("/v1/recommend", {"user_id": "u1", "k": 3}),
        ("/v1/search", {"query": "laptop", "k": 3}),
    ):
        answer = client.post(path, json=body)
        assert all(item["explanation"] is None for item in answer.json()["items"])


def test_a_pinned_item_names_its_rule(
    make_client: ClientFactory, engine: Engine, tmp_path: Any
) -> None:
    settings = ServeSettings(
        bundle_path=None,
        max_k=20,
        default_k=5,
        admin_enabled=True,
        admin_token=TOKEN,
        event_log_dir=tmp_path / "events",
    )
    client = make_client(settings, engine=engine)
    client.put(
        "/v1/admin/rules",
        json={
            "rules": [{"id": "R1", "action": "pin", "queries": ["laptop"], "items": ["sku-lamp"]}]
        },
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    answer = client.post("/v1/search", json={"query": "laptop", "k": 2, "explain": True})
    first = answer.json()["items"][0]
    assert first["item_id"] == "sku-lamp"
    assert _reasons(first, "rule") == [{"kind": "rule", "rule_id": "R1", "action": "pin"}]
    assert _reasons(first, "matched_terms") == []  # BM25 did not match it: no made-up term
    assert first["explanation"]["text"] == "pinned by rule R1"


def test_nothing_is_explained_when_not_asked(
    client: TestClient, engine: Engine, monkeypatch: Any
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the explainer ran for a request without explain")

    monkeypatch.setattr(engine.explainer, "recommendation", refuse)
    monkeypatch.setattr(engine.explainer, "search", refuse)
    assert client.post("/v1/recommend", json={"user_id": "u1"}).status_code == 200
    assert client.post("/v1/search", json={"query": "laptop"}).status_code == 200


def test_realtime_neighbours_name_the_recent_items(client: TestClient) -> None:
    sent = client.post(
        "/v1/events",
        json={"events": [{"user_id": "u3", "item_id": "sku-laptop", "event_type": "view"}]},
    )
    assert sent.status_code == 202, sent.text
    answer = client.post("/v1/recommend", json={"user_id": "u3", "k": 4, "explain": True})
    assert answer.json()["personalisation"] == "realtime"
    recent = [
        reason for item in answer.json()["items"] for reason in _reasons(item, "similar_to_recent")
    ]
    assert recent
    assert all(reason["items"] == ["sku-laptop"] for reason in recent)
