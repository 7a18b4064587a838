"""The served click model reads the repurchase features as training built them (issue 15).

`/v1/predict` (`PredictJob`) over a click model trained with repeats allowed gives,
for a user's candidates, the probabilities of the very rows the ranking stage trained
on (`labelled_pairs`): days since the user bought each item and its repurchase-cycle
ratio included.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp

from shelfwise.ranking import FEATURE_NAMES, ClickModel
from shelfwise.ranking._candidates import labelled_pairs, retrieve
from shelfwise.ranking.features import build_tables
from shelfwise.ranking.model import MLPScorer
from shelfwise.retrieval import ItemKNNRecommender
from shelfwise.runtime.catalog import Catalog
from shelfwise.runtime.histories import Histories
from shelfwise.runtime.predicting import PredictJob

DAY = 86_400
# (user, item, day): user 0 buys items 0 and 1 on cycles, user 1 buys item 0 twice
PURCHASES = [(0, 0, 0), (0, 0, 10), (0, 0, 30), (0, 1, 2), (0, 1, 8), (1, 0, 5), (1, 0, 9)]
PURCHASES += [(1, 2, 20), (0, 3, 40)]


def test_predict_serves_the_training_rows_with_repurchase_features() -> None:
    users = np.array([p[0] for p in PURCHASES])
    items = np.array([p[1] for p in PURCHASES])
    interactions = pl.DataFrame(
        {
            "user_index": users,
            "item_index": items,
            "event_type": ["purchase"] * len(PURCHASES),
            "timestamp": [p[2] * DAY for p in PURCHASES],
            "weight": [1.0] * len(PURCHASES),
        }
    )
    ids = [f"sku-{i}" for i in range(4)]
    catalog_frame = pl.DataFrame(
        {
            "raw_item_id": ids,
            "title": ids,
            "category": ["dairy", "dairy", "bakery", None],
            "brand": [None] * 4,
            "price": [1.0, 2.0, 3.0, None],
            "in_stock": [True] * 4,
        }
    )
    item_table, user_table = build_tables(catalog_frame, interactions, n_users=2)
    history = sp.csr_matrix((np.ones(users.size, np.float32), (users, items)), shape=(2, 4))
    history.sum_duplicates()
    retriever = ItemKNNRecommender(neighbours=3, num_threads=1)
    retriever.fit(history)
    candidates = retrieve(
        retriever, history, np.array([0]), 4, sequences=None, label="t", exclude_seen=False
    )
    trained = labelled_pairs(candidates, history, item_table, user_table)
    assert np.isfinite(trained.features[:, FEATURE_NAMES.index("repurchase_cycle_ratio")]).any()

    rng = np.random.default_rng(0)
    width = len(FEATURE_NAMES)
    weights = ((rng.normal(size=(3, width)).astype(np.float32), np.zeros(3, np.float32)),)
    weights += ((rng.normal(size=(1, 3)).astype(np.float32), np.zeros(1, np.float32)),)
    mean, std = np.zeros(width, np.float32), np.ones(width, np.float32)
    model = ClickModel(
        MLPScorer(weights=weights, mean=mean, std=std),
        item_table,
        user_table,
        mean,
        std,
        candidates=4,
        retriever="item_knn",
        repeats=True,
    )
    job = PredictJob(
        catalog=Catalog(catalog_frame),
        histories=Histories({"shopper-0": 0, "shopper-1": 1}, history, None),
        ranker=model,
        scored_by=retriever,
        version="test",
    )
    listed = [ids[int(i)] for i in candidates.items[0] if i >= 0]
    served = job.predict("shopper-0", listed)
    expected = model.probabilities(trained.features)
    np.testing.assert_allclose([p for _, p in served.predictions], expected, rtol=1e-6)
