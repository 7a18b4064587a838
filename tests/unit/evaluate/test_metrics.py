"""Metric functions on cases small enough to compute by hand (computations in comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from shelfwise.errors import DataError, EmptyDataError
from shelfwise.evaluate.metrics import (
    average_popularity,
    catalog_coverage,
    graded_ndcg,
    ranking_metrics,
    reciprocal_rank,
)

LOG2_3 = math.log2(3)


def relevant_matrix(rows: list[list[int]], n_items: int) -> sp.csr_matrix:
    matrix = np.zeros((len(rows), n_items), dtype=np.float32)
    for user, items in enumerate(rows):
        matrix[user, items] = 1.0
    return sp.csr_matrix(matrix)


def test_single_user_example() -> None:
    # relevant {2, 5}, ranked [5, 1, 2] -> hits [1, 0, 1]
    ranked = np.array([[5, 1, 2]])
    metrics = ranking_metrics(ranked, relevant_matrix([[2, 5]], 6), [1, 2, 3])
    # @3: 2 hits of 2 relevant; 2 hits in 3 slots; first hit at rank 1
    assert metrics["recall@3"] == pytest.approx(1.0)
    assert metrics["precision@3"] == pytest.approx(2 / 3)
    assert metrics["mrr@3"] == pytest.approx(1.0)
    assert metrics["hit@3"] == pytest.approx(1.0)
    # DCG = 1/log2(2) + 1/log2(4) = 1.5; IDCG (2 ideal positions) = 1 + 1/log2(3)
    assert metrics["ndcg@3"] == pytest.approx((1 + 1 / math.log2(4)) / (1 + 1 / LOG2_3))
    # @2: hits [1, 0] -> recall 1/2, precision 1/2, DCG 1, IDCG 1 + 1/log2(3)
    assert metrics["recall@2"] == pytest.approx(0.5)
    assert metrics["precision@2"] == pytest.approx(0.5)
    assert metrics["ndcg@2"] == pytest.approx(1 / (1 + 1 / LOG2_3))
    # @1: the first item is relevant; IDCG@1 = 1 (min(|R|, k) = 1 ideal position)
    assert metrics["ndcg@1"] == pytest.approx(1.0)
    assert metrics["recall@1"] == pytest.approx(0.5)
    assert set(metrics) == {
        f"{name}@{k}"
        for name in ("recall", "precision", "hit", "mrr", "ndcg", "map")
        for k in (1, 2, 3)
    }


def test_padding_and_users_without_relevant_items() -> None:
    ranked = np.array(
        [
            [5, 1, 2],  # u0: relevant {2, 5}: hits [1, 0, 1]
            [3, 0, -1],  # u1: relevant {0}: hit at rank 2, then padding
            [1, 2, 3],  # u2: nothing relevant: skipped
            [-1, -1, -1],  # u3: relevant {4}, nothing ranked
        ]
    )
    relevant = relevant_matrix([[2, 5], [0], [], [4]], 6)
    metrics = ranking_metrics(ranked, relevant, [3])
    # averages over u0, u1, u3
    assert metrics["recall@3"] == pytest.approx((1 + 1 + 0) / 3)
    assert metrics["precision@3"] == pytest.approx((2 / 3 + 1 / 3 + 0) / 3)
    assert metrics["hit@3"] == pytest.approx(2 / 3)
    assert metrics["mrr@3"] == pytest.approx((1 + 1 / 2 + 0) / 3)
    # u0: 1.5 / (1 + 1/log2 3); u1: (1/log2 3) / 1; u3: 0
    expected_ndcg = (1.5 / (1 + 1 / LOG2_3) + 1 / LOG2_3 + 0) / 3
    assert metrics["ndcg@3"] == pytest.approx(expected_ndcg)


def test_padding_never_matches_the_previous_users_last_item() -> None:
    # Padding -1 of u1 would be key 1 * 6 - 1 = 5, u0's key for item 5: must not count.
    ranked = np.array([[0, 1], [-1, -1]])
    metrics = ranking_metrics(ranked, relevant_matrix([[5], [1]], 6), [2])
    assert metrics["hit@2"] == 0.0


def test_k_larger_than_the_list_and_ideal_positions() -> None:
    # relevant {0, 1, 2, 3}, ranked [0, 5, 6] (K_max = 3)
    ranked = np.array([[0, 5, 6]])
    metrics = ranking_metrics(ranked, relevant_matrix([[0, 1, 2, 3]], 8), [2, 5])
    # @2: DCG 1; IDCG over min(4, 2) = 2 positions: 1 + 1/log2 3
    assert metrics["ndcg@2"] == pytest.approx(1 / (1 + 1 / LOG2_3))
    # @5: positions 4 and 5 do not exist and count as misses; IDCG over min(4, 5) = 4
    idcg_4 = 1 + 1 / LOG2_3 + 1 / 2 + 1 / math.log2(5)
    assert metrics["ndcg@5"] == pytest.approx(1 / idcg_4)
    assert metrics["precision@5"] == pytest.approx(1 / 5)
    assert metrics["recall@5"] == pytest.approx(1 / 4)


def slow_reference(ranked: np.ndarray, relevant: list[set[int]], k: int) -> dict[str, float]:
    """Per-user loop with the textbook definitions."""
    sums = dict.fromkeys(("recall", "precision", "hit", "mrr", "ndcg", "map"), 0.0)
    users = [u for u in range(len(relevant)) if relevant[u]]
    for u in users:
        top = [int(i) for i in ranked[u, :k]]
        gains = [1.0 if i in relevant[u] else 0.0 for i in top]
        hits = sum(gains)
        sums["recall"] += hits / len(relevant[u])
        sums["precision"] += hits / k
        sums["hit"] += float(hits > 0)
        sums["mrr"] += next((1 / (r + 1) for r, g in enumerate(gains) if g), 0.0)
        dcg = sum(g / math.log2(r + 2) for r, g in enumerate(gains))
        idcg = sum(1 / math.log2(r + 2) for r in range(min(len(relevant[u]), k)))
        sums["ndcg"] += dcg / idcg
        precisions = [sum(gains[: r + 1]) / (r + 1) for r in range(len(gains))]
        average = sum(p for p, g in zip(precisions, gains, strict=True) if g)
        sums["map"] += average / min(len(relevant[u]), k)
    return {f"{name}@{k}": value / len(users) for name, value in sums.items()}


@pytest.mark.parametrize("seed", [0, 1])
def test_vectorised_equals_per_user_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_users, n_items, k_max = 300, 40, 12
    ranked = np.stack([rng.permutation(n_items)[:k_max] for _ in range(n_users)])
    ranked[rng.random(ranked.shape) < 0.05] = -1  # some padding
    relevant_sets = [
        set(rng.choice(n_items, rng.integers(0, 6), replace=False).tolist()) for _ in range(n_users)
    ]
    relevant = relevant_matrix([sorted(s) for s in relevant_sets], n_items)
    metrics = ranking_metrics(ranked, relevant, [1, 5, 12, 20])
    for k in (1, 5, 12, 20):
        for name, value in slow_reference(ranked, relevant_sets, k).items():
            assert metrics[name] == pytest.approx(value), name


def test_ranking_metrics_errors() -> None:
    relevant = relevant_matrix([[1]], 3)
    with pytest.raises(DataError, match="one row per user"):
        ranking_metrics(np.array([[0], [1]]), relevant, [1])
    with pytest.raises(DataError, match="integer"):
        ranking_metrics(np.array([[0.0]]), relevant, [1])
    with pytest.raises(DataError, match="K must be >= 1"):
        ranking_metrics(np.array([[0]]), relevant, [0])
    with pytest.raises(EmptyDataError, match="no user has a relevant item"):
        ranking_metrics(np.array([[0]]), relevant_matrix([[]], 3), [1])


def test_catalog_coverage() -> None:
    ranked = np.array([[0, 1, 2], [1, 3, -1]])
    # top 2: {0, 1} ∪ {1, 3} = 3 of 10 items; top 3 adds item 2: 4 of 10
    assert catalog_coverage(ranked, 10, 2) == pytest.approx(0.3)
    assert catalog_coverage(ranked, 10, 3) == pytest.approx(0.4)


def test_average_popularity() -> None:
    popularity = np.array([10.0, 5.0, 1.0, 0.0, 2.0])
    ranked = np.array([[0, 1], [2, -1], [-1, -1]])
    # u0: (10 + 5) / 2 = 7.5; u1: 1 / 1 (padding skipped); u2: nothing listed, skipped
    assert average_popularity(ranked, popularity, 2) == pytest.approx((7.5 + 1.0) / 2)
    # k = 1: u0 10, u1 1
    assert average_popularity(ranked, popularity, 1) == pytest.approx(5.5)
    with pytest.raises(DataError, match="item_popularity has 5 items"):
        average_popularity(np.array([[7]]), popularity, 1)


def test_graded_ndcg_exponential_by_hand() -> None:
    # ranked gains (2^rel - 1): 3, 7, 0 -> DCG = 3/1 + 7/log2 3 + 0
    # ideal relevances 3, 2, 2 -> gains 7, 3, 3 -> IDCG = 7 + 3/log2 3 + 3/2
    dcg = 3 + 7 / LOG2_3
    idcg = 7 + 3 / LOG2_3 + 3 / 2
    value = graded_ndcg([2, 3, 0, 1], [3, 2, 2, 1, 0], k=3)
    assert value == pytest.approx(dcg / idcg)
    assert value == pytest.approx(0.71362, abs=1e-5)


def test_graded_ndcg_linear_by_hand() -> None:
    # DCG = 2 + 3/log2 3; IDCG = 3 + 2/log2 3 + 2/2
    expected = (2 + 3 / LOG2_3) / (3 + 2 / LOG2_3 + 1)
    assert graded_ndcg([2, 3, 0, 1], [3, 2, 2, 1, 0], k=3, gain="linear") == pytest.approx(expected)


def test_graded_ndcg_edge_cases() -> None:
    assert graded_ndcg([3, 2], [3, 2], k=10) == pytest.approx(1.0)  # perfect, short list
    assert graded_ndcg([0, 0], [0, 0], k=5) == 0.0  # nothing relevant: IDCG = 0
    assert graded_ndcg([], [2, 1], k=5) == 0.0  # nothing returned
    # CrowdFlower: median_relevance 4 shifted by the caller to 3 -> gain 2^3 - 1 = 7
    assert graded_ndcg([4 - 1], [4 - 1, 2 - 1], k=1) == pytest.approx(1.0)
    with pytest.raises(DataError, match="shift graded labels"):
        graded_ndcg([-1], [1], k=1)
    with pytest.raises(DataError, match="k >= 1"):
        graded_ndcg([1], [1], k=0)


def test_reciprocal_rank() -> None:
    assert reciprocal_rank([0, 1, 3], threshold=2) == pytest.approx(1 / 3)
    assert reciprocal_rank([0, 1, 3], threshold=1) == pytest.approx(1 / 2)
    assert reciprocal_rank([0, 1, 3], threshold=4) == 0.0
    assert reciprocal_rank([], threshold=1) == 0.0


def test_map_by_hand() -> None:
    """MAP@K as RecBole computes it: Σ over hit ranks r <= K of precision@r / min(|R|, K).

    u0: relevant {2, 5}, ranked [5, 1, 2] -> hits [1, 0, 1], precision@1 = 1,
        precision@3 = 2/3:  map@1 = 1/min(2, 1) = 1;  map@2 = 1/min(2, 2) = 1/2;
        map@3 = (1 + 2/3) / min(2, 3) = 5/6.
    u1: relevant {1, 3, 4}, ranked [1, 2, 3, 4, 0] -> hits [1, 0, 1, 1, 0], precision at
        the hits 1, 2/3, 3/4:  map@1 = 1;  map@2 = 1/2;  map@3 = (1 + 2/3) / 3 = 5/9;
        map@5 = (1 + 2/3 + 3/4) / min(3, 5) = (29/12) / 3 = 29/36.
    u2: relevant {0, 1, 2, 3}, ranked [0, 5, 6, -1, -1] -> hits [1, 0, 0, 0, 0]:
        map@2 = 1/min(4, 2) = 1/2;  map@3 = 1/min(4, 3) = 1/3;  map@5 = 1/min(4, 5) = 1/4
        (the divisor is K while |R| > K, |R| once K passes it).
    """
    ranked = np.array([[5, 1, 2, -1, -1], [1, 2, 3, 4, 0], [0, 5, 6, -1, -1]])
    relevant = relevant_matrix([[2, 5], [1, 3, 4], [0, 1, 2, 3]], 8)
    metrics = ranking_metrics(ranked, relevant, [1, 2, 3, 5])
    assert metrics["map@1"] == pytest.approx((1 + 1 + 1) / 3)
    assert metrics["map@2"] == pytest.approx((1 / 2 + 1 / 2 + 1 / 2) / 3)
    assert metrics["map@3"] == pytest.approx((5 / 6 + 5 / 9 + 1 / 3) / 3)
    assert metrics["map@5"] == pytest.approx((5 / 6 + 29 / 36 + 1 / 4) / 3)
    assert metrics["map@5"] == pytest.approx(0.62963, abs=1e-5)


def test_map_counts_padding_and_short_lists_as_misses() -> None:
    ranked = np.array([[3, 0, -1], [-1, -1, -1]])
    relevant = relevant_matrix([[0], [4]], 6)
    # u0: one relevant item found at rank 2 -> precision@2 = 1/2, divisor min(1, K) = 1;
    # u1: nothing ranked -> 0. K = 10 > K_max = 3: the missing positions are misses.
    metrics = ranking_metrics(ranked, relevant, [1, 3, 10])
    assert metrics["map@1"] == 0.0
    assert metrics["map@3"] == pytest.approx((1 / 2 + 0) / 2)
    assert metrics["map@10"] == pytest.approx((1 / 2 + 0) / 2)
