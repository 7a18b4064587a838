"""The engine's similar-items job: an item's neighbours, filled with popular items.

`Engine.similar` (with its popular fill and fallback) and `Engine.neighbours` (true
neighbours only, for the real-time blend in `shelfwise.runtime.realtime`) delegate here.
"""

from __future__ import annotations

import numpy as np

from shelfwise.contracts import IntArray as IndexArray
from shelfwise.retrieval import SimilarItems
from shelfwise.runtime.catalog import Catalog, ScoredItem
from shelfwise.runtime.popular import PopularFill
from shelfwise.runtime.results import POPULAR, SimilarResult, check_k, unknown_item

# Neighbours asked for beyond `k` when items were removed online, so a list stays full
# (a removed neighbour is dropped after the model's top-k).
_MAX_EXTRA = 100


class SimilarJob:
    """Neighbours from the bundle's similar-items model.

    Args:
        catalog: the served catalog.
        model: the bundle's similar-items model; None when the bundle has none.
        popular: the fill order for items without (enough) neighbours.
        version: the model version named in errors.
    """

    def __init__(
        self, *, catalog: Catalog, model: SimilarItems | None, popular: PopularFill, version: str
    ) -> None:
        """Hold the loaded parts."""
        self._catalog = catalog
        self._model = model
        self._popular = popular
        self._version = version

    def neighbours(self, raw_item_id: str, k: int) -> list[ScoredItem]:
        """`Engine.neighbours`: true neighbours (positive score), no popular fill."""
        item = self._catalog.index.get(raw_item_id)
        if item is None or self._model is None or k < 1:
            return []
        removed = self._catalog.blocked(None)  # items deleted or hidden online
        found, scores = self._model.similar(item, k + min(int(removed.sum()), _MAX_EXTRA))
        keep = (scores > 0) & (found >= 0) & (found != item)
        keep[keep] = ~removed[found[keep]]
        return [
            self._catalog.item(int(i), float(s))
            for i, s in zip(found[keep][:k], scores[keep][:k], strict=True)
        ]

    def similar(self, raw_item_id: str, k: int) -> SimilarResult:
        """`Engine.similar`: neighbours, then popular items of the category, then any."""
        check_k(k)
        catalog = self._catalog
        item = catalog.index.get(raw_item_id)
        if item is None:
            raise unknown_item(raw_item_id, self._version)
        blocked = catalog.blocked(None)  # items deleted or hidden online
        removed = int(blocked.sum())
        blocked[item] = True
        chosen: IndexArray = np.empty(0, dtype=np.int64)
        values = np.empty(0, dtype=np.float32)
        reason = "no-similar"
        if self._model is not None:
            reason = "no-neighbours"
            neighbours, scores = self._model.similar(item, k + min(removed, _MAX_EXTRA))
            keep = (scores > 0) & (neighbours >= 0) & (neighbours != item)
            keep[keep] = ~blocked[neighbours[keep]]
            chosen, values = neighbours[keep][:k], scores[keep][:k]
        items = [catalog.item(int(i), float(s)) for i, s in zip(chosen, values, strict=True)]
        if chosen.size == k:
            return SimilarResult(items)
        blocked[chosen] = True
        same = self._popular.items(blocked | ~catalog.same_category(item), k - len(items))
        blocked[catalog.indices([entry.raw_item_id for entry in same])] = True
        items += same
        items += self._popular.items(blocked, k - len(items))
        if chosen.size:
            return SimilarResult(items, fallback=None, fallback_reason="partial-fill")
        return SimilarResult(items, fallback=POPULAR, fallback_reason=reason)
