"""The live catalog: item updates served at once, without retraining.

`LiveCatalog` holds every change the server accepted (`PUT /v1/items`, `DELETE
/v1/items/{id}`, its catalog log replayed at start, other replicas' changes from the
Redis stream), merged field by field: the change with the highest (version, origin)
stamp sets a field, so changes arriving in any order, or twice, give one catalog.

Each served engine's catalog gets an immutable snapshot (`Catalog.overrides`) built
from the merged changes and swapped in by one reference assignment, so a request sees
either all of a batch or none of it:

* bundle items: updated display fields, filter arrays (stock, price, category, brand)
  and a `removed` mask for deleted or hidden items, which every path blocks;
* new items (ids the bundle does not know): the side index (`runtime.live_side`):
  BM25 over their text, their vectors when the bundle's search is dense or hybrid,
  and their neighbours among the bundle's items by the bundle's own search scores.
  `search_new_items` merges its hits with the bundle's by reciprocal rank;
  `similar_of_new_item` lists a new item's neighbours; `with_new_neighbours` and
  `with_new_recommendations` add new items to the similar items of their neighbours
  and to the lists of shoppers whose recent items they are close to: a content model
  that needs no event.

A swap to another bundle attaches it (`attach`): changes to items the new bundle
knows apply only when newer than its data cutoff; new items stay in the side index
until a bundle knows them.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from shelfwise.contracts import IntArray as IndexArray
from shelfwise.retrieval import SearchIndex
from shelfwise.retrieval.dense import DenseSearch
from shelfwise.runtime.catalog import Catalog, Display, Filters, Overrides, ScoredItem
from shelfwise.runtime.live_side import SideEntry, SideIndex, item_text, make_entry
from shelfwise.stores.catalog_log import DELETE, CatalogChange
from shelfwise.text.tokenize import tokenize

Stamp = tuple[int, str]
RRF_K: Final = 60.0  # the fusion constant of hybrid search (`search.hybrid`)
# A new item counts as a dense search hit from this cosine up: without it every new
# item would match every query (a cosine always exists).
DENSE_MIN_COSINE: Final = 0.5
# A new item joins a shopper's list when one of their recent items is among its
# neighbours with at least this affinity (its search score over the new item's best
# neighbour's): half as close as its closest bundle item.
RECOMMEND_MIN_AFFINITY: Final = 0.5
HISTORY_ITEMS_COMPARED: Final = 20  # the latest items of a history a new item is compared with
WARM_TITLES: Final = 200  # titles tokenised when a catalog is attached (`_warm_tokenizer`)


def _new_share(k: int) -> int:
    """New items one recommendation list may hold: a fifth, at least one."""
    return max(1, k // 5)


@dataclass(frozen=True)
class LiveView:
    """What a catalog snapshot keeps for the live paths (`Overrides.extension`)."""

    version: int
    side: SideIndex | None
    search_index: SearchIndex | None
    dense: DenseSearch | None


@dataclass
class _Target:
    catalog: weakref.ref[Catalog]
    search_index: SearchIndex | None
    cutoff_ns: int | None
    # (text, title, category) -> what a new item's text gives: a new item is tokenised,
    # encoded and searched once, on arrival, not on every rebuild
    entries: dict[tuple[str, Any, Any], SideEntry] = field(default_factory=dict)
    # the last side index and the new items it was built from: a batch that changes
    # only bundle items (stock, prices) reuses it
    side: tuple[list[tuple[str, dict[str, Any]]], SideIndex | None] = ([], None)


class LiveCatalog:
    """Changes accepted online, applied to every attached catalog at once.

    Args:
        hide_out_of_stock: the server's `serve.hide_out_of_stock`, set on every
            attached catalog (`Catalog.hide_out_of_stock`): items known to be sold out
            leave every list unless a request asks for them.
    """

    def __init__(self, *, hide_out_of_stock: bool = False) -> None:
        """Start empty."""
        self.hide_out_of_stock = hide_out_of_stock
        self._fields: dict[str, dict[str, tuple[Stamp, Any]]] = {}
        self._lock = threading.Lock()
        self._targets: list[_Target] = []
        self.version = 0
        self.changes_applied = 0

    def apply(self, changes: Sequence[CatalogChange]) -> int:
        """Merge changes and swap a new snapshot into every attached catalog.

        Returns:
            The live catalog's version after the batch (one more per call).
        """
        with self._lock:
            for change in changes:
                entry = self._fields.setdefault(change.raw_item_id, {})
                values: dict[str, Any] = {"deleted": change.op == DELETE, **change.fields}
                for name, value in values.items():
                    held = entry.get(name)
                    if held is None or held[0] < change.stamp:
                        entry[name] = (change.stamp, value)
            self.version += 1
            self.changes_applied += len(changes)
            self._targets = [t for t in self._targets if t.catalog() is not None]
            for target in self._targets:
                self._refresh(target)
            return self.version

    def attach(
        self, catalog: Catalog, *, search_index: SearchIndex | None, cutoff_s: float | None
    ) -> None:
        """Serve the changes through `catalog` (a bundle being swapped in).

        Args:
            catalog: the engine's catalog.
            search_index: the engine's search index (its tokenizer and dense encoder
                index new items; its scores rank the bundle's items against them).
            cutoff_s: the bundle's data cutoff (unix seconds): older changes to items
                it knows are already in it; None applies all.
        """
        _warm_tokenizer(catalog)
        with self._lock:
            catalog.hide_out_of_stock = self.hide_out_of_stock
            self._targets = [t for t in self._targets if t.catalog() not in (None, catalog)]
            target = _Target(
                weakref.ref(catalog),
                search_index,
                None if cutoff_s is None else int(cutoff_s * 1e9),
            )
            self._targets.append(target)
            if self._fields:
                self._refresh(target)

    def detach(self, catalog: Catalog | None = None, *, clear: bool = True) -> None:
        """Stop updating `catalog` (all catalogs when None).

        Args:
            catalog: the catalog to detach; None: all.
            clear: drop its snapshot and the server's stock default too (False for an
                engine swapped out, whose requests in flight keep what they started with).
        """
        with self._lock:
            keep = []
            for target in self._targets:
                attached = target.catalog()
                if attached is not None and catalog not in (None, attached):
                    keep.append(target)
                elif attached is not None and clear:
                    attached.overrides = None
                    attached.hide_out_of_stock = False
            self._targets = keep

    def current(self, raw_item_id: str) -> dict[str, Any] | None:
        """The merged fields of a changed item (with "deleted"), None when unchanged."""
        with self._lock:
            entry = self._fields.get(raw_item_id)
            return None if entry is None else {name: held[1] for name, held in entry.items()}

    def _refresh(self, target: _Target) -> None:
        catalog = target.catalog()
        if catalog is None:
            return
        display: dict[int, Display] = {}
        removed: list[int] = []
        new: list[tuple[str, dict[str, Any]]] = []
        for raw, entry in self._fields.items():
            item = catalog.index.get(raw)
            if item is None:
                values = {name: held[1] for name, held in entry.items()}
                if not values.get("deleted") and not values.get("hidden") and values.get("title"):
                    new.append((raw, values))
                continue
            cutoff = target.cutoff_ns
            fresh = {
                name: held[1]
                for name, held in entry.items()
                if cutoff is None or held[0][0] > cutoff
            }
            if not fresh:
                continue
            if fresh.get("deleted") or fresh.get("hidden"):
                removed.append(item)
            base = _bundle_fields(catalog, item)
            display[item] = (
                fresh.get("title", base.title),
                fresh.get("category", base.category),
                fresh.get("brand", base.brand),
                fresh.get("price", base.price),
                fresh.get("in_stock", base.in_stock),
            )
        dense = _dense_of(target.search_index)
        view = LiveView(
            version=self.version,
            side=self._side_of(target, catalog, new, dense),
            search_index=target.search_index,
            dense=dense,
        )
        catalog.overrides = catalog.with_updates(display, removed, view)

    @staticmethod
    def _side_of(
        target: _Target,
        catalog: Catalog,
        new: list[tuple[str, dict[str, Any]]],
        dense: DenseSearch | None,
    ) -> SideIndex | None:
        """The side index of the new items: the last one when they did not change."""
        if not new:
            return None
        if new != target.side[0]:
            entries = []
            for _, values in new:
                key = (item_text(values), values.get("title"), values.get("category"))
                entry = target.entries.get(key)
                if entry is None:
                    entry = make_entry(values, catalog, target.search_index, dense)
                    target.entries[key] = entry
                entries.append(entry)
            side = SideIndex([raw for raw, _ in new], [values for _, values in new], entries)
            target.side = (new, side)
        return target.side[1]


def _warm_tokenizer(catalog: Catalog) -> None:
    """Tokenise a sample of the catalog's titles, so the first new item does not pay
    what a language's first text loads.

    New items are tokenised on arrival (`make_entry`). The first Chinese text loads
    jieba's dictionary: 2.6 s and 65 MB on the shared 2-core machine, holding the GIL,
    so the first PUT took 1.4 s and a replica's first change was visible after 7.6 s,
    every batch queued behind it too (`serve_load.py --item-updates-per-s`, "slowest").
    Only a catalog with such text in its sample pays it, here, before serving.
    """
    titles = catalog.titles
    step = max(1, len(titles) // WARM_TITLES)
    tokenize(" ".join(title for title in titles[::step] if isinstance(title, str)))


def _bundle_fields(catalog: Catalog, item: int) -> ScoredItem:
    """An item's fields as the bundle has them (ignoring the current snapshot)."""
    return ScoredItem(
        raw_item_id=catalog.raw_item_ids[item],
        score=0.0,
        title=catalog.titles[item],
        category=catalog.categories[item],
        brand=catalog.brands[item],
        price=catalog.prices[item],
        in_stock=catalog.in_stock[item],
    )


