from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from shelfwise.errors import ConfigError
from shelfwise.retrieval.blend import BlendRecommender, normalise_rows
from shelfwise.retrieval.item_knn import ItemKNNRecommender
from shelfwise.retrieval.popularity import PopularityRecommender


def test_normalise_rows_maps_each_row_to_unit_range() -> None:
    scores = np.array([[1.0, 3.0, 2.0], [5.0, 5.0, 5.0]], dtype=np.float32)
    assert normalise_rows(scores).tolist() == [[0.0, 1.0, 0.5], [0.0, 0.0, 0.0]]


def test_blend_is_the_weighted_sum_of_normalised_scores() -> None:
    train = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 1, 0], [1, 0, 0, 1]], dtype=np.float32))
    pop, knn = PopularityRecommender(), ItemKNNRecommender(neighbours=3)
    blend = BlendRecommender(
        {"popularity": 0.25, "item_knn": 2.0}, {"popularity": pop, "item_knn": knn}
    )
    blend.fit(train)
    expected = 0.25 * normalise_rows(pop.score(train)) + 2.0 * normalise_rows(knn.score(train))
    np.testing.assert_allclose(blend.score(train), expected, rtol=1e-6)


def test_weights_must_match_components() -> None:
    with pytest.raises(ConfigError, match="must name the same models"):
        BlendRecommender({"popularity": 1.0}, {})
    with pytest.raises(ConfigError, match=">= 0"):
        BlendRecommender({"popularity": -1.0}, {"popularity": PopularityRecommender()})
