"""`POST /v1/recommend` for a visit with a bundle that holds a session model (role
"session"): the session model answers inline histories and session ids, the
recommender everything else. The tiny shop of `tests/unit/conftest.py`, plus training
sessions in which the lamp (in no user's history, so item-kNN never scores it)
always follows tea or coffee.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pytest

from shelfwise._internal.artifacts import read_csr
from shelfwise._internal.sequences import Sequences
from shelfwise.evaluate.sessions import as_histories
from shelfwise.package.bundle import (
    HISTORIES_FILE,
    ITEMS_FILE,
    USERS_FILE,
    BundleSpec,
    read_bundle_manifest,
    write_bundle,
)
from shelfwise.retrieval import ItemKNNRecommender, PopularityRecommender, top_k
from shelfwise.retrieval.session_knn import STANRecommender
from shelfwise.runtime import Engine, load_engine
from shelfwise.serve import ServeSettings

if TYPE_CHECKING:
    from tests.unit.serve.conftest import ClientFactory

# item_index: 0 laptop, 2 mouse, 3 tea, 4 coffee, 5 book, 6 headphones, 7 lamp
SESSIONS = [[3, 4, 7], [3, 7], [4, 7], [3, 4, 7], [0, 2, 6], [0, 6]]


@pytest.fixture(scope="module")
def session_engine(tmp_path_factory: pytest.TempPathFactory, bundle_path: Path) -> Engine:
    """The tiny bundle's shop with a STAN model over SESSIONS as its session model."""
    root = tmp_path_factory.mktemp("session-bundle")
    items = pl.read_parquet(bundle_path / ITEMS_FILE)
    users = pl.read_parquet(bundle_path / USERS_FILE)
    histories = read_csr(bundle_path / HISTORIES_FILE)
    for name, model in (
        ("popularity", PopularityRecommender()),
        ("item_knn", ItemKNNRecommender(neighbours=10, num_threads=1)),
    ):
        model.fit(histories)
        model.save(root / name)
    stan = STANRecommender(followers=1.0)
    stan.fit_sequences(Sequences.from_rows(SESSIONS), items.height)
    stan.save(root / "stan")
    spec = BundleSpec(
        items=items,
        users=users,
        histories=histories,
        components={
            "recommender": ("item_knn", root / "item_knn"),
            "popular": ("popularity", root / "popularity"),
            "session": ("stan", root / "stan"),
        },
        project="tiny-sessions",
    )
    write_bundle(spec, root / "bundle")
    assert read_bundle_manifest(root / "bundle").components["session"] == "stan"
    return load_engine(root / "bundle")


def settings_in(folder: Path, **values: object) -> ServeSettings:
    """Server settings with their state (event log, catalog log) in `folder`."""
    return ServeSettings(
        bundle_path=None,
        max_k=20,
        event_log_dir=folder / "events",
        catalog_log_dir=folder / "catalog",
        **values,  # type: ignore[arg-type]
    )


def ids(response) -> list[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text
    return [item["item_id"] for item in response.json()["items"]]


def test_the_session_model_answers_an_inline_history(
    session_engine: Engine, make_client: ClientFactory, tmp_path: Path
) -> None:
    assert session_engine.has_session_model
    client = make_client(settings_in(tmp_path), engine=session_engine)
    response = client.post("/v1/recommend", json={"history": ["sku-tea", "sku-coffee"], "k": 3})
    body = response.json()
    assert response.status_code == 200, body
    assert body["personalisation"] == "session"
    # the session model's own ranking of the visit, repeats allowed (serve default)
    model = STANRecommender.load(session_engine.path / "models" / "stan")
    visit = np.array([3, 4])
    scores = model.score(as_histories(Sequences.from_rows([visit]), 8))[0]
    expected, _ = top_k(scores, 3, exclude=~(scores > 0))
    assert expected.tolist() == [4, 7, 3]  # coffee, lamp, tea
    # the server hides the coffee (out of stock); the phone fills the list (popular)
    assert ids(response) == ["sku-lamp", "sku-tea", "sku-phone"]
    shown = {"history": ["sku-tea", "sku-coffee"], "k": 3}
    shown["filters"] = {"include_out_of_stock": True}  # the model's list as it is
    assert ids(client.post("/v1/recommend", json=shown)) == ["sku-coffee", "sku-lamp", "sku-tea"]
    explained = client.post("/v1/recommend", json={**shown, "explain": True})
    assert ids(explained) == ["sku-coffee", "sku-lamp", "sku-tea"]  # reasons do not reorder
    assert "sku-lamp" in ids(response)  # item-kNN (the recommender) never lists the lamp
    plain = session_engine.recommend_from_history(["sku-tea", "sku-coffee"], 3)
    assert "sku-lamp" not in [item.raw_item_id for item in plain.items]


def test_a_session_id_uses_the_session_model_and_the_repeat_rule(
    session_engine: Engine, make_client: ClientFactory, tmp_path: Path
) -> None:
    settings = settings_in(tmp_path, session_repeats="exclude")
    client = make_client(settings, engine=session_engine)
    events = [
        {"user_id": "v7", "item_id": item, "event_type": "view", "session_id": "S7"}
        for item in ("sku-coffee", "sku-tea")
    ]
    assert client.post("/v1/events", json={"events": events}).status_code == 202
    listed = ids(client.post("/v1/recommend", json={"session_id": "S7", "k": 2}))
    assert listed[0] == "sku-lamp"  # what followed tea and coffee in the sessions
    assert not {"sku-tea", "sku-coffee"} & set(listed)  # repeats excluded by the setting


def test_a_visit_no_session_resembles_gets_the_recommender(
    session_engine: Engine, make_client: ClientFactory, tmp_path: Path
) -> None:
    # the phone is in no training session: with the visit's own items hidden the session
    # model has nothing to say, so the recommender (item-kNN) answers, not popularity
    settings = settings_in(tmp_path, session_repeats="exclude")
    client = make_client(settings, engine=session_engine)
    body = client.post("/v1/recommend", json={"history": ["sku-phone"], "k": 2}).json()
    assert body["fallback"] is None
    assert body["personalisation"] == "session"
    knn = session_engine.recommend_from_history(["sku-phone"], 2, exclude_seen=True)
    assert [item["item_id"] for item in body["items"]] == [item.raw_item_id for item in knn.items]


def test_bundles_without_a_session_model_keep_the_recommender(engine: Engine) -> None:
    assert not engine.has_session_model
    asked = engine.recommend_from_history(["sku-tea"], 3, session=True)
    assert asked.items == engine.recommend_from_history(["sku-tea"], 3).items


def test_the_session_role_is_stored_as_plain_files(session_engine: Engine) -> None:
    manifest = session_engine.manifest
    assert manifest.components["session"] == "stan"
    assert any(name.startswith("models/stan/") for name in manifest.files)
