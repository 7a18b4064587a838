"""The engine's predict job: the click model's probabilities for (user, item) pairs.

`Engine.predict` delegates here. When the click model was trained on this bundle's
recommender, its retriever-score features are read from that recommender's scores of
the user's history, exactly as in training.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from shelfwise.contracts import FloatArray
from shelfwise.errors import ModelNotAvailableError
from shelfwise.ranking import ClickModel
from shelfwise.retrieval import Recommender
from shelfwise.retrieval.base import UserHistories
from shelfwise.runtime._scores import first_row
from shelfwise.runtime.catalog import Catalog
from shelfwise.runtime.histories import Histories
from shelfwise.runtime.results import PredictResult, unknown_item


class PredictJob:
    """Click probabilities from the bundle's click model.

    Args:
        catalog: the served catalog.
        histories: the bundle's users.
        ranker: the bundle's click model; None when it has none.
        scored_by: the recommender whose scores the click model reads (this bundle's
            recommender, when the click model was trained on it), else None.
        version: the model version named in errors.
    """

    def __init__(
        self,
        *,
        catalog: Catalog,
        histories: Histories,
        ranker: ClickModel | None,
        scored_by: Recommender | None,
        version: str,
    ) -> None:
        """Hold the loaded parts."""
        self._catalog = catalog
        self._histories = histories
        self._ranker = ranker
        self._scored_by = scored_by
        self._version = version

    def predict(self, raw_user_id: str | None, raw_item_ids: Sequence[str]) -> PredictResult:
        """`Engine.predict`: probabilities in request order."""
        ranker = self._ranker
        if ranker is None:
            raise ModelNotAvailableError(
                f"model version {self._version} has no click model; retrain with "
                "ranking.enabled true to serve /v1/predict"
            )
        index = self._catalog.index
        for raw in raw_item_ids:
            if raw not in index:
                raise unknown_item(raw, self._version)
        items = np.fromiter(
            (index[raw] for raw in raw_item_ids), dtype=np.int64, count=len(raw_item_ids)
        )
        user = self._histories.user(raw_user_id)
        history = (
            self._histories.row(user)
            if user is not None
            else sp.csr_matrix((1, len(self._catalog)), dtype=np.float32)
        )
        probabilities = ranker.predict(
            history,
            items,
            self._recommender_scores(user, history),
            user_indices=np.array([-1 if user is None else user], dtype=np.int64),
        )
        reason = None if (history.data > 0).any() else "no-history"
        return PredictResult(
            [(raw, float(p)) for raw, p in zip(raw_item_ids, probabilities, strict=True)],
            fallback_reason=reason,
        )

    def _recommender_scores(self, user: int | None, history: sp.csr_matrix) -> FloatArray | None:
        """The recommender's (1, n_items) scores when the click model was trained on them."""
        recommender = self._scored_by
        if recommender is None:
            return None
        histories = self._histories
        ordered = (
            histories.ordered_users([user])
            if user is not None
            else histories.ordered([np.empty(0, np.int64)])
        )
        return first_row(recommender.score(UserHistories(history, ordered))).reshape(1, -1)