def _dense_of(index: SearchIndex | None) -> DenseSearch | None:
    """The dense index of a search index (itself, or a hybrid's), if any."""
    if isinstance(index, DenseSearch):
        return index
    dense = getattr(index, "dense", None)
    return dense if isinstance(dense, DenseSearch) else None


def live_view(catalog: Catalog) -> tuple[Overrides, LiveView] | None:
    """The catalog's current snapshot and its live part, None without updates."""
    over = catalog.overrides
    if over is None or not isinstance(over.extension, LiveView):
        return None
    return over, over.extension


def is_removed(catalog: Catalog, raw_item_id: str) -> bool:
    """True for an item deleted or hidden online."""
    over = catalog.overrides
    return over is not None and raw_item_id in over.removed_ids


def is_new_item(catalog: Catalog, raw_item_id: str) -> bool:
    """True for an item the bundle does not know but the live catalog serves."""
    found = live_view(catalog)
    return found is not None and found[1].side is not None and raw_item_id in found[1].side.index


def merge_ranked(
    base: list[ScoredItem], extra: list[ScoredItem], k: int, *, limit: int | None = None
) -> list[ScoredItem]:
    """Two ranked lists fused by reciprocal rank (ties: the bundle's first), `k` long.

    Scores of different models are not comparable, ranks are (as in hybrid search).
    """
    extra = extra[:limit] if limit is not None else extra
    if not extra:
        return base[:k]
    seen = {item.raw_item_id for item in base}
    ranked = [(1 / (RRF_K + r), 0, r, item) for r, item in enumerate(base)]
    ranked += [
        (1 / (RRF_K + r), 1, r, item)
        for r, item in enumerate(extra)
        if item.raw_item_id not in seen
    ]
    ranked.sort(key=lambda entry: (-entry[0], entry[1], entry[2]))
    return [entry[3] for entry in ranked[:k]]


