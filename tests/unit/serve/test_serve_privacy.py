"""Privacy at the API edge: raw ids hashed before anything stores them, DELETE /v1/users."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
from starlette.exceptions import StarletteDeprecationWarning

from shelfwise.config import PrivacyConfig, ShelfwiseConfig
from shelfwise.errors import PrivacyKeyError
from shelfwise.package.bundle import BundleSpec, write_bundle
from shelfwise.privacy import PRIVACY_KEY, Pseudonymizer
from shelfwise.retrieval import ItemKNNRecommender, PopularityRecommender
from shelfwise.runtime import load_engine
from shelfwise.serve import ServeSettings, create_app
from shelfwise.serve.privacy import AccessLogFilter, redact_path

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

KEY = "k3y-for-tests-0123456789abcdefghijkl"
HASH = Pseudonymizer(KEY.encode())
TOKEN = "Zq8vN3kR1xW7pL5mT9cB2hY6dF4gJ0sA"
ITEMS = ["sku-a", "sku-b", "sku-c", "sku-d"]
# alice's neighbour (via bob) is b; the most popular items are c and d
HISTORIES = {"alice": [0], "bob": [0, 1], "carl": [2, 3], "dan": [2, 3]}


def _bundle(root: Path) -> Path:
    """A bundle trained on pseudonymised users, as a run with privacy on writes it."""
    users = list(HISTORIES)
    dense = np.zeros((len(users), len(ITEMS)), dtype=np.float32)
    for row, items in enumerate(HISTORIES.values()):
        dense[row, items] = 1.0
    histories = sp.csr_matrix(dense)
    popularity, knn = PopularityRecommender(), ItemKNNRecommender(neighbours=3, num_threads=1)
    popularity.fit(histories)
    popularity.save(root / "popularity")
    knn.fit(histories)
    knn.save(root / "knn")
    spec = BundleSpec(
        items=pl.DataFrame({"raw_item_id": ITEMS, "title": ITEMS}),
        users=pl.DataFrame({"raw_user_id": [HASH(user) for user in users]}),
        histories=histories,
        components={
            "recommender": ("item_knn", root / "knn"),
            "popular": ("popularity", root / "popularity"),
        },
        metrics={},
        data_fingerprint="fp",
        lineage={"run_id": "privacy-test"},
        project="private",
    )
    write_bundle(spec, root / "bundle")
    return root / "bundle"


@pytest.fixture
def private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv(PRIVACY_KEY, KEY)
    home = tmp_path / "home"
    settings = ServeSettings(
        bundle_path=None,
        event_log_dir=home / "events",
        admin_enabled=True,
        admin_token=TOKEN,  # type: ignore[arg-type]
        omp_threads=0,
        freeze_heap=False,
    )
    config = ShelfwiseConfig(
        home=home, privacy=PrivacyConfig(pseudonymize_users=True, log_queries="hashed")
    )
    engine = load_engine(_bundle(tmp_path / "model"))
    return TestClient(create_app(settings, engine=engine, config=config))


def test_a_raw_id_finds_the_list_of_its_pseudonym_and_nothing_stores_it(
    private: TestClient, tmp_path: Path
) -> None:
    with private as client:
        known = client.post("/v1/recommend", json={"user_id": "alice", "k": 1}).json()
        stranger = client.post("/v1/recommend", json={"user_id": "zed", "k": 1}).json()
        assert known["fallback"] is None
        assert stranger["fallback"] == "popular"
        assert [item["item_id"] for item in known["items"]] == ["sku-b"]  # her neighbour
        event = {"user_id": "alice", "item_id": "sku-c", "event_type": "search", "query": "red hat"}
        assert client.post("/v1/events", json={"events": [event]}).status_code == 202
        after = client.post("/v1/recommend", json={"user_id": "alice", "k": 4}).json()
        assert after["model_version"]
        # the online store holds alice under her pseudonym: raw "alice" was never a key
        store = client.app.state.store  # type: ignore[attr-defined]
        assert store.state(HASH("alice")).recent
        assert not store.state("alice").recent
    written = b"".join(p.read_bytes() for p in (tmp_path / "home").rglob("*") if p.is_file())
    assert HASH("alice").encode() in written
    assert b"alice" not in written.replace(HASH("alice").encode(), b"")
    assert b"red hat" not in written
    assert HASH.text_digest("red hat").encode() in written


def test_forgetting_a_user_clears_the_store_lists_and_audits(
    private: TestClient, tmp_path: Path
) -> None:
    with private as client:
        event = {"user_id": "bob", "item_id": "sku-a", "event_type": "view"}
        client.post("/v1/events", json={"events": [event, event]})
        assert client.delete("/v1/users/bob").status_code == 401
        auth = {"Authorization": f"Bearer {TOKEN}"}
        answer = client.delete("/v1/users/bob?by=ops%40shop", headers=auth)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["pseudonym"] == HASH("bob")
        assert body["online_events_removed"] == 2
        assert body["newly_listed"] is True
        again = client.delete("/v1/users/bob", headers=auth).json()
        assert again["newly_listed"] is False
        assert again["online_events_removed"] == 0
        assert not client.app.state.store.state(HASH("bob")).recent  # type: ignore[attr-defined]
    privacy = tmp_path / "home" / "privacy"
    assert HASH("bob") in (privacy / "forget.jsonl").read_text()
    audit = (privacy / "audit.jsonl").read_text()
    assert '"actor": "admin-api:ops@shop"' in audit
    assert audit.count('"action": "forget-user"') == 2
    assert "bob" not in audit.replace(HASH("bob"), "")


def test_a_server_that_must_pseudonymise_refuses_to_start_without_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PRIVACY_KEY, raising=False)
    config = ShelfwiseConfig(home=tmp_path, privacy=PrivacyConfig(pseudonymize_users=True))
    with pytest.raises(PrivacyKeyError, match="SHELFWISE_PRIVACY_KEY is not set"):
        create_app(ServeSettings(bundle_path=None, omp_threads=0, freeze_heap=False), config=config)


def test_access_log_lines_lose_raw_ids() -> None:
    assert redact_path("/v1/users/alice%40shop.com") == "/v1/users/<redacted>"
    assert redact_path("/x?a=1&user_id=alice&k=3") == "/x?a=1&user_id=<redacted>&k=3"
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
        ("1.2.3.4:5", "DELETE", "/v1/users/alice", "1.1", 200), None,
    )  # fmt: skip
    assert AccessLogFilter().filter(record)
    assert "alice" not in record.getMessage()
    assert "<redacted>" in record.getMessage()


def test_forgetting_without_a_key_is_not_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PRIVACY_KEY, raising=False)
    settings = ServeSettings(
        bundle_path=None, admin_enabled=True, admin_token=TOKEN, omp_threads=0, freeze_heap=False
    )  # type: ignore[arg-type]
    app = create_app(settings, config=ShelfwiseConfig(home=tmp_path))
    with TestClient(app) as client:
        answer = client.delete("/v1/users/bob", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 404
    assert answer.json()["code"] == "not-configured"
    assert not (tmp_path / "privacy").exists()


def test_the_factory_exits_with_one_line_without_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(PRIVACY_KEY, raising=False)
    monkeypatch.setenv("SHELFWISE_PRIVACY__PSEUDONYMIZE_USERS", "true")
    monkeypatch.setenv("SHELFWISE_HOME", str(tmp_path))
    with pytest.raises(SystemExit) as exited:
        create_app()  # what `uvicorn --factory` calls
    assert exited.value.code == 3
    assert capsys.readouterr().err.startswith(
        "error[privacy-key]: SHELFWISE_PRIVACY_KEY is not set"
    )


def test_ids_the_route_would_refuse_are_left_for_it_to_refuse(private: TestClient) -> None:
    with private as client:
        too_long = client.post("/v1/recommend", json={"user_id": "x" * 300, "k": 1})
        broken = client.post(
            "/v1/recommend",
            content=b'{"user_id": "alice", ',
            headers={"content-type": "application/json"},
        )
    assert too_long.status_code == 422
    assert broken.status_code == 422
