"""Inference over one loaded bundle: recommend, search, similar items, predict.

The engine is read-only after `load_engine`, so one instance serves concurrent
requests. Raw ids are converted to indices here, through maps built once at load.
`Engine` is a facade over one small job per concern, sharing the loaded parts:

=================  ===============================================================
job (module)       answers
=================  ===============================================================
`recommending`     `recommend`, `recommend_from_history`, `precompute` (per-user
                   lists, `precomputed`), `history_item_ids`
`searching`        `search`, `set_query_cache`
`similar_items`    `similar`, `neighbours`
`predicting`       `predict` (the click model)
`popular`          the popularity order every fallback and partial fill uses
`loading`          `read_bundle`, `resolve_bundle_path`: the bundle into loaded parts
=================  ===============================================================

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

`event_weights` are the weights the bundle's histories were built with (config
`models.event_weights`, saved in the bundle); the online role weighs live events with
them (`shelfwise.runtime.realtime`), so serving and training agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import scipy.sparse as sp

from shelfwise._internal.sequences import Sequences
from shelfwise.contracts import EventType
from shelfwise.package.bundle import ROLE_RECOMMENDER, BundleManifest
from shelfwise.ranking import ClickModel
from shelfwise.retrieval import Recommender, SearchIndex, SimilarItems
from shelfwise.runtime.catalog import Catalog, Filters, ScoredItem
from shelfwise.runtime.explain import Explainer
from shelfwise.runtime.histories import Histories
from shelfwise.runtime.live_catalog import (
    LiveCatalog,
    is_new_item,
    is_removed,
    merge_ranked,
    search_new_items,
    similar_of_new_item,
    with_new_neighbours,
    with_new_recommendations,
)
from shelfwise.runtime.loading import read_bundle, serving_event_weights
from shelfwise.runtime.popular import PopularFill
from shelfwise.runtime.precomputed import PrecomputedLists
from shelfwise.runtime.predicting import PredictJob
from shelfwise.runtime.recommending import RecommendJob
from shelfwise.runtime.results import (
    POPULAR,
    PredictResult,
    RecommendResult,
    SearchResult,
    SimilarResult,
    check_k,
    unknown_item,
)
from shelfwise.runtime.searching import SearchJob
from shelfwise.runtime.similar_items import SimilarJob

# What `Engine.release` drops: everything but the labels (path, manifest, version).
_LOADED_PARTS = (
    "catalog",
    "user_index",
    "event_weights",
    "_recommending",
    "_session",
    "_searching",
    "_similar",
    "_predicting",
    "_fill",
    "_users",
    "_search_index",
    "explainer",
)


class Engine:
    """Recommend, search, similar items and click predictions over one bundle.

    Build with `load_engine`. Attributes `path`, `version`, `manifest`, `catalog` (raw
    item id -> item_index in `catalog.index`), `user_index` (raw user id ->
    user_index) and `event_weights` (event type -> weight of a live event) are fixed at
    load.
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
        recommender: Recommender | None,
        popular: Recommender | None,
        similar_items: SimilarItems | None,
        search_index: SearchIndex | None,
        ranker: ClickModel | None = None,
        event_weights: Mapping[EventType, float] | None = None,
        repeat_policy: str = "exclude",
        session_model: Recommender | None = None,
    ) -> None:
        """Assemble an engine from loaded parts (use `load_engine`).

        `event_weights` None (a bundle without them) means the config defaults;
        `repeat_policy` "allow" lets lists hold the user's own items by default;
        `session_model` (bundle role "session") scores histories asked with
        `recommend_from_history(..., session=True)`.
        """
        self.path = path
        self.manifest = manifest
        self.version = version
        self.catalog = catalog
        self.user_index = user_index
        self.event_weights: Mapping[EventType, float] = serving_event_weights(event_weights)
        self.repeat_policy = repeat_policy
        users = Histories(user_index, histories, sequences)
        fill = PopularFill(catalog, popular)
        # kept for the live catalog's paths (new items, `runtime.live_catalog`)
        self._fill, self._users, self._search_index = fill, users, search_index
        # The click model reads this bundle's recommender only when it was trained on it.
        reads_recommender = (
            ranker is not None
            and recommender is not None
            and ranker.retriever == manifest.components.get(ROLE_RECOMMENDER)
        )
        self._recommending = RecommendJob(
            catalog=catalog,
            histories=users,
            recommender=recommender,
            popular=fill,
            reranker=ranker if reads_recommender and ranker is not None and ranker.rerank else None,
            exclude_seen=repeat_policy != "allow",
        )
        # the session model answers visits (inline histories, session ids): its own job,
        # no click model (trained on the recommender's candidates, not on sessions); it
        # reads a visit's order even from a bundle that keeps no user sequences
        self._session = (
            RecommendJob(
                catalog=catalog,
                histories=users
                if sequences is not None
                else Histories(user_index, histories, Sequences.from_rows([])),
                recommender=session_model,
                popular=fill,
                reranker=None,
                exclude_seen=repeat_policy != "allow",
            )
            if session_model is not None
            else None
        )
        self._searching = SearchJob(catalog=catalog, histories=users, index=search_index)
        self._similar = SimilarJob(
            catalog=catalog, model=similar_items, popular=fill, version=version
        )
        # reasons for `explain: true` and item vectors for diversity (`runtime.explain`)
        self.explainer = Explainer(
            catalog=catalog,
            histories=users,
            recommender=recommender,
            reranker=ranker if reads_recommender and ranker is not None and ranker.rerank else None,
            search_index=search_index,
            similar=self._similar,
        )
        self._predicting = PredictJob(
            catalog=catalog,
            histories=users,
            ranker=ranker,
            scored_by=recommender if reads_recommender else None,
            version=version,
        )
        self._has_ranker = ranker is not None

    def release(self) -> None:
        """Drop the loaded parts: arrays, indexes, precomputed lists, query caches.

        For a server after a swap, once no request uses this engine any more
        (`serve/loader.py` waits for that): reference counting then frees the memory at
        once, the search index's query cache included. `path`, `manifest` and `version`
        stay for logs; anything else raises AttributeError afterwards.
        """
        self._searching.set_query_cache(0)
        for name in _LOADED_PARTS:
            vars(self).pop(name, None)

    @property
    def has_ranker(self) -> bool:
        """True when the bundle holds a click model."""
        return self._has_ranker

    @property
    def has_session_model(self) -> bool:
        """True when the bundle holds a session model (role "session")."""
        return self._session is not None

    @property
    def has_search(self) -> bool:
        """True when the bundle holds a search index."""
        return self._searching.available

    @property
    def exclude_seen(self) -> bool:
        """The bundle's default: False when its repeat policy lets lists hold own items."""
        return self.repeat_policy != "allow"

    @property
    def precomputed(self) -> PrecomputedLists | None:
        """The per-user lists `recommend` answers from, when `precompute` ran."""
        return self._recommending.precomputed

    def recommend(
        self,
        raw_user_id: str | None,
        k: int,
        exclude: Sequence[str] = (),
        filters: Filters | None = None,
        *,
        exclude_seen: bool | None = None,
    ) -> RecommendResult:
        """Up to `k` items for a user, best first.

        Args:
            raw_user_id: the shop's user id; None or unknown gets popular items.
            k: list length (fewer only when filters and exclusions leave fewer items).
            exclude: raw item ids never to return (unknown ids are ignored).
            filters: restrictions applied before ranking.
            exclude_seen: leave out the items in the user's history; None = the
                bundle's repeat policy (`exclude_seen`).

        Raises:
            RequestError: `k` < 1.
        """
        if exclude_seen is None:
            exclude_seen = self.exclude_seen
        result = self._recommending.recommend(raw_user_id, k, exclude, filters, exclude_seen)
        if self.catalog.overrides is None:  # no live update: the bundle's answer as it is
            return result
        items = with_new_recommendations(
            self.catalog,
            self._users.items(raw_user_id),
            result.items,
            k,
            filters=filters,
            exclude=exclude,
        )
        return replace(result, items=items) if items is not result.items else result

    def recommend_from_history(
        self,
        raw_item_ids: Sequence[str],
        k: int,
        *,
        weights: Sequence[float] | None = None,
        raw_user_id: str | None = None,
        exclude: Sequence[str] = (),
        exclude_seen: bool | None = None,
        session: bool = False,
        filters: Filters | None = None,
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
            exclude_seen: leave out the history's items; None = the bundle's policy.
            session: the history is one visit: the bundle's session model scores it
                when it has one (else the recommender, as without the flag).
            filters: restrictions applied before ranking (None: the catalog's default,
                sold-out items hidden when the server hides them).

        Raises:
            RequestError: `k` < 1, or `weights` of another length than the items.
        """
        job = self._session if session and self._session is not None else self._recommending
        return job.recommend_from_history(
            raw_item_ids,
            k,
            weights,
            raw_user_id,
            exclude,
            self.exclude_seen if exclude_seen is None else exclude_seen,
            filters,
        )

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
        return self._recommending.precompute(
            max_users, max_k=max_k, depth=depth, batch_size=batch_size, threads=threads
        )

    def history_item_ids(self, raw_user_id: str | None) -> list[str]:
        """The raw item ids in a known user's bundle history (empty for unknown users)."""
        return self._recommending.history_item_ids(raw_user_id)

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
        result = self._searching.search(query, k, filters, raw_user_id, explain)
        if self.catalog.overrides is None:
            return result
        new = search_new_items(self.catalog, query.strip(), filters, k) if query.strip() else []
        if not new:
            return result
        return replace(result, items=merge_ranked(result.items, new, k), hint=None)

    def set_query_cache(self, size: int) -> bool:
        """Query vectors the search index keeps (LRU); 0 encodes every query.

        Returns:
            False when the bundle's search encodes no queries (BM25 alone, no search).
        """
        return self._searching.set_query_cache(size)

    def similar(self, raw_item_id: str, k: int) -> SimilarResult:
        """Up to `k` items similar to an item, best first.

        Without a similar-items model, or when the item has no neighbours, returns
        the most popular items of the same category (then of any category), flagged.

        Raises:
            UnknownItemError: the item is not in the bundle's catalog.
            RequestError: `k` < 1.
        """
        catalog = self.catalog
        if catalog.overrides is None:
            return self._similar.similar(raw_item_id, k)
        if is_removed(catalog, raw_item_id):  # deleted or hidden: gone from every endpoint
            raise unknown_item(raw_item_id, self.version)
        if is_new_item(catalog, raw_item_id):
            check_k(k)
            items = similar_of_new_item(catalog, raw_item_id, k)
            if len(items) == k:
                return SimilarResult(items)
            blocked = catalog.blocked(None)
            blocked[catalog.indices([item.raw_item_id for item in items])] = True
            filled = items + self._fill.items(blocked, k - len(items))
            if items:
                return SimilarResult(filled, fallback=None, fallback_reason="partial-fill")
            return SimilarResult(filled, fallback=POPULAR, fallback_reason="no-neighbours")
        result = self._similar.similar(raw_item_id, k)
        items = with_new_neighbours(catalog, catalog.index[raw_item_id], result.items, k)
        return replace(result, items=items) if items is not result.items else result

    def attach_live(self, live: LiveCatalog) -> None:
        """Serve `live`'s item updates through this engine (before it is swapped in).

        Updates of items this bundle knows apply when newer than its data cutoff
        (lineage `data_cutoff_timestamp`); new items join its side index.
        """
        cutoff = self.manifest.lineage.get("data_cutoff_timestamp")
        live.attach(
            self.catalog,
            search_index=self._search_index,
            cutoff_s=float(cutoff) if isinstance(cutoff, int | float) else None,
        )

    def neighbours(self, raw_item_id: str, k: int) -> list[ScoredItem]:
        """Up to `k` true neighbours of an item (positive score), without any popular fill.

        Empty for an unknown item or a bundle without a similar-items model.
        """
        return self._similar.neighbours(raw_item_id, k)

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
        return self._predicting.predict(raw_user_id, raw_item_ids)


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
    bundle = read_bundle(path, verify=verify, version=version)
    return Engine(
        path=bundle.path,
        manifest=bundle.manifest,
        version=bundle.version,
        catalog=bundle.catalog,
        user_index=bundle.user_index,
        histories=bundle.histories,
        sequences=bundle.sequences,
        recommender=bundle.recommender,
        popular=bundle.popular,
        similar_items=bundle.similar_items,
        search_index=bundle.search_index,
        ranker=bundle.ranker,
        event_weights=bundle.event_weights,
        repeat_policy=bundle.repeat_policy,
        session_model=bundle.session,
    )
