"""Pair features: values worked out by hand, ranks against `top_k_unseen`."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from shelfwise.ranking.features import (
    FEATURE_NAMES,
    build_tables,
    candidate_ranks,
    pair_features,
    unseen_ranks,
)
from shelfwise.retrieval import top_k_unseen

DAY = 86_400
# item: category, brand, price
ITEMS = pl.DataFrame(
    {
        "item_index": [0, 1, 2, 3, 4],
        "raw_item_id": ["a", "b", "c", "d", "e"],
        "category": ["shoes", "shoes", "tea", "tea", None],
        "brand": ["x", "y", "x", "z", "z"],
        "price": [99.0, 199.0, None, 9.0, 19.0],
    }
)
# user 0: item 0 (w 3, day 10), item 2 (w 1, day 12); user 1: item 0 (w 1, day 20),
# item 3 (w 5, day 30); user 2 has a zero-weight (search) event only
EVENTS = pl.DataFrame(
    {
        "user_index": [0, 0, 1, 1, 2],
        "item_index": [0, 2, 0, 3, 4],
        "timestamp": [10 * DAY, 12 * DAY, 20 * DAY, 30 * DAY, 31 * DAY],
        "weight": [3.0, 1.0, 1.0, 5.0, 0.0],
    }
)


def column(features: np.ndarray, name: str) -> np.ndarray:
    return features[:, FEATURE_NAMES.index(name)]


@pytest.fixture
def tables() -> tuple:
    return build_tables(ITEMS, EVENTS, n_users=4)


def test_item_table_by_hand(tables: tuple) -> None:
    items, users = tables
    # reference: the newest positive-weight event, day 30
    assert users.reference_time == 30 * DAY
    # item 0: 2 of 2 active users -> log1p(1000); item 4: only a zero-weight event
    assert items.popularity[0] == pytest.approx(math.log1p(1000.0))
    assert items.popularity[4] == 0.0
    assert items.weight_share[3] == pytest.approx(math.log1p(1000.0 * 5 / 10))
    # days since last: item 0 day 20, item 3 day 30, item 1 never
    assert items.days_since_last[0] == pytest.approx(10.0)
    assert items.days_since_last[3] == pytest.approx(0.0)
    assert np.isnan(items.days_since_last[1])
    # last 7 days (from day 23): only item 3's event
    np.testing.assert_allclose(items.recent_events, np.log1p([0, 0, 0, 1, 0]), rtol=1e-6)
    assert np.isnan(items.log_price[2])
    assert items.category[4] == -1
    assert items.category[0] == items.category[1] != items.category[2]
    np.testing.assert_allclose(
        users.days_since_last(np.array([0, 1, 2, -1])), [18, 0, np.nan, np.nan]
    )


def test_pair_features_by_hand(tables: tuple) -> None:
    items, _ = tables
    history = sp.csr_matrix(np.array([[3.0, 0, 1.0, 0, 0], [0, 0, 0, 0, 0]], dtype=np.float32))
    rows = np.array([0, 0, 0, 1])
    candidates = np.array([1, 3, 4, 1])
    features = pair_features(
        items,
        history,
        rows,
        candidates,
        retriever_scores=np.array([0.9, 0.5, 0.1, 0.2], dtype=np.float32),
        retriever_ranks=np.array([1, 2, 3, 1], dtype=np.float32),
        top_scores=np.array([0.9, 0.2], dtype=np.float32),
        user_days_since_last=np.array([2.0, np.nan], dtype=np.float32),
    )
    assert features.shape == (4, len(FEATURE_NAMES))
    assert features.dtype == np.float32
    # user 0's history weight: 3 in shoes (brand x), 1 in tea (brand x): 4 in all
    np.testing.assert_allclose(column(features, "category_share"), [0.75, 0.25, 0.0, 0.0])
    np.testing.assert_allclose(column(features, "brand_share"), [0.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(
        column(features, "retriever_score_gap"), [0.0, 0.4, 0.8, 0.0], atol=1e-6
    )
    # the only priced history item is item 0 (item 2 has no price)
    expected = math.log1p(199.0) - math.log1p(99.0)
    assert column(features, "price_vs_user")[0] == pytest.approx(expected, rel=1e-5)
    assert np.isnan(column(features, "price_vs_user")[3])  # empty history: no mean price
    np.testing.assert_allclose(column(features, "user_history_size"), np.log1p([2, 2, 2, 0]))
    np.testing.assert_allclose(column(features, "user_history_weight"), np.log1p([4, 4, 4, 0]))
    np.testing.assert_allclose(column(features, "user_days_since_last"), [2, 2, 2, np.nan])


def test_brand_share_counts_the_item_brand(tables: tuple) -> None:
    items, _ = tables
    history = sp.csr_matrix(np.array([[3.0, 0, 1.0, 0, 0]], dtype=np.float32))
    features = pair_features(items, history, np.array([0]), np.array([0]))
    assert column(features, "brand_share")[0] == pytest.approx(1.0)  # both history items: x
    assert np.isnan(column(features, "retriever_score")[0])


def test_unseen_ranks_equal_candidate_ranks_despite_ties() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=(6, 40)).astype(np.float32)  # many ties
    history = sp.random(6, 40, density=0.2, random_state=1, format="csr", dtype=np.float32)
    # a top-12 cut splits tied items arbitrarily: ranks must not depend on which stayed
    ranked = top_k_unseen(scores, 12, seen=history)[0]
    rows, columns = np.nonzero(ranked >= 0)
    listed = np.take_along_axis(scores, np.maximum(ranked, 0), axis=1)
    expected = candidate_ranks(listed)[rows, columns]
    ranks = unseen_ranks(scores, history, rows, ranked[rows, columns])
    np.testing.assert_array_equal(ranks, expected)
    limited = unseen_ranks(scores, history, rows, ranked[rows, columns], limit=5)
    np.testing.assert_array_equal(limited, np.minimum(expected, 5))


def test_tied_candidates_share_a_rank() -> None:
    ranks = candidate_ranks(np.array([[3.0, 2.0, 2.0, 1.0, -np.inf]], dtype=np.float32))
    np.testing.assert_array_equal(ranks, [[1, 2, 2, 4, 5]])


def test_unseen_rank_of_a_seen_item_counts_unseen_better_items() -> None:
    scores = np.array([[0.5, 0.9, 0.1, 0.7]], dtype=np.float32)
    history = sp.csr_matrix(np.array([[0, 1.0, 0, 0]], dtype=np.float32))
    ranks = unseen_ranks(scores, history, np.array([0, 0]), np.array([1, 2]))
    np.testing.assert_array_equal(ranks, [1, 3])  # 0.9 beats every unseen; 0.1 is third
