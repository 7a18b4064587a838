"""`POST /v1/predict` and re-ranking, over the tiny bundle plus a hand-set click model.

The click model is an MLP with hand-set weights, so its probabilities are known:

    p = sigmoid(4 · category_share + max((log1p(price) - 5) / 2, 0) - 3)

(category_share: the share of the user's history weight in the item's category).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pytest
from tests.unit.conftest import hand_set_click_model

from shelfwise._internal.artifacts import read_csr
from shelfwise.package.bundle import BundleSpec, write_bundle
from shelfwise.ranking import FEATURE_NAMES, ClickModel
from shelfwise.retrieval import load_recommender
from shelfwise.runtime import load_engine
from shelfwise.serve import ServeSettings
from shelfwise.serve.schemas import MAX_PREDICT_ITEMS

if TYPE_CHECKING:
    from tests.unit.conftest import ShopFacts
    from tests.unit.serve.conftest import ClientFactory

SHARE = FEATURE_NAMES.index("category_share")
PRICE = FEATURE_NAMES.index("item_log_price")
CATEGORY = {
    "sku-laptop": "electronics",
    "sku-phone": "electronics",
    "sku-mouse": "electronics",
    "sku-tea": "grocery",
    "sku-coffee": "grocery",
    "sku-book": "books",
    "sku-headphones": "electronics",
    "sku-lamp": "home",
}
PRICES = {
    "sku-laptop": 5999.0,
    "sku-phone": 6999.0,
    "sku-mouse": 99.0,
    "sku-tea": 128.0,
    "sku-coffee": 89.0,
    "sku-book": 59.0,
    "sku-headphones": 1999.0,
    "sku-lamp": 199.0,
}


def expected_probability(history: dict[str, float], item: str) -> float:
    total = sum(history.values())
    same = sum(w for raw, w in history.items() if CATEGORY[raw] == CATEGORY[item])
    share = same / total if total else 0.0
    logit = 4 * share + max((math.log1p(PRICES[item]) - 5) / 2, 0.0) - 3
    return 1 / (1 + math.exp(-logit))


def hand_set_model(bundle: Path, *, rerank: bool) -> ClickModel:
    """The click model of the module docstring, with tables from the bundle's histories."""
    first = np.zeros((2, len(FEATURE_NAMES)), dtype=np.float32)
    first[0, SHARE], first[1, PRICE] = 4.0, 1.0
    return hand_set_click_model(
        pl.read_parquet(bundle / "items.parquet"),
        read_csr(bundle / "histories.npz"),
        first,
        rerank=rerank,
        candidates=10,
        retriever="item_knn",
    )


def bundle_with_ranker(root: Path, base: Path, *, rerank: bool) -> Path:
    """The base bundle's content plus the click model under role "ranker"."""
    model_dir = root / "click_model"
    hand_set_model(base, rerank=rerank).save(model_dir)
    models = base / "models"
    spec = BundleSpec(
        items=pl.read_parquet(base / "items.parquet"),
        users=pl.read_parquet(base / "users.parquet"),
        histories=read_csr(base / "histories.npz"),
        components={
            "recommender": ("item_knn", models / "item_knn"),
            "popular": ("popularity", models / "popularity"),
            "ranker": ("click_model", model_dir),
        },
        project="tiny",
    )
    write_bundle(spec, root / "bundle")
    return root / "bundle"


