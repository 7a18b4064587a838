"""Inference over one loaded bundle: recommend, search, similar items.

The engine is read-only after `load_engine`, so one instance serves concurrent
requests. Raw ids are converted to indices here, through maps built once at load.

Fallbacks (SUR's `was_impossible`): when the personalised model cannot answer, the
result comes from the popularity model and says so in `fallback`, with the reason in
`fallback_reason`:

============== ========== ===================================================
reason         fallback   when
============== ========== ===================================================
anonymous-user "popular"  recommend without a user id
unknown-user   "popular"  recommend for a user not in the bundle
no-history     "popular"  recommend for a known user without interactions
no-scores      "popular"  the recommender scores no allowed item above 0
partial-fill   None       personalised items fill part of the list, popular
                          items the rest
no-recommender "popular"  the bundle has no recommender (a shop without events)
no-similar     "popular"  the bundle has no similar-items model
no-neighbours  "popular"  the item has no neighbour with a positive score
============== ========== ===================================================

With a click model (bundle role "ranker", `shelfwise.ranking.ClickModel`), `predict`
gives click probabilities of items for a user (an unknown user or one without history
is scored from an empty history, flagged "no-history"), and `recommend` re-ranks the
recommender's top candidates by probability when the model was kept as a re-ranker
(`rerank` true) and reads the bundle's recommender.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

import numpy as np
import polars as pl
import scipy.sparse as sp

from shelfwise._internal.artifacts import read_csr
from shelfwise.contracts import RAW_USER_ID
from shelfwise.errors import (
    ArtifactError,
    ModelNotAvailableError,
    RequestError,
    UnknownItemError,
)
from shelfwise.package.bundle import (
    HISTORIES_FILE,
    ITEMS_FILE,
    ROLE_POPULAR,
    ROLE_RANKER,
    ROLE_RECOMMENDER,
    ROLE_SEARCH,
    ROLE_SIMILAR,
    SEQUENCES_FILE,
    USERS_FILE,
    BundleManifest,
    model_folder,
    read_bundle_manifest,
    verify_bundle,
)
from shelfwise.ranking import ClickModel
from shelfwise.registry.local import BUNDLES_DIR, BundleStore
from shelfwise.retrieval import (
    RankedSearch,
    Recommender,
    SearchIndex,
    Sequences,
    SequentialRecommender,
    SimilarItems,
    load_recommender,
    load_search_index,
    top_k,
)
from shelfwise.retrieval.base import QueryCached, score_users
from shelfwise.runtime.catalog import BoolArray, Catalog, Filters, IndexArray, ScoredItem
from shelfwise.runtime.precomputed import DEPTH_MARGIN, PrecomputedLists, most_active, precompute

Fallback = Literal["popular"]
POPULAR: Final = "popular"
_HINT_QUERY_CHARS: Final = 64
_T = TypeVar("_T")


@dataclass(frozen=True)
class RecommendResult:
    """Items for a user, best first, and whether a fallback produced them."""

    items: list[ScoredItem]
    fallback: Fallback | None = None
    fallback_reason: str | None = None


@dataclass(frozen=True)
class SearchResult:
    """Items matching a query, best first; `hint` explains an empty list."""

    items: list[ScoredItem]
    hint: str | None = None


@dataclass(frozen=True)
class SimilarResult:
    """Items similar to an item, best first, and whether a fallback produced them."""

    items: list[ScoredItem]
    fallback: Fallback | None = None
    fallback_reason: str | None = None


@dataclass(frozen=True)
class PredictResult:
    """Click probabilities of the asked items, in request order."""

    predictions: list[tuple[str, float]]
    fallback_reason: str | None = None


class Engine:
    """Recommend, search and similar-items over one bundle.

    Build with `load_engine`. Attributes `version`, `manifest`, `catalog` (raw item
    id -> item_index in `catalog.index`) and `user_index` (raw user id -> user_index)
    are fixed at load.
    """

    def __init__(
        self,
        *,
        path: Path,
        manifest: BundleManifest,
        version: str,
        catalog: Catalog,
        user_index: dict[str, int],
        histories: sp.csr_matrix,
        sequences: Sequences | None = None,
        recommender: Recommender | SequentialRecommender | None,
        popular: Recommender | None,
        similar_items: SimilarItems | None,
        search_index: SearchIndex | None,
        ranker: ClickModel | None = None,
    ) -> None:
        """Assemble an engine from loaded parts (use `load_engine`)."""
        self.path = path
        self.manifest = manifest
        self.version = version
        self.catalog = catalog
        self.user_index = user_index
        self._histories = histories
        self._sequences = sequences
        self._recommender = recommender
        self._similar = similar_items
        self._search = search_index
        self._ranker = ranker
        self._precomputed: PrecomputedLists | None = None
        empty = sp.csr_matrix((1, len(catalog)), dtype=np.float32)
        # A search-only bundle (no events) has no popularity: all items tie, catalog order.
        self._popular_scores = (
            _row(popular.score(empty))
            if popular is not None
            else np.zeros(len(catalog), dtype=np.float32)
        )
        # Most popular first, ties by lower item_index: the order every fill uses.
        self._popular_order = np.lexsort((np.arange(len(catalog)), -self._popular_scores)).astype(
            np.int64
        )

    @property
    def has_ranker(self) -> bool:
        """True when the bundle holds a click model."""
        return self._ranker is not None

    @property
    def has_search(self) -> bool:
        """True when the bundle holds a search index."""
        return self._search is not None

    def recommend(
        self,
        raw_user_id: str | None,
        k: int,
        exclude: Sequence[str] = (),
        filters: Filters | None = None,
        *,
        exclude_seen: bool = True,
    ) -> RecommendResult:
        """Up to `k` items for a user, best first.

        Args:
            raw_user_id: the shop's user id; None or unknown gets popular items.
            k: list length (fewer only when filters and exclusions leave fewer items).
            exclude: raw item ids never to return (unknown ids are ignored).
            filters: restrictions applied before ranking.
            exclude_seen: leave out the items in the user's history.

        Raises:
            RequestError: `k` < 1.
        """
        _check_k(k)
        blocked = self.catalog.blocked(filters)
        blocked[self.catalog.indices(exclude)] = True
        user = None if raw_user_id is None else self.user_index.get(raw_user_id)
        if user is None:
            reason = "anonymous-user" if raw_user_id is None else "unknown-user"
            return self._popular_recommendation(blocked, k, reason)
        lists = self._precomputed
        if lists is not None and exclude_seen:
            found = lists.lookup(user, blocked, k)
            if found is not None:
                if found[0].size < k:  # a popular fill must leave the history out too
                    blocked[self._seen(user)] = True
                return self._listed(*found, blocked, k)
        order = self._sequences.row(user) if self._sequences is not None else None
        return self._personalised(user, self._histories[user], order, blocked, k, exclude_seen)

    def set_query_cache(self, size: int) -> bool:
        """Query vectors the search index keeps (LRU); 0 encodes every query.

        Returns:
            False when the bundle's search encodes no queries (BM25 alone, no search).
        """
        if not isinstance(self._search, QueryCached):
            return False
        self._search.set_query_cache(size)
        return True

    @property
    def precomputed(self) -> PrecomputedLists | None:
        """The per-user lists `recommend` answers from, when `precompute` ran."""
        return self._precomputed

    def precompute(
        self,
        max_users: int,
        *,
        max_k: int = 100,
        depth: int | None = None,
        batch_size: int = 256,
        threads: int | None = None,
    ) -> PrecomputedLists | None:
        """Rank the items of the `max_users` most active users now, in batches.

        `recommend` then answers those users from the lists (exactly what it would
        compute; see `shelfwise.runtime.precomputed`), and scores live only when a
        request's filters or exclusions leave a list too short, or `k` exceeds `depth`.
        Call once, before serving the engine.

        Args:
            max_users: how many users (most history entries first); 0 turns it off.
            max_k: the largest `k` requests may ask (the server's bound).
            depth: entries per user; default: the larger of `max_k` and the click
                model's re-ranking pool, plus a margin of 50.
            batch_size: users scored at once.
            threads: batches scored at once; default: one per CPU (at most 4).

        Returns:
            The lists, or None when there is nothing to precompute.
        """
        recommender = self._recommender
        if max_users <= 0 or recommender is None or not self.user_index:
            return None
        reranks = self._reranks()
        pool = self._ranker.candidates if reranks and self._ranker is not None else 0
        histories, sequences = self._histories, self._sequences

        def score(users: IndexArray, rows: sp.csr_matrix) -> np.ndarray[Any, np.dtype[np.float32]]:
            ordered = (
                Sequences.from_rows([sequences.row(int(u)) for u in users])
                if sequences is not None
                else None
            )
            return score_users(recommender, rows, ordered)

        def rerank(
            users: IndexArray,
            rows: sp.csr_matrix,
            scores: np.ndarray[Any, np.dtype[np.float32]],
            items: IndexArray,
        ) -> np.ndarray[Any, np.dtype[np.float32]]:
            assert self._ranker is not None  # reranks
            return self._ranker.predict(rows, items, scores, user_indices=users)

        self._precomputed = precompute(
            histories,
            most_active(histories, max_users),
            score,
            depth=depth if depth is not None else max(pool, max_k) + DEPTH_MARGIN,
            rerank=rerank if reranks else None,
            pool=pool,
            batch_size=batch_size,
            threads=threads if threads is not None else min(4, os.cpu_count() or 1),
        )
        return self._precomputed

    def recommend_from_history(
        self,
        raw_item_ids: Sequence[str],
        k: int,
        *,
        weights: Sequence[float] | None = None,
        raw_user_id: str | None = None,
        exclude: Sequence[str] = (),
        exclude_seen: bool = True,
    ) -> RecommendResult:
        """Up to `k` items for a shopper described by their events, not the bundle's.

        Scores as `recommend` does, but from the given history: what the promotion
        gate uses to re-score any bundle on one frozen test split, and what a session
        of a brand-new user looks like.

        Args:
            raw_item_ids: the items interacted with, oldest first (repeats allowed;
                unknown ids are ignored).
            k: list length.
            weights: one weight per event (default 1.0); weights of one item add up.
            raw_user_id: the shopper, when known to the bundle: the click model then
                reads their user features.
            exclude: raw item ids never to return (unknown ids are ignored).
            exclude_seen: leave out the history's items.

        Raises:
            RequestError: `k` < 1, or `weights` of another length than the items.
        """
        _check_k(k)
        if weights is not None and len(weights) != len(raw_item_ids):
            raise RequestError(
                f"{len(weights)} weights for {len(raw_item_ids)} items; give one per item"
            )
        index = self.catalog.index
        known = [(index[raw], i) for i, raw in enumerate(raw_item_ids) if raw in index]
        items = np.array([item for item, _ in known], dtype=np.int64)
        values = np.ones(items.size, dtype=np.float32)
        if weights is not None:
            values = np.array([weights[i] for _, i in known], dtype=np.float32)
        history = sp.csr_matrix(
            (values, (np.zeros(items.size, dtype=np.int64), items)),
            shape=(1, len(self.catalog)),
            dtype=np.float32,
        )
        history.sum_duplicates()
        user = -1 if raw_user_id is None else self.user_index.get(raw_user_id, -1)
        blocked = self.catalog.blocked(None)
        blocked[self.catalog.indices(exclude)] = True
        return self._personalised(user, history, items, blocked, k, exclude_seen)

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
            return self._popular_recommendation(blocked, k, "no-history")
        if self._recommender is None:
            return self._popular_recommendation(blocked, k, "no-recommender")
        if exclude_seen:
            blocked[seen] = True
        ordered = (
            Sequences.from_rows([order])
            if self._sequences is not None and order is not None
            else None
        )
        scores = _row(score_users(self._recommender, history, ordered))
        chosen, values = self._top_items(user, history, scores, blocked | ~(scores > 0), k)
        return self._listed(chosen, values, blocked, k)

    def _listed(
        self,
        chosen: IndexArray,
        values: np.ndarray[Any, np.dtype[np.float32]],
        blocked: BoolArray,
        k: int,
    ) -> RecommendResult:
        """The result for a ranked list, popular items filling a short one."""
        if chosen.size == 0:
            return self._popular_recommendation(blocked, k, "no-scores")
        items = [self.catalog.item(int(i), float(s)) for i, s in zip(chosen, values, strict=True)]
        if chosen.size == k:
            return RecommendResult(items)
        blocked[chosen] = True
        items += self._popular_items(blocked, k - chosen.size)
        return RecommendResult(items, fallback=None, fallback_reason="partial-fill")

    def search(
        self,
        query: str,
        k: int,
        filters: Filters | None = None,
        raw_user_id: str | None = None,
        *,
        explain: bool = False,
    ) -> SearchResult:
        """Up to `k` items matching `query`, best first; an empty list comes with a hint.

        Args:
            query: free text in any language the index tokenises (Chinese included).
            k: the most items to return.
            filters: restrictions applied before ranking.
            raw_user_id: the shopper; a known user's history personalises the ranking
                when the bundle's search model is a re-ranker that uses it.
            explain: attach each item's top contributing ranking features (when the
                search model has a re-ranker).

        Raises:
            RequestError: `k` < 1.
        """
        _check_k(k)
        text = query.strip()
        if not text:
            return SearchResult([], hint="the query is empty; type a product name or brand")
        if self._search is None:
            return SearchResult(
                [], hint="search is not available: this model version has no catalog text"
            )
        blocked = self.catalog.blocked(filters)
        if isinstance(self._search, RankedSearch):
            hits = self._search.search(
                text,
                k,
                allowed=~blocked if blocked.any() else None,  # None: no filter to apply
                history=self._history_items(raw_user_id),
                explain=explain,
            )
            chosen, values, explanations = hits.items, hits.scores, hits.explanations
            # Only an empty, filtered result needs to know whether filters caused it.
            any_match = chosen.size > 0 or (
                bool(blocked.any()) and self._search.search(text, 1).items.size > 0
            )
        else:
            scores = _row(self._search.score(text))
            matched = scores > 0
            chosen, values = top_k(scores, k, exclude=blocked | ~matched)
            explanations = None
            any_match = bool(matched.any())
        if chosen.size:
            items = [
                self.catalog.item(
                    int(i), float(s), explanation=explanations[n] if explanations else None
                )
                for n, (i, s) in enumerate(zip(chosen, values, strict=True))
            ]
            return SearchResult(items)
        shown = text if len(text) <= _HINT_QUERY_CHARS else text[:_HINT_QUERY_CHARS] + "…"
        if any_match and filters is not None and not filters.is_empty():
            hint = f"products match {shown!r}, but none passes the filters; remove or widen them"
        else:
            hint = f"no product matches {shown!r}; try fewer or different words"
            if filters is not None and not filters.is_empty():
                hint += ", or remove filters"
        return SearchResult([], hint=hint)

    def _history_items(self, raw_user_id: str | None) -> IndexArray | None:
        """The item indices a known user interacted with; None for unknown users."""
        if raw_user_id is None:
            return None
        user = self.user_index.get(raw_user_id)
        if user is None:
            return None
        row = self._histories[user]
        return np.asarray(row.indices, dtype=np.int64)

    def neighbours(self, raw_item_id: str, k: int) -> list[ScoredItem]:
        """Up to `k` true neighbours of an item (positive score), without any popular fill.

        Empty for an unknown item or a bundle without a similar-items model.
        """
        item = self.catalog.index.get(raw_item_id)
        if item is None or self._similar is None or k < 1:
            return []
        found, scores = self._similar.similar(item, k)
        keep = (scores > 0) & (found >= 0) & (found != item)
        return [
            self.catalog.item(int(i), float(s))
            for i, s in zip(found[keep][:k], scores[keep][:k], strict=True)
        ]

    def history_item_ids(self, raw_user_id: str | None) -> list[str]:
        """The raw item ids in a known user's bundle history (empty for unknown users)."""
        items = self._history_items(raw_user_id)
        if items is None:
            return []
        return [self.catalog.raw_item_ids[int(i)] for i in items]

    def similar(self, raw_item_id: str, k: int) -> SimilarResult:
        """Up to `k` items similar to an item, best first.

        Without a similar-items model, or when the item has no neighbours, returns
        the most popular items of the same category (then of any category), flagged.

        Raises:
            UnknownItemError: the item is not in the bundle's catalog.
            RequestError: `k` < 1.
        """
        _check_k(k)
        item = self.catalog.index.get(raw_item_id)
        if item is None:
            raise UnknownItemError(
                f"item {raw_item_id[:_HINT_QUERY_CHARS]!r} is not in the catalog of model "
                f"version {self.version}"
            )
        blocked = np.zeros(len(self.catalog), dtype=np.bool_)
        blocked[item] = True
        chosen: IndexArray = np.empty(0, dtype=np.int64)
        values = np.empty(0, dtype=np.float32)
        reason = "no-similar"
        if self._similar is not None:
            reason = "no-neighbours"
            neighbours, scores = self._similar.similar(item, k)
            keep = (scores > 0) & (neighbours >= 0) & (neighbours != item)
            chosen, values = neighbours[keep][:k], scores[keep][:k]
        items = [self.catalog.item(int(i), float(s)) for i, s in zip(chosen, values, strict=True)]
        if chosen.size == k:
            return SimilarResult(items)
        blocked[chosen] = True
        same = self._popular_items(blocked | ~self.catalog.same_category(item), k - len(items))
        blocked[self.catalog.indices([entry.raw_item_id for entry in same])] = True
        items += same
        items += self._popular_items(blocked, k - len(items))
        if chosen.size:
            return SimilarResult(items, fallback=None, fallback_reason="partial-fill")
        return SimilarResult(items, fallback=POPULAR, fallback_reason=reason)

    def predict(self, raw_user_id: str | None, raw_item_ids: Sequence[str]) -> PredictResult:
        """Click probabilities of `raw_item_ids` for a user, in request order.

        Args:
            raw_user_id: the shop's user id; None or unknown is scored from an empty
                history (`fallback_reason` "no-history", as for a known user without one).
            raw_item_ids: the items to score.

        Raises:
            ModelNotAvailableError: the bundle has no click model.
            UnknownItemError: an item is not in the catalog (the first one is named).
        """
        if self._ranker is None:
            raise ModelNotAvailableError(
                f"model version {self.version} has no click model; retrain with "
                "ranking.enabled true to serve /v1/predict"
            )
        for raw in raw_item_ids:
            if raw not in self.catalog.index:
                raise UnknownItemError(
                    f"item {raw[:_HINT_QUERY_CHARS]!r} is not in the catalog of model "
                    f"version {self.version}"
                )
        items = np.fromiter(
            (self.catalog.index[raw] for raw in raw_item_ids),
            dtype=np.int64,
            count=len(raw_item_ids),
        )
        user = None if raw_user_id is None else self.user_index.get(raw_user_id)
        history = (
            self._histories[user]
            if user is not None
            else sp.csr_matrix((1, len(self.catalog)), dtype=np.float32)
        )
        probabilities = self._ranker.predict(
            history,
            items,
            self._ranker_scores(user, history),
            user_indices=np.array([-1 if user is None else user], dtype=np.int64),
        )
        reason = None if (history.data > 0).any() else "no-history"
        return PredictResult(
            [(raw, float(p)) for raw, p in zip(raw_item_ids, probabilities, strict=True)],
            fallback_reason=reason,
        )

    def _ranker_scores(
        self, user: int | None, history: sp.csr_matrix
    ) -> np.ndarray[Any, np.dtype[np.float32]] | None:
        """The recommender's (1, n_items) scores when the click model was trained on them."""
        ranker, recommender = self._ranker, self._recommender
        if (
            ranker is None
            or recommender is None
            or ranker.retriever != self.manifest.components.get(ROLE_RECOMMENDER)
        ):
            return None
        ordered = None
        if self._sequences is not None:
            row = self._sequences.row(user) if user is not None else np.empty(0, np.int64)
            ordered = Sequences.from_rows([row])
        return _row(score_users(recommender, history, ordered)).reshape(1, -1)

    def _top_items(
        self,
        user: int,
        history: sp.csr_matrix,
        scores: np.ndarray[Any, np.dtype[np.float32]],
        excluded: BoolArray,
        k: int,
    ) -> tuple[IndexArray, np.ndarray[Any, np.dtype[np.float32]]]:
        """The recommender's top `k`, or its top candidates re-ranked by the click model.

        Re-ranking happens only for a click model kept as a re-ranker that reads this
        bundle's recommender; the scores are then click probabilities.
        """
        ranker = self._ranker
        if ranker is None or not self._reranks():
            return top_k(scores, k, exclude=excluded)
        pool, _ = top_k(scores, max(k, ranker.candidates), exclude=excluded)
        if pool.size == 0:
            return pool, np.empty(0, dtype=np.float32)
        probabilities = ranker.predict(
            history,
            pool,
            scores.reshape(1, -1),
            user_indices=np.array([user], dtype=np.int64),
        )
        # stable: equal probabilities keep the recommender's order
        order = np.argsort(-probabilities, kind="stable")[:k]
        return pool[order], probabilities[order].astype(np.float32)

    def _reranks(self) -> bool:
        """True when the click model re-ranks this bundle's recommender."""
        ranker = self._ranker
        return (
            ranker is not None
            and ranker.rerank
            and ranker.retriever == self.manifest.components.get(ROLE_RECOMMENDER)
        )

    def _seen(self, user: int) -> IndexArray:
        """The items of a bundle user's history with a positive weight."""
        histories = self._histories
        start, end = histories.indptr[user], histories.indptr[user + 1]
        items: IndexArray = histories.indices[start:end][histories.data[start:end] > 0]
        return items

    def _popular_recommendation(self, blocked: BoolArray, k: int, reason: str) -> RecommendResult:
        return RecommendResult(
            self._popular_items(blocked, k), fallback=POPULAR, fallback_reason=reason
        )

    def _popular_items(self, blocked: BoolArray, count: int) -> list[ScoredItem]:
        if count <= 0:
            return []
        order = self._popular_order[~blocked[self._popular_order]][:count]
        return [self.catalog.item(int(i), float(self._popular_scores[i])) for i in order]


