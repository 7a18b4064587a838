"""The click model's repurchase-cycle features (issue 15): exact values on a hand-made
history, the same rows in training and serving, and models saved before the features.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from shelfwise.ranking import FEATURE_NAMES, ClickModel
from shelfwise.ranking._candidates import labelled_pairs, retrieve
from shelfwise.ranking.features import REPURCHASE_FEATURES, build_tables, pair_features
from shelfwise.ranking.model import LightGBMScorer, MLPScorer
from shelfwise.retrieval import ItemKNNRecommender
from shelfwise.retrieval.base import UserHistories

DAY = 86_400
BOUGHT = FEATURE_NAMES.index("days_since_user_bought_item")
RATIO = FEATURE_NAMES.index("repurchase_cycle_ratio")
OLD_FEATURES = FEATURE_NAMES[: -len(REPURCHASE_FEATURES)]  # the list before issue 15

# (user, item, event type, day); the newest event (day 40, a view) is the reference time
EVENTS = [
    (0, 0, "purchase", 0),
    (0, 0, "purchase", 10),
    (0, 0, "purchase", 30),  # user 0, item 0: gaps 10, 20 -> median 15
    (1, 0, "purchase", 5),
    (1, 0, "purchase", 9),
    (1, 0, "purchase", 9),  # the same second again: one purchase, not a 0-day gap
    (2, 0, "purchase", 20),  # bought once: no gap of its own
    (0, 1, "purchase", 2),
    (0, 1, "purchase", 8),
    (0, 1, "purchase", 11),  # user 0, item 1: gaps 6, 3 -> median 4.5
    (1, 1, "purchase", 1),
    (1, 1, "view", 38),  # a view is not a purchase
    (0, 3, "purchase", 12),  # item 3: bought once, cycle unknown
    (2, 2, "view", 40),  # item 2: never bought
]
# item 0: median of the users' medians (15, 4) = 9.5 days; item 1: 4.5 days
TYPICAL_GAP = [9.5, 4.5, np.nan, np.nan]
# days from each (user, item)'s newest purchase to day 40
DAYS_SINCE = {(0, 0): 10, (1, 0): 31, (2, 0): 20, (0, 1): 29, (1, 1): 39, (0, 3): 28}


def _interactions() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "user_index": [e[0] for e in EVENTS],
            "item_index": [e[1] for e in EVENTS],
            "event_type": [e[2] for e in EVENTS],
            "timestamp": [e[3] * DAY for e in EVENTS],
            "weight": [1.0] * len(EVENTS),
        }
    )


def _history(interactions: pl.DataFrame) -> sp.csr_matrix:
    return sp.csr_matrix(
        (
            interactions["weight"].to_numpy().astype(np.float32),
            (interactions["user_index"].to_numpy(), interactions["item_index"].to_numpy()),
        ),
        shape=(3, 4),
    )


def _tables() -> Any:
    items = pl.DataFrame({"raw_item_id": [f"item-{i}" for i in range(4)]})
    return build_tables(items, _interactions(), n_users=3)


def test_repurchase_features_match_the_hand_computed_values() -> None:
    items, users = _tables()
    np.testing.assert_allclose(items.typical_gap, TYPICAL_GAP)
    every_user, every_item = np.divmod(np.arange(12), 4)
    rows = pair_features(
        items,
        _history(_interactions()),
        every_user,
        every_item,
        days_since_bought=users.days_since_bought(every_user, every_item),
    )
    for user, item in zip(every_user, every_item, strict=True):
        row = rows[user * 4 + item]
        days = DAYS_SINCE.get((int(user), int(item)), np.nan)
        np.testing.assert_allclose(row[BOUGHT], days, err_msg=f"user {user}, item {item}")
        np.testing.assert_allclose(
            row[RATIO], days / TYPICAL_GAP[item], rtol=1e-6, err_msg=f"user {user}, item {item}"
        )
    assert np.isnan(users.days_since_bought(np.array([-1]), np.array([0])))[0]  # unknown user


def _model(items: Any, users: Any, *, repeats: bool) -> ClickModel:
    rng = np.random.default_rng(0)
    width = len(FEATURE_NAMES)
    weights = ((rng.normal(size=(4, width)).astype(np.float32), np.zeros(4, np.float32)),)
    weights += ((rng.normal(size=(1, 4)).astype(np.float32), np.zeros(1, np.float32)),)
    mean, std = np.zeros(width, np.float32), np.ones(width, np.float32)
    scorer = MLPScorer(weights=weights, mean=mean, std=std)
    return ClickModel(scorer, items, users, mean, std, candidates=4, repeats=repeats)


@pytest.mark.parametrize("repeats", [True, False], ids=["repeats-allowed", "seen-excluded"])
def test_training_and_serving_build_the_same_feature_rows(repeats: bool, tmp_path: Path) -> None:
    items, users = _tables()
    history = _history(_interactions())
    retriever = ItemKNNRecommender(neighbours=3, num_threads=1)
    retriever.fit(history)
    every_user = np.arange(3, dtype=np.int64)
    candidates = retrieve(
        retriever, history, every_user, 4, sequences=None, label="t", exclude_seen=not repeats
    )
    trained = labelled_pairs(candidates, history, items, users)  # the training rows
    if repeats:  # the repeat columns are known where the user bought the candidate
        assert np.isfinite(trained.features[:, BOUGHT]).sum() == len(DAYS_SINCE)
    model = _model(items, users, repeats=repeats)
    model.save(tmp_path / "model")
    scores = retriever.score(UserHistories(history, None))
    for served in (model, ClickModel.load(tmp_path / "model")):  # as the engine calls it
        rows = served.grid_features(history, candidates.items, scores, every_user)
        np.testing.assert_array_equal(rows, trained.features)
        probabilities = served.predict(history, candidates.items, scores, user_indices=every_user)
        expected = served.probabilities(trained.features)
        np.testing.assert_allclose(probabilities[candidates.items >= 0], expected, rtol=1e-6)


def test_a_model_saved_before_the_repurchase_features_still_loads(tmp_path: Path) -> None:
    import lightgbm

    items, users = _tables()
    history = _history(_interactions())
    rng = np.random.default_rng(1)
    train = rng.normal(size=(200, len(OLD_FEATURES)))
    params = {"objective": "binary", "verbose": -1, "seed": 1, "num_threads": 1}
    booster = lightgbm.train(params, lightgbm.Dataset(train, label=train[:, 0] > 0), 5)
    width = len(OLD_FEATURES)
    old = ClickModel(
        LightGBMScorer(lightgbm.Booster(model_str=booster.model_to_string())),
        items,
        users,
        np.zeros(width, np.float32),
        np.ones(width, np.float32),
        feature_names=OLD_FEATURES,
    )
    folder = tmp_path / "model"
    old.save(folder)
    # the folder as the older shelfwise wrote it: no typical gaps, purchases or flag
    for name in ("item_typical_gap.npy", "user_purchase_keys.npy", "user_purchase_times.npy"):
        (folder / name).unlink()
    spec = json.loads((folder / "features.json").read_text())
    del spec["repeats"]
    (folder / "features.json").write_text(json.dumps(spec))

    loaded = ClickModel.load(folder)
    assert loaded.feature_names == OLD_FEATURES
    assert not loaded.repeats
    assert np.isnan(loaded.items.typical_gap).all()
    assert loaded.users.purchases.keys.size == 0
    pairs = np.array([[0, 1, 2, 3]])
    scores = np.linspace(1.0, 0.0, 4, dtype=np.float32).reshape(1, -1)
    found = loaded.predict(history[[0]], pairs, scores, user_indices=np.array([0]))
    rows = loaded.grid_features(history[[0]], pairs, scores, np.array([0]))
    assert rows.shape == (4, len(OLD_FEATURES))  # its own columns, none of the new ones
    np.testing.assert_allclose(found[0], booster.predict(rows), rtol=1e-6)


def test_the_stage_trains_on_repeat_candidates_under_the_allow_policy(
    ranking_inputs: Any, tmp_path: Path
) -> None:
    from shelfwise.ranking.stage import run

    if not (ranking_inputs.features / "valid_targets_all.npz").is_file():
        pytest.skip("this features folder has no repeat-inclusive targets")
    evaluate = tmp_path / "evaluate"
    shutil.copytree(ranking_inputs.evaluate, evaluate)
    metrics = json.loads((evaluate / "metrics.json").read_text())
    metrics["selected"]["repeat_policy"] = "allow"
    (evaluate / "metrics.json").write_text(json.dumps(metrics))
    config = ranking_inputs.config.model_copy(
        update={"ranking": ranking_inputs.config.ranking.model_copy(update={"model": "lightgbm"})}
    )
    context = ranking_inputs.context(tmp_path / "out", config)
    context.inputs["evaluate"] = evaluate
    run(context)
    report = json.loads((tmp_path / "out" / "ranking.json").read_text())
    assert report["status"] == "trained", report
    assert report["repeat_policy"] == "allow"
    assert report["data"]["labels"]["test"] == "test_targets_all"
    model = ClickModel.load(tmp_path / "out" / "model")
    assert model.repeats
    assert model.feature_names == FEATURE_NAMES
