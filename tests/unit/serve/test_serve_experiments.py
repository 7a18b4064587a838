"""Experiments in the server: an A/B split and interleaving between two real bundles.

The shop has two groups of users: a small one buying `x-*` items and a larger one
buying `y-*` items. Version `pop` recommends the most popular items (`y-*` for
everyone); version `knn` recommends neighbours of the user's history (`x-*` for the
small group). Simulated users of the small group click the `x-*` items they are shown
far more often than the others, so `knn` is truly better for them.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from shelfwise.package.bundle import BundleSpec, write_bundle
from shelfwise.retrieval import ItemKNNRecommender, PopularityRecommender
from shelfwise.runtime import Engine, load_engine
from shelfwise.serve import ServeSettings

if TYPE_CHECKING:
    from fastapi.testclient import TestClient
    from tests.unit.serve.conftest import ClientFactory

TOKEN = "experiments-4Fz8Qw2Nc7Lp1Vb6Xr3Hm9Td5Ks0"  # noqa: S105 - a test-only token
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ITEMS = [f"x-{i}" for i in range(6)] + [f"y-{i}" for i in range(6)]
SMALL = [f"ux{i}" for i in range(16)]
LARGE = [f"uy{i}" for i in range(24)]
P_LIKED, P_OTHER = 0.4, 0.1  # click chance of a shown x-item / any other item


def _bundle(root: Path, recommender: str) -> Path:
    dense = np.zeros((len(SMALL) + len(LARGE), len(ITEMS)), dtype=np.float32)
    for u in range(len(SMALL)):
        dense[u, [u % 6, (u + 1) % 6, (u + 2) % 6]] = 1.0
    for u in range(len(LARGE)):
        dense[len(SMALL) + u, [6 + u % 6, 6 + (u + 1) % 6, 6 + (u + 2) % 6]] = 1.0
    histories = sp.csr_matrix(dense)
    popularity = PopularityRecommender()
    popularity.fit(histories)
    popularity.save(root / "models" / "popularity")
    components = {"popular": ("popularity", root / "models" / "popularity")}
    if recommender == "knn":
        knn = ItemKNNRecommender(neighbours=5, num_threads=1)
        knn.fit(histories)
        knn.save(root / "models" / "item_knn")
        components["recommender"] = ("item_knn", root / "models" / "item_knn")
    else:
        components["recommender"] = ("popularity", root / "models" / "popularity")
    spec = BundleSpec(
        items=pl.DataFrame(
            {"raw_item_id": ITEMS, "title": ITEMS, "price": [10.0] * 6 + [20.0] * 6}
        ),
        users=pl.DataFrame({"raw_user_id": SMALL + LARGE}),
        histories=histories,
        components=components,
        project="experiments",
    )
    write_bundle(spec, root / "bundle")
    return root / "bundle"


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> tuple[Engine, Engine]:
    """The `pop` and `knn` versions of the shop."""
    root = tmp_path_factory.mktemp("experiment-bundles")
    pop = load_engine(_bundle(root / "pop", "pop"), version="pop")
    knn = load_engine(_bundle(root / "knn", "knn"), version="knn")
    return pop, knn


@pytest.fixture
def client(
    make_client: ClientFactory, engines: tuple[Engine, Engine], tmp_path: Path
) -> TestClient:
    """A server with `pop` as champion and `knn` loaded as challenger (no canary share)."""
    settings = ServeSettings(
        bundle_path=None,
        admin_enabled=True,
        admin_token=TOKEN,
        event_log_dir=tmp_path / "events",
        catalog_log_dir=tmp_path / "catalog",
        drift_interval_s=0,
        max_k=20,
        default_k=4,
    )
    test_client = make_client(settings, engine=engines[0])
    test_client.app.state.holder.swap(engines[1], "challenger")  # type: ignore[attr-defined]
    return test_client


def _start(client: TestClient, **fields: Any) -> dict[str, Any]:
    body = {
        "name": "pop-vs-knn",
        "variants": [
            {"name": "control", "version": "pop", "share": 0.5},
            {"name": "treatment", "version": "knn", "share": 0.5},
        ],
        "endpoints": ["recommend"],
        "min_lists": 20,
        "max_p99_ms": 10_000.0,
        **fields,
    }
    response = client.post("/v1/admin/experiments", json=body, headers=AUTH)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _simulate(client: TestClient, rounds: int, seed: int = 7) -> tuple[dict[str, int], int]:
    """Small-group users ask for lists and click; returns lists per version, clicks sent."""
    rng = random.Random(seed)
    lists: dict[str, int] = {}
    events: list[dict[str, Any]] = []
    for n in range(rounds):
        user = SMALL[n % len(SMALL)]
        served = client.post("/v1/recommend", json={"user_id": user}).json()
        lists[served["model_version"]] = lists.get(served["model_version"], 0) + 1
        for item in served["items"]:
            chance = P_LIKED if item["item_id"].startswith("x-") else P_OTHER
            if rng.random() < chance:
                events.append(
                    {
                        "user_id": user,
                        "item_id": item["item_id"],
                        "event_type": "click",
                        "request_id": served["request_id"],
                    }
                )
    for start in range(0, len(events), 100):
        posted = client.post("/v1/events", json={"events": events[start : start + 100]})
        assert posted.status_code == 202, posted.text
    return lists, len(events)


def test_ab_counts_add_up_and_the_better_version_wins(client: TestClient) -> None:
    started = _start(client, mde=0.5)
    assert started["status"] == "running"
    assert started["verdict"] == "waiting"
    lists, clicks = _simulate(client, rounds=160)
    listing = client.get("/v1/admin/experiments", headers=AUTH)
    assert listing.status_code == 200
    (experiment,) = listing.json()["experiments"]
    control, treatment = experiment["variants"]
    # every small-group user is enrolled (shares add up to 1): counts add up
    assert control["lists"] == lists.get("pop", 0)
    assert treatment["lists"] == lists.get("knn", 0)
    assert control["lists"] + treatment["lists"] == 160
    assert control["clicks"] + treatment["clicks"] == clicks
    assert treatment["rate"] > control["rate"]
    assert experiment["verdict"] == "significant-lift"
    assert experiment["p_value"] < 0.05
    assert experiment["lift"]["ci_low"] > 0
    assert [g["ok"] for g in experiment["guardrails"]] == [True] * 4
    # the same counts in /metrics, summed over replicas by Prometheus
    metrics = client.get("/metrics").text
    lists_line = (
        'shelfwise_serve_experiment_lists_total{experiment="pop-vs-knn",variant="treatment"}'
    )
    assert f"{lists_line} {float(treatment['lists'])}" in metrics
    stopped = client.delete("/v1/admin/experiments/pop-vs-knn", headers=AUTH).json()
    assert stopped["status"] == "stopped"
    # stopped: requests go back to the champion, the counts freeze
    assert client.post("/v1/recommend", json={"user_id": SMALL[0]}).json()["model_version"] == (
        "pop"
    )
    again = client.get("/v1/admin/experiments/pop-vs-knn", headers=AUTH).json()
    assert again["variants"][0]["lists"] == control["lists"]


def test_interleaving_credits_each_click_to_the_team_that_listed_it(client: TestClient) -> None:
    _start(client, name="interleave", mode="interleaving", mde=0.25)
    served = client.post("/v1/recommend", json={"user_id": SMALL[0], "k": 6}).json()
    shown = [item["item_id"] for item in served["items"]]
    # both rankers contributed: knn's x-items and pop's y-items in one list
    assert any(i.startswith("x-") for i in shown)
    assert any(i.startswith("y-") for i in shown)
    clicked = next(i for i in shown if i.startswith("x-"))
    event = {"user_id": SMALL[0], "item_id": clicked, "event_type": "click"}
    client.post("/v1/events", json={"events": [{**event, "request_id": served["request_id"]}]})
    first = client.get("/v1/admin/experiments/interleave", headers=AUTH).json()
    assert [v["clicks"] for v in first["variants"]] == [0, 1]  # x-items are knn's picks
    assert first["wins"] == {"control": 0, "treatment": 1}
    _simulate(client, rounds=60)
    result = client.get("/v1/admin/experiments/interleave", headers=AUTH).json()
    assert result["wins"]["treatment"] > result["wins"]["control"]
    assert result["verdict"] == "significant-lift"
    assert result["lift"]["estimate"] > 0


def test_refusals_name_the_problem(client: TestClient) -> None:
    unloaded = client.post(
        "/v1/admin/experiments",
        json={
            "name": "ghost",
            "variants": [{"name": "a", "version": "pop"}, {"name": "b", "version": "v9"}],
        },
        headers=AUTH,
    )
    assert unloaded.status_code == 409
    assert unloaded.json()["code"] == "experiment-conflict"
    assert "'v9'" in unloaded.json()["message"]
    _start(client)
    taken = client.post(
        "/v1/admin/experiments",
        json={
            "name": "other",
            "endpoints": ["recommend"],
            "variants": [{"name": "a", "version": "pop"}, {"name": "b", "version": "knn"}],
        },
        headers=AUTH,
    )
    assert taken.status_code == 409
    assert "already runs on /v1/recommend" in taken.json()["message"]
    missing = client.delete("/v1/admin/experiments/nope", headers=AUTH)
    assert missing.status_code == 404
    assert missing.json()["code"] == "experiment-not-found"
    shares = client.post(
        "/v1/admin/experiments",
        json={
            "name": "too-much",
            "variants": [
                {"name": "a", "version": "pop", "share": 0.7},
                {"name": "b", "version": "knn", "share": 0.7},
            ],
        },
        headers=AUTH,
    )
    assert shares.status_code == 409
    assert "shares add up to 1.4" in shares.json()["message"]
    assert client.get("/v1/admin/experiments").status_code == 401


def test_search_requests_are_split_too(client: TestClient) -> None:
    _start(client, name="search-split", endpoints=["search"])
    versions = {
        user: client.post("/v1/search", json={"query": "x-1", "user_id": user}).json()[
            "model_version"
        ]
        for user in SMALL
    }
    assert set(versions.values()) == {"pop", "knn"}
    (experiment,) = client.get("/v1/admin/experiments", headers=AUTH).json()["experiments"]
    assert experiment["endpoints"] == ["search"]
    # both variants answered (their latency guardrails have values)
    assert all(g["value"] is not None for g in experiment["guardrails"] if "p99" in g["name"])
    # recommendations are not part of it
    assert client.post("/v1/recommend", json={"user_id": SMALL[1]}).json()["model_version"] == (
        "pop"
    )


def test_rule_set_variants_steer_by_their_own_rules(client: TestClient) -> None:
    pin = {"id": "pin-x5", "action": "pin", "items": ["x-5"]}
    put = client.put("/v1/admin/rules", json={"rules": [pin]}, headers=AUTH)
    assert put.status_code == 200, put.text
    version = put.json()["version"]
    missing = client.post(
        "/v1/admin/experiments",
        json={
            "name": "rules",
            "variants": [
                {"name": "plain", "version": "pop", "rules": "none"},
                {"name": "pinned", "version": "pop", "rules": version + 5},
            ],
        },
        headers=AUTH,
    )
    assert missing.status_code == 409
    assert f"rules version {version + 5}" in missing.json()["message"]
    _start(
        client,
        name="rules",
        variants=[
            {"name": "plain", "version": "pop", "rules": "none", "share": 0.5},
            {"name": "pinned", "version": "pop", "rules": version, "share": 0.5},
        ],
    )
    firsts = {
        user: client.post("/v1/recommend", json={"user_id": user}).json()["items"][0]["item_id"]
        for user in LARGE
    }
    (experiment,) = client.get("/v1/admin/experiments", headers=AUTH).json()["experiments"]
    plain, pinned = experiment["variants"]
    assert (plain["rules"], pinned["rules"]) == ("none", version)
    # the pinned variant's users see x-5 first, the plain variant's never do
    assert sum(first == "x-5" for first in firsts.values()) == pinned["lists"]
    assert plain["lists"] > 0
    assert plain["lists"] + pinned["lists"] == len(LARGE)


def test_a_click_on_another_replica_credits_the_variant_once(
    make_client: ClientFactory, engines: tuple[Engine, Engine], tmp_path: Path, redis_url: str
) -> None:
    replicas = []
    for name in ("one", "two"):
        settings = ServeSettings(
            bundle_path=None,
            admin_enabled=True,
            admin_token=TOKEN,
            online_store_url=redis_url,
            event_log_dir=tmp_path / name / "events",
            catalog_log_dir=tmp_path / name / "catalog",
            drift_interval_s=0,
            default_k=4,
        )
        replica = make_client(settings, engine=engines[0])
        replica.app.state.holder.swap(engines[1], "challenger")  # type: ignore[attr-defined]
        _start(replica, mode="interleaving")
        replicas.append(replica)
    served = replicas[0].post("/v1/recommend", json={"user_id": SMALL[2]}).json()
    clicked = next(i["item_id"] for i in served["items"] if i["item_id"].startswith("x-"))
    click = {"user_id": SMALL[2], "item_id": clicked, "event_type": "click"}
    for replica in replicas:  # the same click reaches both replicas: counted once
        replica.post("/v1/events", json={"events": [{**click, "request_id": served["request_id"]}]})
    counts = [
        [
            v["clicks"]
            for v in r.get("/v1/admin/experiments/pop-vs-knn", headers=AUTH).json()["variants"]
        ]
        for r in replicas
    ]
    assert counts == [[0, 1], [0, 0]]  # the first replica to see it credits it, once


def test_revenue_per_list_counts_the_listed_price_of_purchases(client: TestClient) -> None:
    _start(client, name="revenue", primary_metric="revenue")
    served = client.post("/v1/recommend", json={"user_id": LARGE[0]}).json()
    first = served["items"][0]
    purchase = {"user_id": LARGE[0], "item_id": first["item_id"], "event_type": "purchase"}
    client.post("/v1/events", json={"events": [{**purchase, "request_id": served["request_id"]}]})
    (experiment,) = client.get("/v1/admin/experiments", headers=AUTH).json()["experiments"]
    (variant,) = [v for v in experiment["variants"] if v["version"] == served["model_version"]]
    assert (variant["conversions"], variant["revenue"]) == (1, first["price"])
    assert variant["rate"] == first["price"]  # one list, one purchase
