"""Buy-again and TIFU-KNN on hand-made histories with hand-computed answers (issue 15)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from shelfwise._internal.sequences import Sequences
from shelfwise.errors import DataError
from shelfwise.retrieval import UserHistories, recommend_top_k
from shelfwise.retrieval.buy_again import BuyAgainRecommender
from shelfwise.retrieval.tifu_knn import TIFUKNNRecommender, user_vectors


def _histories(rows: list[list[int]], n_items: int) -> UserHistories:
    users = np.repeat(np.arange(len(rows)), [len(r) for r in rows])
    items = np.concatenate([np.asarray(r, dtype=np.int64) for r in rows])
    matrix = sp.csr_matrix((np.ones(items.size, np.float32), (users, items)), (len(rows), n_items))
    return UserHistories(matrix, Sequences.from_rows(rows))


def test_buy_again_ranks_own_items_by_decayed_count() -> None:
    # user 0 bought 0 three times long ago, 1 twice lately, 2 once last; decay 0.5
    # 0: 0.5^5 + 0.5^4 + 0.5^3 = 0.21875; 1: 0.5^2 + 0.5^1 = 0.75; 2: 0.5^0 = 1
    history = _histories([[0, 0, 0, 1, 1, 2]], 5)
    model = BuyAgainRecommender(decay=0.5, cycle_weight=0.0)
    model.fit(history)
    scores = model.score(history)
    np.testing.assert_allclose(scores[0], [0.21875, 0.75, 1.0, 0.0, 0.0])
    items, _ = recommend_top_k(model, history, 3, exclude_seen=False)
    assert items[0].tolist() == [2, 1, 0]  # recency beats frequency at this decay


def test_buy_again_without_decay_is_the_most_bought_items() -> None:
    history = _histories([[0, 0, 0, 1, 1, 2]], 4)
    model = BuyAgainRecommender(decay=1.0, cycle_weight=0.0)
    model.fit(history)
    assert model.score(history)[0].tolist() == [3.0, 2.0, 1.0, 0.0]


def test_buy_again_ranks_a_due_staple_above_a_more_frequent_fresh_one() -> None:
    """Counts times (1 + cycle_weight * due); due compares events since with the usual gap."""
    history = _histories([[2, 0, 9, 0, 2, 0, 9, 9, 0, 2]], 10)
    model = BuyAgainRecommender(decay=1.0, cycle_weight=2.0, cycle_width=0.5)
    model.fit(history)
    scores = model.score(history)[0]

    # counts: 0 -> 4, 2 -> 3, 9 -> 3. Item 0: positions 1, 3, 5, 8: gap 7/3, since
    # 10 - 8 = 2, due exp(-0.5 ((2 / (7/3) - 1) / 0.5)^2); item 2: positions 0, 4, 9:
    # gap 4.5, since 1; item 9: positions 2, 6, 7: gap 2.5, since 3.
    def due(since: float, gap: float) -> float:
        return float(np.exp(-0.5 * ((since / gap - 1) / 0.5) ** 2))

    expected = {
        0: 4 * (1 + 2 * due(2, 7 / 3)),
        2: 3 * (1 + 2 * due(1, 4.5)),
        9: 3 * (1 + 2 * due(3, 2.5)),
    }
    for item, value in expected.items():
        assert scores[item] == pytest.approx(value, rel=1e-5)
    assert scores[9] > scores[2]  # due beats fresh at equal counts


def test_buy_again_needs_the_order_and_a_valid_decay() -> None:
    model = BuyAgainRecommender()
    model.fit(_histories([[0]], 2))
    with pytest.raises(DataError, match="ordered histories"):
        model.score(sp.csr_matrix([[1.0, 0.0]], dtype=np.float32))
    with pytest.raises(ValueError, match="decay"):
        BuyAgainRecommender(decay=0.0)
    with pytest.raises(ValueError, match="cycle_width"):
        BuyAgainRecommender(cycle_width=0.0)


def _paper_vector(
    baskets: list[list[int]], n_items: int, m: int, r_b: float, r_g: float
) -> np.ndarray:
    """Hu et al. 2020, eq. 1-2, literally: groups of m baskets from the newest back."""
    vectors = [np.bincount(b, minlength=n_items).astype(np.float64) for b in baskets]
    groups = []
    end = len(vectors)
    while end > 0:
        groups.insert(0, vectors[max(0, end - m) : end])
        end -= m
    k = len(groups)
    user = np.zeros(n_items)
    for i, group in enumerate(groups, 1):
        size = len(group)
        group_vector = sum(r_b ** (size - j) * v for j, v in enumerate(group, 1)) / size
        user += r_g ** (k - i) * group_vector
    return user / k


def test_tifu_user_vectors_match_the_paper_formula() -> None:
    rows = [[0, 1, 2, 0, 3, 0, 1], [4, 4, 2], [1]]
    got = user_vectors(
        Sequences.from_rows(rows), 5, group_size=3, within_decay=0.8, across_decay=0.6
    ).toarray()
    for user, row in enumerate(rows):
        expected = _paper_vector([[item] for item in row], 5, 3, 0.8, 0.6)
        np.testing.assert_allclose(got[user], expected, rtol=1e-6)


def test_tifu_blends_own_vector_with_nearest_users() -> None:
    train = _histories([[0, 1], [0, 1, 2], [3, 4]], 5)
    model = TIFUKNNRecommender(
        group_size=2, within_decay=1.0, across_decay=1.0, neighbours=1, alpha=0.5
    )
    model.fit(train)
    query = _histories([[0, 1]], 5)
    own = user_vectors(
        query.ordered(model="t"), 5, group_size=2, within_decay=1.0, across_decay=1.0
    )
    vectors = model.train_vectors.toarray()  # type: ignore[union-attr]
    # the nearest training user by cosine is user 0 itself (identical vector)
    expected = 0.5 * own.toarray()[0] + 0.5 * vectors[0]
    np.testing.assert_allclose(model.score(query)[0], expected, rtol=1e-6)
    two = TIFUKNNRecommender(
        group_size=2, within_decay=1.0, across_decay=1.0, neighbours=2, alpha=0.5
    )
    two.fit(train)
    expected = 0.5 * own.toarray()[0] + 0.5 * (vectors[0] + vectors[1]) / 2
    np.testing.assert_allclose(two.score(query)[0], expected, rtol=1e-6)
    assert two.score(query)[0, 2] > 0  # a neighbour's item the user never bought


def test_tifu_sparse_neighbours_match_a_dense_oracle() -> None:
    # random histories, some users sharing no item with anyone: the sparse neighbour
    # search must equal "the k most cosine-similar users with similarity > 0, ties to
    # the lower user index, mean divided by k", computed densely
    rng = np.random.default_rng(7)
    n_items, k, alpha = 40, 3, 0.4
    rows = [list(rng.integers(0, n_items, size=int(rng.integers(1, 6)))) for _ in range(30)]
    rows.append([n_items - 1])  # an item nobody else bought: maybe no neighbour at all
    train = _histories(rows, n_items)
    model = TIFUKNNRecommender(
        group_size=2, within_decay=0.9, across_decay=0.8, neighbours=k, alpha=alpha
    )
    model.fit(train)
    vectors = model.train_vectors.toarray()  # type: ignore[union-attr]
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-30)
    got = model.score(train)
    for user in range(len(rows)):
        similarity = unit @ unit[user]
        order = [j for j in np.lexsort((np.arange(len(rows)), -similarity)) if similarity[j] > 0]
        expected = alpha * vectors[user] + (1 - alpha) * vectors[order[:k]].sum(axis=0) / k
        np.testing.assert_allclose(got[user], expected, rtol=1e-5, atol=1e-7)
