"""The side index of the live catalog: new items, searchable and similar before any event.

Everything a new item needs is computed once, when it arrives (`SideEntry`, kept by
the live catalog per text): its tokens (the bundle's tokenizer, Chinese included), its
passage vector when the bundle's search is dense or hybrid, and its neighbours among
the bundle's items: the bundle's own search index scoring the new item's text (title,
brand, category, description), restricted to its category, the best 200 normalised to
(0, 1]. A snapshot (`SideIndex`) is then assembled from the entries without any
re-tokenising or re-encoding.

Lexical search over new items is BM25 (the Lucene variant `BM25Search` uses, k1 1.2,
b 0.75, over one bag of the item's text with the title counted twice) computed here
from the cached tokens: re-indexing every new item with bm25s on each change cost
2.4 s per update with 1,000 new items on the shared 2-core machine
(benchmarks/RESULTS.md, "Live catalog"), this costs milliseconds.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from shelfwise.contracts import BoolArray, FloatArray
from shelfwise.contracts import IntArray as IndexArray
from shelfwise.retrieval import SearchIndex
from shelfwise.retrieval.dense import DenseSearch
from shelfwise.runtime.catalog import Catalog, Display, Filters, ScoredItem
from shelfwise.text.tokenize import MAX_QUERY_TOKENS, tokenize

NEIGHBOURS: Final = 200  # bundle items kept per new item (similar items, recommendations)
K1: Final = 1.2
B: Final = 0.75
TEXT_FIELDS: Final = ("title", "brand", "category", "description")


@dataclass(frozen=True)
class SideEntry:
    """What one new item's text gives, computed once (see the module docstring)."""

    tokens: tuple[str, ...]  # title twice, then brand, category, description
    vector: FloatArray | None
    neighbours: IndexArray  # bundle item_index, best first
    affinity: FloatArray  # their search scores over the best one's, in (0, 1]


def item_text(values: dict[str, Any]) -> str:
    """The searchable text of a new item's fields."""
    return " ".join(v for name in TEXT_FIELDS if isinstance(v := values.get(name), str) and v)


def make_entry(
    values: dict[str, Any],
    catalog: Catalog,
    search_index: SearchIndex | None,
    dense: DenseSearch | None,
) -> SideEntry:
    """Tokens, vector and bundle neighbours of a new item (one search of its text)."""
    title = values.get("title") if isinstance(values.get("title"), str) else ""
    text = item_text(values)
    tokens = tuple(tokenize(title or "") + tokenize(text))
    vector = dense.encoder.encode_passages([text])[0] if dense is not None and text else None
    neighbours = np.empty(0, dtype=np.int64)
    affinity = np.empty(0, dtype=np.float32)
    if search_index is not None and text:
        scores = np.asarray(search_index.score(text), dtype=np.float64).ravel()
        category = values.get("category")
        if isinstance(category, str) and category:
            scores[catalog.blocked(Filters(category=category))] = 0.0
        top = np.argsort(-scores, kind="stable")[:NEIGHBOURS]
        top = top[scores[top] > 0]
        if top.size:
            neighbours = top.astype(np.int64)
            affinity = (scores[top] / scores[top[0]]).astype(np.float32)
    return SideEntry(tokens, vector, neighbours, affinity)


