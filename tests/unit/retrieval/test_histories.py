"""`UserHistories` (the batch every recommender reads) and `top_k_unseen` (the one place
seen and blocked items leave a list), with answers worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from shelfwise._internal.sequences import Sequences
from shelfwise.errors import DataError
from shelfwise.retrieval import UserHistories, top_k_batch, top_k_unseen
from shelfwise.retrieval.base import score_users
from shelfwise.retrieval.popularity import PopularityRecommender

SCORES = np.array([[0.1, 0.9, 0.5, 0.5, -1.0], [3.0, 2.0, 1.0, 0.0, np.nan]], dtype=np.float32)
SEEN = sp.csr_matrix(np.array([[0, 1, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=np.float32))


def test_seen_items_leave_the_list_and_ties_go_to_the_lower_index() -> None:
    items, values = top_k_unseen(SCORES, 3, seen=SEEN)
    # row 0 without item 1: 0.5 (2), 0.5 (3), 0.1 (0); row 1 without item 0: 2, 1, 0
    np.testing.assert_array_equal(items, [[2, 3, 0], [1, 2, 3]])
    np.testing.assert_array_equal(values, np.array([[0.5, 0.5, 0.1], [2.0, 1.0, 0.0]], np.float32))


def test_exclusion_masks_of_every_shape() -> None:
    blocked = np.array([False, False, True, False, False])
    items, _ = top_k_unseen(SCORES, 2, seen=SEEN, exclude=blocked)
    np.testing.assert_array_equal(items, [[3, 0], [1, 3]])
    per_row = np.zeros(SCORES.shape, dtype=bool)
    per_row[1, 1] = True
    items, _ = top_k_unseen(SCORES, 2, seen=SEEN, exclude=per_row)
    np.testing.assert_array_equal(items, [[2, 3], [2, 3]])
    as_csr = sp.csr_matrix(per_row.astype(np.float32))
    np.testing.assert_array_equal(top_k_unseen(SCORES, 2, seen=SEEN, exclude=as_csr)[0], items)


def test_short_rows_are_padded() -> None:
    items, values = top_k_unseen(SCORES, 7, seen=SEEN)
    # row 1: item 0 seen, item 4 NaN: three items, then padding
    np.testing.assert_array_equal(items[1], [1, 2, 3, -1, -1, -1, -1])
    assert np.isneginf(values[1, 3:]).all()
    np.testing.assert_array_equal(items[0, :4], [2, 3, 0, 4])  # -1.0 is a real score


def test_the_deprecated_batch_function_ranks_the_same() -> None:
    np.testing.assert_array_equal(
        top_k_batch(SCORES, 4, exclude=SEEN), top_k_unseen(SCORES, 4, seen=SEEN)[0]
    )


def test_selected_histories_slice_their_order_on_first_read() -> None:
    matrix = sp.csr_matrix(np.eye(3, dtype=np.float32))
    order = Sequences.from_rows([[0], [1, 0], [2]])
    batch = UserHistories.select(matrix, order, np.array([2, 1]))
    assert batch.n_users == 2
    assert batch.n_items == 3
    np.testing.assert_array_equal(batch.rows.toarray(), matrix[[2, 1]].toarray())
    sequences = batch.sequences
    assert sequences is not None
    assert [sequences.row(0).tolist(), sequences.row(1).tolist()] == [[2], [1, 0]]
    assert UserHistories.select(matrix, None, np.array([0])).sequences is None


def test_an_unordered_batch_is_refused_where_order_is_needed() -> None:
    with pytest.raises(DataError, match="ordered histories"):
        UserHistories(sp.csr_matrix((1, 3))).ordered(model="sasrec")


def test_score_users_is_score_on_user_histories() -> None:
    model = PopularityRecommender()
    model.fit(sp.csr_matrix(np.array([[1.0, 0.0], [1.0, 2.0]], dtype=np.float32)))
    rows = sp.csr_matrix((2, 2), dtype=np.float32)
    np.testing.assert_array_equal(score_users(model, rows, None), model.score(UserHistories(rows)))