def search_new_items(
    catalog: Catalog, query: str, filters: Filters | None, k: int
) -> list[ScoredItem]:
    """New items matching `query`: BM25 hits and dense cosine >= `DENSE_MIN_COSINE`,
    fused by reciprocal rank."""
    found = live_view(catalog)
    if found is None or found[1].side is None:
        return []
    view = found[1]
    side = view.side
    assert side is not None  # checked above
    blocked = side.blocked(filters, catalog.wanted_stock(filters))
    ranks: dict[int, float] = {}
    scores: dict[int, float] = {}
    lexical = side.bm25(query)
    order = [j for j in np.argsort(-lexical, kind="stable") if lexical[j] > 0 and not blocked[j]]
    for r, j in enumerate(order[:k]):
        ranks[int(j)] = 1 / (RRF_K + r)
        scores[int(j)] = float(lexical[j])
    if view.dense is not None and side.vectors is not None:
        cosines = side.vectors @ view.dense.encode_query(query)
        order = [
            j
            for j in np.argsort(-cosines, kind="stable")
            if cosines[j] >= DENSE_MIN_COSINE and not blocked[j]
        ]
        for r, j in enumerate(order[:k]):
            ranks[int(j)] = ranks.get(int(j), 0.0) + 1 / (RRF_K + r)
            scores.setdefault(int(j), float(cosines[j]))
    best = sorted(ranks, key=lambda j: (-ranks[j], j))[:k]
    return [side.item(j, scores[j]) for j in best]


