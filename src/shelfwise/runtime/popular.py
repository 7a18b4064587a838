"""The popularity order every fallback and partial fill of the engine lists items in."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from shelfwise.contracts import BoolArray
from shelfwise.retrieval import Recommender
from shelfwise.runtime._scores import first_row
from shelfwise.runtime.catalog import Catalog, ScoredItem
from shelfwise.runtime.results import POPULAR, RecommendResult


class PopularFill:
    """The bundle's most popular items, scored once at load.

    Args:
        catalog: the served catalog.
        popular: the bundle's popularity model; None for a search-only bundle (a shop
            without events), where every item ties and catalog order decides.
    """

    def __init__(self, catalog: Catalog, popular: Recommender | None) -> None:
        """Score every item with the popularity model and fix the fill order."""
        self._catalog = catalog
        empty = sp.csr_matrix((1, len(catalog)), dtype=np.float32)
        self.scores = (
            first_row(popular.score(empty))
            if popular is not None
            else np.zeros(len(catalog), dtype=np.float32)
        )
        # Most popular first, ties by lower item_index: the order every fill uses.
        self.order = np.lexsort((np.arange(len(catalog)), -self.scores)).astype(np.int64)

    def items(self, blocked: BoolArray, count: int) -> list[ScoredItem]:
        """Up to `count` of the most popular items not `blocked`, best first."""
        if count <= 0:
            return []
        order = self.order[~blocked[self.order]][:count]
        return [self._catalog.item(int(i), float(self.scores[i])) for i in order]

    def recommendation(self, blocked: BoolArray, k: int, reason: str) -> RecommendResult:
        """A popular list of up to `k` items, flagged as the fallback for `reason`."""
        return RecommendResult(self.items(blocked, k), fallback=POPULAR, fallback_reason=reason)