class SideIndex:
    """The new items of one snapshot: display fields, filters, BM25, neighbours.

    Args:
        raw_ids: the new items' ids.
        values: their merged fields.
        entries: their `SideEntry`, in the same order.
    """

    def __init__(
        self, raw_ids: list[str], values: list[dict[str, Any]], entries: list[SideEntry]
    ) -> None:
        """Assemble from cached entries (no tokenising, no encoding)."""
        self.raw_ids = raw_ids
        self.index = {raw: j for j, raw in enumerate(raw_ids)}
        self.display: list[Display] = [
            (
                _text(v.get("title")),
                _text(v.get("category")),
                _text(v.get("brand")),
                v.get("price"),
                v.get("in_stock"),
            )
            for v in values
        ]
        self.texts = [item_text(v) for v in values]
        self.stock = np.asarray([d[4] is not False for d in self.display], dtype=np.bool_)
        self.price = np.asarray(
            [np.nan if d[3] is None else d[3] for d in self.display], dtype=np.float64
        )
        self.categories = [None if d[1] is None else d[1].casefold() for d in self.display]
        self.brands = [None if d[2] is None else d[2].casefold() for d in self.display]
        vectors = [entry.vector for entry in entries if entry.vector is not None]
        self.vectors: FloatArray | None = (
            np.stack(vectors).astype(np.float32) if len(vectors) == len(entries) else None
        )
        self.entries = entries
        # BM25 postings: token -> (new items, term frequencies)
        lengths = np.asarray([len(entry.tokens) for entry in entries], dtype=np.float64)
        self._norm = K1 * (1 - B + B * lengths / max(float(lengths.mean()), 1.0))
        gathered: dict[str, tuple[list[int], list[int]]] = {}
        for j, entry in enumerate(entries):
            for token, count in Counter(entry.tokens).items():
                holders, counts = gathered.setdefault(token, ([], []))
                holders.append(j)
                counts.append(count)
        self._postings = {
            token: (np.asarray(h, dtype=np.int64), np.asarray(c, dtype=np.float64))
            for token, (h, c) in gathered.items()
        }
        # bundle item -> (new items, affinity): who counts the bundle item as a neighbour,
        # as three arrays sorted by bundle item (a dict of 200 entries per new item took
        # 1.8 s to build for 300 new items on the loaded machine; these take ~1 ms)
        owners = np.repeat(
            np.arange(len(entries), dtype=np.int64), [e.neighbours.size for e in entries]
        )
        items = np.concatenate([e.neighbours for e in entries] or [np.empty(0, np.int64)])
        affinities = np.concatenate([e.affinity for e in entries] or [np.empty(0, np.float32)])
        order = np.argsort(items, kind="stable")
        self._nb_items = items[order]
        self._nb_owners = owners[order]
        self._nb_affinity = affinities[order].astype(np.float32)

    def __len__(self) -> int:
        return len(self.raw_ids)

    def bm25(self, query: str) -> FloatArray:
        """(new items,) BM25 scores of a query (0: no shared token)."""
        scores = np.zeros(len(self), dtype=np.float64)
        n = len(self)
        for token in tokenize(query)[:MAX_QUERY_TOKENS]:
            posting = self._postings.get(token)
            if posting is None:
                continue
            holders, counts = posting
            idf = math.log(1 + (n - holders.size + 0.5) / (holders.size + 0.5))
            scores[holders] += idf * counts / (counts + self._norm[holders])
        return scores.astype(np.float32)

    def affinity(self, items: Sequence[int]) -> FloatArray:
        """(new items,) the highest affinity of each new item to any of `items`."""
        best = np.zeros(len(self), dtype=np.float32)
        wanted = np.asarray(items, dtype=np.int64)
        starts = np.searchsorted(self._nb_items, wanted, side="left")
        ends = np.searchsorted(self._nb_items, wanted, side="right")
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            if end > start:
                np.maximum.at(best, self._nb_owners[start:end], self._nb_affinity[start:end])
        return best

    def token_similarity(self, j: int) -> FloatArray:
        """(new items,) cosine of token sets between new item `j` and every new item."""
        mine = set(self.entries[j].tokens)
        overlap = np.zeros(len(self), dtype=np.float64)
        for token in mine:
            posting = self._postings.get(token)
            if posting is not None:
                overlap[posting[0]] += 1.0
        sizes = np.asarray([len(set(e.tokens)) for e in self.entries], dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            cosine = np.where(sizes > 0, overlap / np.sqrt(sizes * max(len(mine), 1)), 0.0)
        cosine[j] = 0.0
        return cosine.astype(np.float32)

    def blocked(self, filters: Filters | None, wanted_stock: bool | None) -> BoolArray:
        """True for new items the filters rule out (same rules as `Catalog.blocked`).

        Args:
            filters: the request's filters.
            wanted_stock: the stock filter it gets (`Catalog.wanted_stock`: its own, or
                the server's default of hiding sold-out items).
        """
        blocked = np.zeros(len(self), dtype=np.bool_)
        if wanted_stock is not None:
            blocked |= ~self.stock if wanted_stock else self.stock
        if filters is None or filters.is_empty():
            return blocked
        for wanted, values in ((filters.category, self.categories), (filters.brand, self.brands)):
            if wanted is not None:
                names = {w.casefold() for w in ([wanted] if isinstance(wanted, str) else wanted)}
                blocked |= np.asarray([v not in names for v in values], dtype=np.bool_)
        with np.errstate(invalid="ignore"):
            if filters.price_min is not None:
                blocked |= ~(self.price >= filters.price_min)
            if filters.price_max is not None:
                blocked |= ~(self.price <= filters.price_max)
        return blocked

    def item(self, j: int, score: float) -> ScoredItem:
        """The response record of new item `j`."""
        title, category, brand, price, in_stock = self.display[j]
        value = float(score) if math.isfinite(score) else 0.0
        return ScoredItem(
            raw_item_id=self.raw_ids[j],
            score=value,
            title=title,
            category=category,
            brand=brand,
            price=price,
            in_stock=in_stock,
        )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
