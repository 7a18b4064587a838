"""The ranker protocol: candidates with their features in, one score each out.

Retrievers score every item; a ranker scores a short candidate list from feature rows
the caller builds (`shelfwise.ranking.features` for recommendations,
`shelfwise.search.features` for search) and the caller orders the candidates by it.

Relations:
    `ClickModel` (and the `Scorer` inside it: LightGBM or MLP) re-ranks a
    recommender's candidates, its scores calibrated as click probabilities;
    `shelfwise.search.lambdamart.SearchReranker` re-ranks one query's candidates, its
    scores comparable only within the query. Both implement `Ranker`; how each is
    trained is its own (`shelfwise.ranking.stage`, `shelfwise.search.stage`).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

FeatureRows = np.ndarray[Any, np.dtype[np.float32]]
Scores = np.ndarray[Any, np.dtype[np.floating[Any]]]


@runtime_checkable
class Ranker(Protocol):
    """A fitted model that scores candidates from their feature rows.

    Inputs:
        features: float32 (n_candidates, n_features), the model's feature columns in
            order; NaN marks a missing value.
    """

    def score_candidates(self, features: FeatureRows) -> Scores:
        """One score per row, higher is better (n_candidates,)."""
        ...


__all__ = ["FeatureRows", "Ranker", "Scores"]