def load_engine(path: Path, *, verify: bool = True, version: str | None = None) -> Engine:
    """Load a bundle (verifying every file's hash by default) into an `Engine`.

    Args:
        path: a bundle folder, or a state folder / store root whose latest stored
            version is served.
        verify: re-hash every file first; turn off only for trusted local tests.
        version: the version label in responses; default: the store version number
            for `…/bundles/<N>`, else the first 12 characters of the fingerprint.

    Raises:
        BundleNotFoundError: nothing at `path`, or an empty store.
        IntegrityError, ManifestError, ArtifactError: a damaged bundle.
    """
    path = resolve_bundle_path(path)
    manifest = verify_bundle(path) if verify else read_bundle_manifest(path)
    _one_thread_per_request()
    if version is None:
        stored = path.name.isdigit() and path.parent.name == BUNDLES_DIR
        version = path.name if stored else manifest.fingerprint[:12]
    catalog = Catalog(pl.read_parquet(path / ITEMS_FILE))
    users = pl.read_parquet(path / USERS_FILE)[RAW_USER_ID].cast(pl.String()).to_list()
    histories = read_csr(path / HISTORIES_FILE).astype(np.float32)
    if histories.shape != (len(users), len(catalog)):
        raise ArtifactError(
            f"{path / HISTORIES_FILE} has shape {histories.shape}, expected "
            f"({len(users)}, {len(catalog)}); rebuild the bundle"
        )
    components = manifest.components
    recommender = (
        _load_recommender(path, manifest, ROLE_RECOMMENDER)
        if ROLE_RECOMMENDER in components
        else None
    )
    popular: Recommender | None = None
    if ROLE_POPULAR in components:
        loaded = _load_recommender(path, manifest, ROLE_POPULAR)
        if not isinstance(loaded, Recommender):
            raise ArtifactError(f"the popular role needs a matrix recommender, not {loaded.name}")
        popular = loaded
    similar_items: SimilarItems | None = None
    if ROLE_SIMILAR in components:
        model = (
            recommender
            if recommender is not None
            and components[ROLE_SIMILAR] == components.get(ROLE_RECOMMENDER)
            else _load_recommender(path, manifest, ROLE_SIMILAR)
        )
        if not isinstance(model, SimilarItems):
            raise ArtifactError(
                f"model {manifest.components[ROLE_SIMILAR]!r} cannot list similar items; "
                "rebuild the bundle with a similar-items model (e.g. item_knn)"
            )
        similar_items = model
    search_index: SearchIndex | None = None
    located = model_folder(path, manifest, ROLE_SEARCH)
    if located is not None:
        search_index = _guarded(lambda: load_search_index(*located), located[0])
    return Engine(
        path=path,
        manifest=manifest,
        version=version,
        catalog=catalog,
        user_index={raw: index for index, raw in enumerate(users)},
        histories=histories,
        sequences=(
            Sequences.load(path / SEQUENCES_FILE) if (path / SEQUENCES_FILE).is_file() else None
        ),
        recommender=recommender,
        popular=popular,
        similar_items=similar_items,
        search_index=search_index,
        ranker=_load_ranker(path, manifest, len(catalog)),
    )


