"""Cold-start slices on a case small enough to work out by hand (computations in comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from shelfwise.errors import DataError
from shelfwise.evaluate.metrics import RANKING_METRICS, ranking_metrics
from shelfwise.evaluate.slices import SLICES, new_items, new_users, slice_metrics


def matrix(rows: list[list[int]], n_items: int) -> sp.csr_matrix:
    dense = np.zeros((len(rows), n_items), dtype=np.float32)
    for user, items in enumerate(rows):
        dense[user, items] = 1.0
    return sp.csr_matrix(dense)


def train_matrix() -> sp.csr_matrix:
    """u0: items 0, 1; u1: item 1; u2: nothing; u3: only an explicit zero at item 2.

    So users 2 and 3 are new, and items 2, 3 and 4 are new.
    """
    train = matrix([[0, 1], [1], [], []], 5)
    train = sp.csr_matrix(
        (
            np.append(train.data, 0.0).astype(np.float32),
            np.append(train.indices, 2),
            np.array([0, 2, 3, 3, 4]),
        ),
        shape=(4, 5),
    )
    assert train.nnz == 4  # the explicit zero is stored
    return train


TARGETS = matrix([[0, 2], [3], [1, 4], [0]], 5)
USERS = np.array([0, 1, 2, 3])
RANKED = np.array(
    [
        [2, 3],  # u0, targets {0, 2}: hit at rank 1 (item 2)
        [0, 3],  # u1, targets {3}: hit at rank 2
        [4, 0],  # u2, targets {1, 4}: hit at rank 1 (item 4)
        [1, 0],  # u3, targets {0}: hit at rank 2
    ]
)


def test_new_users_and_new_items_masks() -> None:
    train = train_matrix()
    assert new_users(train, USERS).tolist() == [False, False, True, True]
    assert new_users(train, np.array([3, 0, 3])).tolist() == [True, False, True]
    assert new_users(train, np.array([], dtype=np.int64)).tolist() == []
    assert new_items(train).tolist() == [False, False, True, True, True]
    assert train.nnz == 4  # the caller's matrix keeps its explicit zero
    with pytest.raises(DataError, match=r"row indexes of train in \[0, 4\)"):
        new_users(train, np.array([4]))
    with pytest.raises(DataError, match="2-D scipy sparse"):
        new_items(np.ones((2, 2)))


def test_slices_by_hand() -> None:
    result = slice_metrics(RANKED, TARGETS, train_matrix(), USERS, [1, 2])
    assert set(result) == set(SLICES)

    # all: 4 users. recall@1 = (1/2 + 0 + 1/2 + 0) / 4; recall@2 = (1/2 + 1 + 1/2 + 1) / 4
    every = result["all"]
    assert every["users"] == 4.0
    assert every["recall@1"] == pytest.approx(1 / 4)
    assert every["recall@2"] == pytest.approx(3 / 4)
    assert every["hit@1"] == pytest.approx(2 / 4)
    assert every == {"users": 4.0, **ranking_metrics(RANKED, TARGETS[USERS], [1, 2])}

    # new_users: u2 and u3 with all their targets. recall@1 = (1/2 + 0) / 2,
    # recall@2 = (1/2 + 1) / 2, hit@1 = (1 + 0) / 2, mrr@2 = (1 + 1/2) / 2
    fresh = result["new_users"]
    assert fresh["users"] == 2.0
    assert fresh["recall@1"] == pytest.approx(1 / 4)
    assert fresh["recall@2"] == pytest.approx(3 / 4)
    assert fresh["hit@1"] == pytest.approx(1 / 2)
    assert fresh["mrr@2"] == pytest.approx(3 / 4)

    # new_items: targets restricted to items {2, 3, 4}: u0 {2}, u1 {3}, u2 {4}; u3 has
    # none (item 0 is known) and is skipped. u0 and u2 find theirs at rank 1, u1 at 2:
    # recall@1 = 2/3, recall@2 = 1, mrr@2 = (1 + 1/2 + 1) / 3,
    # ndcg@2 = (1 + 1/log2(3) + 1) / 3 (one target each, so IDCG = 1)
    cold = result["new_items"]
    assert cold["users"] == 3.0
    assert cold["recall@1"] == pytest.approx(2 / 3)
    assert cold["recall@2"] == pytest.approx(1.0)
    assert cold["mrr@2"] == pytest.approx(5 / 6)
    assert cold["ndcg@2"] == pytest.approx((2 + 1 / math.log2(3)) / 3)
    assert set(cold) == {"users"} | {f"{name}@{k}" for name in RANKING_METRICS for k in (1, 2)}


def test_rows_of_ranked_follow_the_order_of_users() -> None:
    # Only u2 and u0, in that order: rows of `ranked` are theirs.
    result = slice_metrics(RANKED[[2, 0]], TARGETS, train_matrix(), np.array([2, 0]), [1])
    assert result["all"]["users"] == 2.0
    assert result["all"]["recall@1"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert result["new_users"]["users"] == 1.0  # u2
    assert result["new_users"]["recall@1"] == pytest.approx(1 / 2)
    # new targets: u2 {4} found at rank 1; u0 {2} found at rank 1
    assert result["new_items"]["recall@1"] == pytest.approx(1.0)


def test_empty_slices_hold_only_a_zero_user_count() -> None:
    train = matrix([[0, 1, 2], [3, 4]], 5)  # every user and every item is known
    targets = matrix([[3], [0]], 5)
    result = slice_metrics(np.array([[3], [1]]), targets, train, np.array([0, 1]), [1])
    assert result["new_users"] == {"users": 0.0}
    assert result["new_items"] == {"users": 0.0}
    assert result["all"]["users"] == 2.0
    assert result["all"]["hit@1"] == pytest.approx(1 / 2)
    nobody = slice_metrics(np.empty((0, 1), dtype=np.int64), targets, train, np.array([]), [1])
    assert nobody == dict.fromkeys(SLICES, {"users": 0.0})


def test_slice_metrics_errors() -> None:
    train = train_matrix()
    with pytest.raises(DataError, match="one row per evaluated user"):
        slice_metrics(RANKED[:2], TARGETS, train, USERS, [1])
    with pytest.raises(DataError, match="same user and item indexes"):
        slice_metrics(RANKED, TARGETS[:, :4], train, USERS, [1])
    with pytest.raises(DataError, match="K must be >= 1"):
        slice_metrics(RANKED, TARGETS, train, USERS, [0])
    with pytest.raises(DataError, match="row indexes of train"):
        slice_metrics(RANKED, TARGETS, train, np.array([0, 1, 2, 9]), [1])
