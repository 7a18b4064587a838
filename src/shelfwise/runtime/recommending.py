"""The engine's recommendation job: personalised lists, precomputed lists, popular fills.

`Engine.recommend`, `Engine.recommend_from_history` and `Engine.precompute` delegate
here; the fallback reasons are tabled in `shelfwise.runtime.engine`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from shelfwise.contracts import BoolArray, FloatArray
from shelfwise.contracts import IntArray as IndexArray
from shelfwise.errors import RequestError
from shelfwise.ranking import ClickModel
from shelfwise.retrieval import Recommender, top_k
from shelfwise.retrieval.base import UserHistories
from shelfwise.runtime._scores import first_row
from shelfwise.runtime.catalog import Catalog, Filters
from shelfwise.runtime.histories import Histories
from shelfwise.runtime.popular import PopularFill
from shelfwise.runtime.precomputed import DEPTH_MARGIN, PrecomputedLists, most_active, precompute
from shelfwise.runtime.results import RecommendResult, check_k


class RecommendJob:
    """Lists for bundle users and for histories given with the request.

    Args:
        catalog: the served catalog.
        histories: the bundle's users.
        recommender: the bundle's recommender; None for a shop without events.
        popular: the fill order of fallbacks and short lists.
        reranker: the click model when it re-ranks this recommender's candidates
            (kept as a re-ranker and trained on this recommender), else None.
        exclude_seen: the bundle's repeat policy: False when lists may hold the user's
            own items. Precomputed lists follow it; a request asking otherwise is
            scored live.
    """

    def __init__(
        self,
        *,
        catalog: Catalog,
        histories: Histories,
        recommender: Recommender | None,
        popular: PopularFill,
        reranker: ClickModel | None,
        exclude_seen: bool = True,
    ) -> None:
        """Hold the loaded parts; nothing is computed until `precompute`."""
        self._catalog = catalog
        self._histories = histories
        self._recommender = recommender
        self._popular = popular
        self._reranker = reranker
        self._exclude_seen = exclude_seen
        self.precomputed: PrecomputedLists | None = None

    def recommend(
        self,
        raw_user_id: str | None,
        k: int,
        exclude: Sequence[str],
        filters: Filters | None,
        exclude_seen: bool,
    ) -> RecommendResult:
        """`Engine.recommend`: a precomputed list when one answers, else scored live."""
        check_k(k)
        blocked = self._catalog.blocked(filters)
        blocked[self._catalog.indices(exclude)] = True
        histories = self._histories
        user = None if raw_user_id is None else histories.user_index.get(raw_user_id)
        if user is None:
            reason = "anonymous-user" if raw_user_id is None else "unknown-user"
            return self._popular.recommendation(blocked, k, reason)
        lists = self.precomputed
        # the lists hold what the bundle's policy lists; another policy scores live
        if lists is not None and exclude_seen == lists.exclude_seen:
            found = lists.lookup(user, blocked, k)
            if found is not None:
                if found[0].size < k and exclude_seen:  # a popular fill leaves it out too
                    blocked[histories.seen(user)] = True
                return self._listed(*found, blocked, k)
        return self._personalised(
            user, histories.row(user), histories.order(user), blocked, k, exclude_seen
        )

    def recommend_from_history(
        self,
        raw_item_ids: Sequence[str],
        k: int,
        weights: Sequence[float] | None,
        raw_user_id: str | None,
        exclude: Sequence[str],
        exclude_seen: bool,
        filters: Filters | None = None,
    ) -> RecommendResult:
        """`Engine.recommend_from_history`: the history is built from the request."""
        check_k(k)
        if weights is not None and len(weights) != len(raw_item_ids):
            raise RequestError(
                f"{len(weights)} weights for {len(raw_item_ids)} items; give one per item"
            )
        index = self._catalog.index
        known = [(index[raw], i) for i, raw in enumerate(raw_item_ids) if raw in index]
        items = np.array([item for item, _ in known], dtype=np.int64)
        values = np.ones(items.size, dtype=np.float32)
        if weights is not None:
            values = np.array([weights[i] for _, i in known], dtype=np.float32)
        history = sp.csr_matrix(
            (values, (np.zeros(items.size, dtype=np.int64), items)),
            shape=(1, len(self._catalog)),
            dtype=np.float32,
        )
        history.sum_duplicates()
        user = -1 if raw_user_id is None else self._histories.user_index.get(raw_user_id, -1)
        blocked = self._catalog.blocked(filters)
        blocked[self._catalog.indices(exclude)] = True
        return self._personalised(user, history, items, blocked, k, exclude_seen)

    def precompute(
        self, max_users: int, *, max_k: int, depth: int | None, batch_size: int, threads: int | None
    ) -> PrecomputedLists | None:
        """`Engine.precompute`: rank the most active users' items in batches."""
        recommender = self._recommender
        histories = self._histories
        if max_users <= 0 or recommender is None or not histories.user_index:
            return None
        reranker = self._reranker
        pool = reranker.candidates if reranker is not None else 0

        def score(users: IndexArray, rows: sp.csr_matrix) -> FloatArray:
            return recommender.score(UserHistories(rows, histories.ordered_users(users)))

        def rerank(
            users: IndexArray, rows: sp.csr_matrix, scores: FloatArray, items: IndexArray
        ) -> FloatArray:
            assert reranker is not None  # passed only with a re-ranker
            return reranker.predict(rows, items, scores, user_indices=users)

        self.precomputed = precompute(
            histories.matrix,
            most_active(histories.matrix, max_users),
            score,
            depth=depth if depth is not None else max(pool, max_k) + DEPTH_MARGIN,
            rerank=rerank if reranker is not None else None,
            pool=pool,
            batch_size=batch_size,
            threads=threads if threads is not None else min(4, os.cpu_count() or 1),
            exclude_seen=self._exclude_seen,
        )
        return self.precomputed

    def history_item_ids(self, raw_user_id: str | None) -> list[str]:
        """`Engine.history_item_ids`: raw ids of a known user's bundle history."""
        items = self._histories.items(raw_user_id)
        if items is None:
            return []
        return [self._catalog.raw_item_ids[int(i)] for i in items]

    def _personalised(
        self,
        user: int,
        history: sp.csr_matrix,
        order: IndexArray | None,
        blocked: BoolArray,
        k: int,
        exclude_seen: bool,
    ) -> RecommendResult:
        """The recommender's list for one history (user -1: not in the bundle)."""
        seen = history.indices[history.data > 0]
        if seen.size == 0:
            return self._popular.recommendation(blocked, k, "no-history")
        if self._recommender is None:
            return self._popular.recommendation(blocked, k, "no-recommender")
        if exclude_seen:
            blocked[seen] = True
        ordered = self._histories.ordered([order]) if order is not None else None
        scores = first_row(self._recommender.score(UserHistories(history, ordered)))
        chosen, values = self._top_items(user, history, scores, blocked | ~(scores > 0), k)
        return self._listed(chosen, values, blocked, k)

    def _listed(
        self, chosen: IndexArray, values: FloatArray, blocked: BoolArray, k: int
    ) -> RecommendResult:
        """The result for a ranked list, popular items filling a short one."""
        if chosen.size == 0:
            return self._popular.recommendation(blocked, k, "no-scores")
        catalog = self._catalog
        items = [catalog.item(int(i), float(s)) for i, s in zip(chosen, values, strict=True)]
        if chosen.size == k:
            return RecommendResult(items)
        blocked[chosen] = True
        items += self._popular.items(blocked, k - chosen.size)
        return RecommendResult(items, fallback=None, fallback_reason="partial-fill")

    def _top_items(
        self,
        user: int,
        history: sp.csr_matrix,
        scores: FloatArray,
        excluded: BoolArray,
        k: int,
    ) -> tuple[IndexArray, FloatArray]:
        """The recommender's top `k`, or its top candidates re-ranked by the click model.

        With a re-ranker the scores are click probabilities.
        """
        reranker = self._reranker
        if reranker is None:
            return top_k(scores, k, exclude=excluded)
        pool, _ = top_k(scores, max(k, reranker.candidates), exclude=excluded)
        if pool.size == 0:
            return pool, np.empty(0, dtype=np.float32)
        probabilities = reranker.predict(
            history,
            pool,
            scores.reshape(1, -1),
            user_indices=np.array([user], dtype=np.int64),
        )
        # stable: equal probabilities keep the recommender's order
        order = np.argsort(-probabilities, kind="stable")[:k]
        return pool[order], probabilities[order].astype(np.float32)