@pytest.fixture(scope="module")
def base_bundle(facts: ShopFacts, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return facts.build_bundle(tmp_path_factory.mktemp("predict-base"), with_search=False)


@pytest.fixture(scope="module")
def ranked_bundle(base_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bundle_with_ranker(tmp_path_factory.mktemp("predict-ranked"), base_bundle, rerank=True)


@pytest.fixture
def predict_client(ranked_bundle: Path, make_client: ClientFactory, settings: ServeSettings) -> Any:
    return make_client(settings, engine=load_engine(ranked_bundle))


def assert_error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "message"}
    assert body["code"] == code
    return str(body["message"])


def test_predict_known_user(predict_client: Any, facts: ShopFacts) -> None:
    asked = ["sku-tea", "sku-phone", "sku-book", "sku-phone"]
    response = predict_client.post("/v1/predict", json={"user_id": "u1", "item_ids": asked})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [p["item_id"] for p in body["predictions"]] == asked
    for prediction in body["predictions"]:
        expected = expected_probability(facts.history["u1"], prediction["item_id"])
        assert prediction["probability"] == pytest.approx(expected, rel=1e-5)
    assert body["fallback"] is None
    assert body["model_version"]
    assert body["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize("user", ["stranger", "u-empty", None])
def test_predict_without_history_says_so(predict_client: Any, user: str | None) -> None:
    body = predict_client.post(
        "/v1/predict", json={"user_id": user, "item_ids": ["sku-tea", "sku-phone"]}
    ).json()
    assert body["fallback"] == "no-history"
    for prediction in body["predictions"]:
        expected = expected_probability({}, prediction["item_id"])
        assert prediction["probability"] == pytest.approx(expected, rel=1e-5)
    metrics = predict_client.get("/metrics").text
    assert 'endpoint="predict",model_version=' in metrics
    assert 'reason="no-history"' in metrics


def test_predict_unknown_item_names_the_first(predict_client: Any) -> None:
    response = predict_client.post(
        "/v1/predict", json={"user_id": "u1", "item_ids": ["sku-tea", "sku-nope", "sku-gone"]}
    )
    message = assert_error(response, 404, "unknown-item")
    assert "sku-nope" in message
    assert "sku-gone" not in message


def test_predict_without_click_model_is_404(client: Any) -> None:
    response = client.post("/v1/predict", json={"user_id": "u1", "item_ids": ["sku-tea"]})
    message = assert_error(response, 404, "model-not-available")
    assert "click model" in message


@pytest.mark.parametrize(
    "body",
    [
        {"user_id": "u1", "item_ids": []},
        {"user_id": "u1"},
        {"user_id": "u1", "item_ids": ["sku-tea"] * (MAX_PREDICT_ITEMS + 1)},
        {"user_id": "u1", "item_ids": [""]},
        {"user_id": "u1", "item_ids": ["sku-tea"], "k": 3},
        {"user_id": "u1", "item_ids": "sku-tea"},
    ],
)
def test_predict_validation(predict_client: Any, body: dict[str, Any]) -> None:
    assert_error(predict_client.post("/v1/predict", json=body), 422, "invalid-request")


def test_predict_accepts_the_maximum(predict_client: Any) -> None:
    body = {"user_id": "u2", "item_ids": ["sku-lamp"] * MAX_PREDICT_ITEMS}
    response = predict_client.post("/v1/predict", json=body)
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == MAX_PREDICT_ITEMS


def test_recommend_reranks_by_probability(ranked_bundle: Path, base_bundle: Path) -> None:
    ranked = load_engine(ranked_bundle)
    user = ranked.user_index["u1"]
    history = read_csr(base_bundle / "histories.npz")[user]
    scores = load_recommender("item_knn", base_bundle / "models" / "item_knn").score(history)[0]
    raw_ids = pl.read_parquet(base_bundle / "items.parquet")["raw_item_id"].to_list()
    # seen items allowed, so u1 has several candidates: every item scored above 0
    candidates = [raw_ids[i] for i in np.flatnonzero(scores > 0)]
    assert len(candidates) >= 4
    row = history.toarray()[0]
    history_weights = {raw: float(w) for raw, w in zip(raw_ids, row, strict=True) if w}
    expected = sorted(candidates, key=lambda raw: -expected_probability(history_weights, raw))
    after = ranked.recommend("u1", 4, exclude_seen=False)
    assert [item.raw_item_id for item in after.items] == expected[:4]
    before = load_engine(base_bundle).recommend("u1", 4, exclude_seen=False)
    assert [item.raw_item_id for item in before.items] != expected[:4]  # the order changed
    for item in after.items:
        assert 0.0 < item.score < 1.0
    assert after.fallback is None


def test_recommend_keeps_the_retriever_order_when_not_kept(
    base_bundle: Path, tmp_path: Path
) -> None:
    engine = load_engine(bundle_with_ranker(tmp_path, base_bundle, rerank=False))
    plain = load_engine(base_bundle)
    for user in ("u1", "u3", "stranger"):
        assert engine.recommend(user, 5) == plain.recommend(user, 5)
    assert engine.has_ranker
    assert engine.predict("u3", ["sku-tea"]).predictions[0][1] > 0.5


_PROBE = """
import json, sys
import shelfwise.serve
print(json.dumps(sorted(sys.modules)))
"""


def test_serving_loads_no_click_model_training_code() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=120
    )
    loaded = set(json.loads(completed.stdout.strip().splitlines()[-1]))
    assert "shelfwise.ranking.model" in loaded
    banned = {
        "shelfwise.ranking.stage",
        "shelfwise.ranking._train",
        "shelfwise.evaluate.classifier",
        "shelfwise.ranking._candidates",
        "torch",
        "lightgbm",
        "matplotlib",
    }
    assert not loaded & banned