def _one_thread_per_request() -> None:
    """Run FAISS searches on one thread: a request is one query, and OpenMP threads
    that wait for each other made one exact search 8x slower on a busy 2-core machine
    (38 ms vs 4.9 ms, benchmarks/RESULTS.md). Concurrency comes from requests and
    server workers instead. A no-op when FAISS is not installed.
    """
    try:
        import faiss
    except ImportError:
        return
    faiss.omp_set_num_threads(1)


def resolve_bundle_path(path: Path) -> Path:
    """`path` itself when it is a bundle, else the latest version of the store there.

    Accepts a bundle folder, a state folder holding `bundles/`, or a `bundles/` folder.
    """
    if (path / "manifest.json").is_file() or not path.is_dir():
        return path
    home = path.parent if path.name == BUNDLES_DIR else path
    if (home / BUNDLES_DIR).is_dir():
        latest = BundleStore(home).latest()
        if latest is not None:
            return latest.path
    return path


def _load_recommender(
    path: Path, manifest: BundleManifest, role: str
) -> Recommender | SequentialRecommender:
    located = model_folder(path, manifest, role)
    if located is None:
        raise ArtifactError(f"bundle {path} has no {role!r} model; rebuild the bundle")
    return _guarded(lambda: load_recommender(*located), located[0])


def _load_ranker(path: Path, manifest: BundleManifest, n_items: int) -> ClickModel | None:
    located = model_folder(path, manifest, ROLE_RANKER)
    if located is None:
        return None
    ranker = ClickModel.load(located[1])
    if ranker.n_items != n_items:
        raise ArtifactError(
            f"click model {located[0]!r} knows {ranker.n_items} items but the bundle has "
            f"{n_items}; rebuild the bundle"
        )
    return ranker


def _guarded(load: Callable[[], _T], name: str) -> _T:
    try:
        return load()
    except LookupError as exc:
        raise ArtifactError(
            f"the bundle needs model {name!r}, which this shelfwise cannot load ({exc}); "
            "serve it with the shelfwise version that built it"
        ) from None


def _row(scores: Any) -> np.ndarray[Any, np.dtype[np.float32]]:
    """The first row of a (1, n) score matrix, or a (n,) vector, as float32."""
    array = np.asarray(scores, dtype=np.float32)
    return array[0] if array.ndim == 2 else array


def _check_k(k: int) -> None:
    if k < 1:
        raise RequestError(f"k must be at least 1, got {k}")