def with_new_neighbours(
    catalog: Catalog, item: int, base: list[ScoredItem], k: int
) -> list[ScoredItem]:
    """`base` (similar items of a bundle item) with the new items it is a neighbour of."""
    found = live_view(catalog)
    if found is None or found[1].side is None:
        return base
    side = found[1].side
    assert side is not None
    scores = side.affinity([item])
    scores[side.blocked(None, catalog.wanted_stock(None))] = 0.0
    order = [int(j) for j in np.argsort(-scores, kind="stable")[:k] if scores[j] > 0]
    return merge_ranked(base, [side.item(j, float(scores[j])) for j in order], k)


def similar_of_new_item(catalog: Catalog, raw_item_id: str, k: int) -> list[ScoredItem]:
    """Items like a new item: its bundle neighbours, then new items sharing its tokens.

    Returns fewer than `k` (the caller fills with popular items) when too few items
    share its text.
    """
    found = live_view(catalog)
    if found is None or found[1].side is None or raw_item_id not in found[1].side.index:
        return []
    side = found[1].side
    assert side is not None
    j = side.index[raw_item_id]
    entry = side.entries[j]
    removed = catalog.blocked(None)
    items = [
        catalog.item(int(i), float(a))
        for i, a in zip(entry.neighbours, entry.affinity, strict=True)
        if not removed[i]
    ][:k]
    others = side.token_similarity(j)
    others[side.blocked(None, catalog.wanted_stock(None))] = 0.0
    category = side.categories[j]
    if category is not None:
        others[[c != category for c in side.categories]] = 0.0
    order = [int(o) for o in np.argsort(-others, kind="stable")[:k] if others[o] > 0]
    return merge_ranked(items, [side.item(o, float(others[o])) for o in order], k)


def with_new_recommendations(
    catalog: Catalog,
    history: IndexArray | None,
    base: list[ScoredItem],
    k: int,
    *,
    filters: Filters | None,
    exclude: Sequence[str],
) -> list[ScoredItem]:
    """`base` with new items close to the shopper's latest history items merged in.

    At most a fifth of the list (at least one item) is new items, each a neighbour of
    one of the last `HISTORY_ITEMS_COMPARED` history items with affinity at least
    `RECOMMEND_MIN_AFFINITY`: the content model of items without events.
    """
    found = live_view(catalog)
    if found is None or found[1].side is None or history is None or history.size == 0:
        return base
    side = found[1].side
    assert side is not None
    scores = side.affinity([int(i) for i in history[-HISTORY_ITEMS_COMPARED:]])
    scores[side.blocked(filters, catalog.wanted_stock(filters))] = 0.0
    for raw in exclude:
        if (j := side.index.get(raw)) is not None:
            scores[j] = 0.0
    share = _new_share(k)
    order = [
        int(j)
        for j in np.argsort(-scores, kind="stable")[:share]
        if scores[j] >= RECOMMEND_MIN_AFFINITY
    ]
    return merge_ranked(base, [side.item(j, float(scores[j])) for j in order], k, limit=share)
