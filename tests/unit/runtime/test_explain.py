"""`shelfwise.runtime.explain`: reasons read off the models that scored the items.

The click model's reasons are LightGBM's own contributions for the very rows the
re-ranker scored: each row's contributions add up to the logit of its probability.
"""

from __future__ import annotations

import lightgbm
import numpy as np
import polars as pl
import pytest

from shelfwise.ranking import FEATURE_NAMES, ClickModel
from shelfwise.ranking.features import build_tables
from shelfwise.ranking.model import LightGBMScorer
from shelfwise.retrieval.base import UserHistories
from shelfwise.runtime import Engine
from shelfwise.runtime.explain import Explainer, click_contributions


@pytest.fixture(scope="module")
def lightgbm_click_model(engine: Engine) -> ClickModel:
    """A small LightGBM click model over the tiny shop's tables (seeded, random labels)."""
    histories = engine._recommending._histories.matrix
    coo = histories.tocoo()
    interactions = pl.DataFrame(
        {
            "user_index": coo.row.astype(np.int64),
            "item_index": coo.col.astype(np.int64),
            "timestamp": np.full(coo.nnz, 1_700_000_000, dtype=np.int64),
            "weight": coo.data.astype(np.float64),
        }
    )
    items = pl.read_parquet(engine.path / "items.parquet")
    item_table, user_table = build_tables(items, interactions, n_users=histories.shape[0])
    generator = np.random.default_rng(7)
    features = generator.normal(size=(200, len(FEATURE_NAMES))).astype(np.float32)
    labels = (features[:, 0] + features[:, 3] > 0).astype(np.int32)
    booster = lightgbm.train(
        {"objective": "binary", "verbose": -1, "num_threads": 1, "min_data_in_leaf": 5},
        lightgbm.Dataset(features, labels),
        num_boost_round=10,
    )
    zeros = np.zeros(len(FEATURE_NAMES), dtype=np.float32)
    return ClickModel(
        scorer=LightGBMScorer(booster),
        items=item_table,
        users=user_table,
        mean=zeros,
        std=zeros + 1,
        rerank=True,
        candidates=8,
        retriever="item_knn",
    )


def test_click_contributions_add_up_to_the_re_ranked_probability(
    engine: Engine, lightgbm_click_model: ClickModel
) -> None:
    recommender = engine._recommending._recommender
    assert recommender is not None
    history = engine._recommending._histories.row(0)  # u1
    scores = np.asarray(recommender.score(UserHistories(history)), dtype=np.float32)[0]
    listed = np.array([1, 3, 5, 7], dtype=np.int64)
    found = click_contributions(lightgbm_click_model, history, scores, listed, 0)
    assert found.shape == (4, len(FEATURE_NAMES) + 1)
    probabilities = lightgbm_click_model.predict(
        history, listed, scores.reshape(1, -1), user_indices=np.array([0], dtype=np.int64)
    )
    logits = np.log(probabilities / (1 - probabilities))
    assert found.sum(axis=1) == pytest.approx(logits, abs=1e-4)


def test_the_explainer_names_click_model_features(
    engine: Engine, lightgbm_click_model: ClickModel
) -> None:
    parts = engine._recommending
    explainer = Explainer(
        catalog=engine.catalog,
        histories=parts._histories,
        recommender=parts._recommender,
        reranker=lightgbm_click_model,
        search_index=None,
        similar=engine._similar,
    )
    items = engine.recommend("u1", 3).items
    explained = explainer.recommendation(items, raw_user_id="u1")
    kinds = {reason["kind"] for explanation in explained for reason in explanation.reasons}
    assert "click_model" in kinds
    for explanation in explained:
        for reason in explanation.reasons:
            if reason["kind"] == "click_model":
                assert {f["feature"] for f in reason["top_features"]} <= set(FEATURE_NAMES)
            if reason["kind"] == "similar_to_history":
                assert set(reason["items"]) <= {"sku-laptop", "sku-mouse", "sku-headphones"}


def test_an_item_the_bundle_does_not_hold_gets_no_model_reason(engine: Engine) -> None:
    stranger = engine.catalog.item(0, 1.0)._replace(raw_item_id="sku-new")
    (explanation,) = engine.explainer.recommendation([stranger], raw_user_id="u1")
    assert explanation.reasons == []
    assert explanation.text == ""
