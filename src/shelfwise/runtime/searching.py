"""The engine's search job: the bundle's search index behind the catalog's filters.

`Engine.search` and `Engine.set_query_cache` delegate here. A re-ranking index
(`RankedSearch`, e.g. hybrid search with LambdaMART) takes the allowed items and the
shopper's history itself; a plain index (BM25, dense) scores every item and the
filters apply as `top_k`'s exclusion mask.
"""

from __future__ import annotations

from shelfwise.retrieval import RankedSearch, SearchIndex, top_k
from shelfwise.retrieval.base import QueryCached
from shelfwise.runtime._scores import first_row
from shelfwise.runtime.catalog import Catalog, Filters
from shelfwise.runtime.histories import Histories
from shelfwise.runtime.results import HINT_QUERY_CHARS, SearchResult, check_k


class SearchJob:
    """Queries over the bundle's search index.

    Args:
        catalog: the served catalog.
        histories: the bundle's users (a known shopper's history personalises ranking).
        index: the bundle's search index; None when the shop has no catalog text.
    """

    def __init__(self, *, catalog: Catalog, histories: Histories, index: SearchIndex | None):
        """Hold the loaded parts."""
        self._catalog = catalog
        self._histories = histories
        self._index = index

    @property
    def available(self) -> bool:
        """True when the bundle holds a search index."""
        return self._index is not None

    def set_query_cache(self, size: int) -> bool:
        """`Engine.set_query_cache`: False when the index encodes no queries."""
        if not isinstance(self._index, QueryCached):
            return False
        self._index.set_query_cache(size)
        return True

    def search(
        self, query: str, k: int, filters: Filters | None, raw_user_id: str | None, explain: bool
    ) -> SearchResult:
        """`Engine.search`: up to `k` matches, or an empty list with a hint."""
        check_k(k)
        text = query.strip()
        if not text:
            return SearchResult([], hint="the query is empty; type a product name or brand")
        index = self._index
        if index is None:
            return SearchResult(
                [], hint="search is not available: this model version has no catalog text"
            )
        blocked = self._catalog.blocked(filters)
        if isinstance(index, RankedSearch):
            hits = index.search(
                text,
                k,
                allowed=~blocked if blocked.any() else None,  # None: no filter to apply
                history=self._histories.items(raw_user_id),
                explain=explain,
            )
            chosen, values, explanations = hits.items, hits.scores, hits.explanations
            # Only an empty, filtered result needs to know whether filters caused it.
            any_match = chosen.size > 0 or (
                bool(blocked.any()) and index.search(text, 1).items.size > 0
            )
        else:
            scores = first_row(index.score(text))
            matched = scores > 0
            chosen, values = top_k(scores, k, exclude=blocked | ~matched)
            explanations = None
            any_match = bool(matched.any())
        if chosen.size:
            items = [
                self._catalog.item(
                    int(i), float(s), explanation=explanations[n] if explanations else None
                )
                for n, (i, s) in enumerate(zip(chosen, values, strict=True))
            ]
            return SearchResult(items)
        shown = text if len(text) <= HINT_QUERY_CHARS else text[:HINT_QUERY_CHARS] + "…"
        if any_match and filters is not None and not filters.is_empty():
            hint = f"products match {shown!r}, but none passes the filters; remove or widen them"
        elif any_match and self._catalog.wanted_stock(filters):  # the server's default
            hint = (
                f"products match {shown!r}, but they are sold out; filters "
                '{"include_out_of_stock": true} lists them'
            )
        else:
            hint = f"no product matches {shown!r}; try fewer or different words"
            if filters is not None and not filters.is_empty():
                hint += ", or remove filters"
        return SearchResult([], hint=hint)
