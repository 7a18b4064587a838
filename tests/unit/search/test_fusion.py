"""Reciprocal rank fusion against scores worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from shelfwise.errors import ConfigError, DataError
from shelfwise.search.fusion import first_occurrence_ranks, reciprocal_rank_fusion


def test_hand_computed_case() -> None:
    # k = 10.  bm25: 4, 2, 7     dense: 2, 9, 4, 5
    #   item 2: 1/(10+2) + 1/(10+1) = 0.083333 + 0.090909 = 0.174242
    #   item 4: 1/(10+1) + 1/(10+3) = 0.090909 + 0.076923 = 0.167832
    #   item 9:            1/(10+2) = 0.083333
    #   item 7: 1/(10+3)            = 0.076923
    #   item 5:            1/(10+4) = 0.071429
    items, scores = reciprocal_rank_fusion(
        {"bm25": np.array([4, 2, 7]), "dense": [2, 9, 4, 5]}, k=10
    )
    assert items.tolist() == [2, 4, 9, 7, 5]
    assert items.dtype == np.int64
    np.testing.assert_allclose(
        scores,
        [1 / 12 + 1 / 11, 1 / 11 + 1 / 13, 1 / 12, 1 / 13, 1 / 14],
        rtol=1e-12,
    )


def test_weights_and_limit() -> None:
    # k = 1, dense weighs 3: item 1: 1/2 = 0.5 (bm25 first); item 8: 3/2 = 1.5 (dense first)
    # item 5: 1/3 + 3/3 = 1.333
    items, scores = reciprocal_rank_fusion(
        {"bm25": [1, 5], "dense": [8, 5]}, k=1, weights={"dense": 3.0}, limit=2
    )
    assert items.tolist() == [8, 5]
    np.testing.assert_allclose(scores, [1.5, 1 / 3 + 1.0])


def test_ties_break_by_item_index() -> None:
    # every item once at rank 1 or twice at the same ranks: equal scores
    items, scores = reciprocal_rank_fusion({"a": [9, 3], "b": [3, 9], "c": [4], "d": [1]})
    assert items.tolist() == [3, 9, 1, 4]
    assert scores[0] == scores[1]
    assert scores[2] == scores[3]
    again, _ = reciprocal_rank_fusion({"d": [1], "c": [4], "b": [3, 9], "a": [9, 3]})
    assert again.tolist() == items.tolist()  # the mapping's order does not matter


def test_padding_and_duplicates() -> None:
    items, ranks = first_occurrence_ranks([5, -1, 3, 5, 2])
    assert items.tolist() == [5, 3, 2]
    assert ranks.tolist() == [1, 3, 5]  # ranks are positions in the list as given
    fused, scores = reciprocal_rank_fusion({"a": [5, -1, 3, 5]}, k=1)
    assert fused.tolist() == [5, 3]
    np.testing.assert_allclose(scores, [1 / 2, 1 / 4])


def test_empty_inputs() -> None:
    items, scores = reciprocal_rank_fusion({})
    assert items.shape == scores.shape == (0,)
    items, _ = reciprocal_rank_fusion({"a": [], "b": np.array([], dtype=np.int64)})
    assert items.size == 0
    items, _ = reciprocal_rank_fusion({"a": [1, 2]}, limit=0)
    assert items.size == 0


def test_invalid_arguments() -> None:
    with pytest.raises(ConfigError, match="k must be > 0"):
        reciprocal_rank_fusion({"a": [1]}, k=0)
    with pytest.raises(ConfigError, match="not given"):
        reciprocal_rank_fusion({"a": [1]}, weights={"dense": 1.0})
    with pytest.raises(ConfigError, match="must be >= 0"):
        reciprocal_rank_fusion({"a": [1]}, weights={"a": -1.0})
    with pytest.raises(ConfigError, match="limit"):
        reciprocal_rank_fusion({"a": [1]}, limit=-1)
    with pytest.raises(DataError, match="not a list of item indices"):
        reciprocal_rank_fusion({"a": ["x"]})
