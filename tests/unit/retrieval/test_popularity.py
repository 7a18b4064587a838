"""Popularity: summed weights, identical rows."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from shelfwise.retrieval.popularity import PopularityRecommender


def test_scores_are_summed_weights_on_every_row() -> None:
    # item sums: item0 = 1 + 2 = 3, item1 = 0, item2 = 5 + 1 = 6
    train = sp.csr_matrix(np.array([[1, 0, 5], [2, 0, 1]], dtype=np.float32))
    model = PopularityRecommender()
    model.fit(train)
    scores = model.score(sp.csr_matrix(np.array([[0, 1, 0], [0, 0, 0]], dtype=np.float32)))
    np.testing.assert_array_equal(scores, [[3, 0, 6], [3, 0, 6]])
    assert model.n_items == 3
