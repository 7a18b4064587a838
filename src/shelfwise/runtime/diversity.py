"""Business constraints on a ranked list: brand / category caps, MMR, margin.

Applied after ranking (and after the merchandising rules' hides, boosts and buries), to
a candidate list deeper than `k`, before it is cut to `k`
(`shelfwise.runtime.steering`). Relevance here is the list's own order, not the
models' scores: a list can mix scales (a recommender's scores, then popular items
filling it with popularity counts), and its order is the ranking every answer
promises. Item `i` of `n` has relevance `1 - i / n`.

The greedy loop picks, `k` times, the allowed candidate with the best

    (1 - λ) · relevance + margin_weight · margin − λ · max similarity to the picked items

(MMR, Carbonell & Goldstein, SIGIR 1998), skipping candidates whose brand or category
has reached its cap. With λ = 0, no caps and no margin weight, it returns the list's
own first `k` items (ties keep list order). Caps are strict: a list may come out
shorter than `k` rather than break one; items without a brand or category are never
capped.

Similarity of two items: the cosine of their vectors when the bundle has item vectors
(the dense search index's), else content: 0.5 for the same category plus 0.5 for the
same brand.
"""

from __future__ import annotations

import json
import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from shelfwise.contracts import FloatArray
from shelfwise.contracts import IntArray as IndexArray
from shelfwise.runtime.catalog import Catalog, ScoredItem

MARGIN_ATTRIBUTE = "margin"


@dataclass(frozen=True)
class DiversityOptions:
    """What a request (or the server's defaults) asks of the list.

    Attributes:
        max_per_brand: the most items of one brand in the list; None: no cap.
        max_per_category: the most items of one category; None: no cap.
        mmr_lambda: 0 keeps the ranking, up to 1 (most diverse).
        margin_weight: weight of an item's margin (0..1) against its relevance.
    """

    max_per_brand: int | None = None
    max_per_category: int | None = None
    mmr_lambda: float = 0.0
    margin_weight: float = 0.0

    @property
    def active(self) -> bool:
        """True when the options can change a list."""
        return (
            self.max_per_brand is not None
            or self.max_per_category is not None
            or self.mmr_lambda > 0
            or self.margin_weight > 0
        )


class ItemFacts:
    """Per-catalog facts the constraints and rules read: attributes and margins.

    Built once per catalog (`facts_of`) and only when a request needs them.
    """

    def __init__(self, catalog: Catalog) -> None:
        """Keep the attribute texts; they are parsed on first use."""
        self._texts: list[str | None] = list(getattr(catalog, "attributes", [None] * len(catalog)))
        self._attributes: list[dict[str, Any]] | None = None
        self._margins: FloatArray | None = None

    @property
    def attributes(self) -> list[dict[str, Any]]:
        """Each item's attributes (empty for none or text that is not a JSON object)."""
        if self._attributes is None:
            self._attributes = [_parse(text) for text in self._texts]
        return self._attributes

    @property
    def margins(self) -> FloatArray:
        """Each item's margin in 0..1 from its `margin` attribute; NaN when unknown."""
        if self._margins is None:
            values = np.full(len(self._texts), np.nan, dtype=np.float32)
            for i, attributes in enumerate(self.attributes):
                value = attributes.get(MARGIN_ATTRIBUTE)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    if math.isfinite(value):
                        values[i] = min(max(float(value), 0.0), 1.0)
            self._margins = values
        return self._margins


_FACTS: weakref.WeakKeyDictionary[Catalog, ItemFacts] = weakref.WeakKeyDictionary()


def facts_of(catalog: Catalog) -> ItemFacts:
    """The catalog's `ItemFacts`, built on first call and kept as long as the catalog."""
    found = _FACTS.get(catalog)
    if found is None:
        found = _FACTS[catalog] = ItemFacts(catalog)
    return found


def diversify(
    items: Sequence[ScoredItem],
    indices: Sequence[int],
    k: int,
    options: DiversityOptions,
    *,
    facts: ItemFacts | None = None,
    vectors: FloatArray | None = None,
    fixed_relevance: Sequence[float] | None = None,
) -> list[int]:
    """Positions (into `items`) of the up-to-`k` items to list, in order.

    Args:
        items: the ranked items, best first (their brand and category are read).
        indices: their item indices (-1: an item the bundle does not hold, added online).
        k: the list length wanted.
        options: caps, λ and margin weight.
        facts: the catalog's facts (margins); None: no margins.
        vectors: (n_items, dim) unit item vectors, or None for content similarity.
        fixed_relevance: each item's relevance instead of `1 - i / n` (the rules'
            boosts and buries shift it).

    Returns:
        Positions into `items`; the first `k` positions when nothing is active.
    """
    n = len(items)
    if not options.active or n == 0:
        return list(range(min(k, n)))
    chosen = np.asarray(indices, dtype=np.int64)
    if fixed_relevance is not None:
        relevance = np.asarray(fixed_relevance, dtype=np.float64)
    else:
        relevance = 1.0 - np.arange(n, dtype=np.float64) / n
    gain = (1.0 - options.mmr_lambda) * relevance
    if options.margin_weight > 0 and facts is not None:
        margins = np.where(chosen >= 0, facts.margins[np.maximum(chosen, 0)], np.nan)
        gain = gain + options.margin_weight * np.nan_to_num(margins.astype(np.float64), nan=0.0)
    brands = _codes([item.brand for item in items])
    categories = _codes([item.category for item in items])
    rows = _rows(vectors, chosen) if options.mmr_lambda > 0 else None
    closest = np.zeros(n, dtype=np.float64)  # max similarity to the picked items
    open_ = np.ones(n, dtype=np.bool_)
    brand_counts: dict[int, int] = {}
    category_counts: dict[int, int] = {}
    picked: list[int] = []
    while len(picked) < k:
        score = np.where(open_, gain - options.mmr_lambda * closest, -np.inf)
        best = int(np.argmax(score))  # first of equals: ties keep list order
        if not np.isfinite(score[best]):
            break
        open_[best] = False
        brand, category = int(brands[best]), int(categories[best])
        if _full(brand, brand_counts, options.max_per_brand) or _full(
            category, category_counts, options.max_per_category
        ):
            continue
        picked.append(best)
        if brand >= 0:
            brand_counts[brand] = brand_counts.get(brand, 0) + 1
        if category >= 0:
            category_counts[category] = category_counts.get(category, 0) + 1
        if options.mmr_lambda > 0:
            np.maximum(closest, _similarity(best, rows, brands, categories), out=closest)
    return picked


def intra_list_similarity(
    items: Sequence[ScoredItem], indices: Sequence[int], vectors: FloatArray | None = None
) -> float:
    """Mean pairwise similarity of a list (its diversity is 1 minus this); 0 below 2 items."""
    n = len(items)
    if n < 2:
        return 0.0
    rows = _rows(vectors, np.asarray(indices, dtype=np.int64))
    brands = _codes([item.brand for item in items])
    categories = _codes([item.category for item in items])
    matrix = np.stack([_similarity(i, rows, brands, categories) for i in range(n)])
    return float((matrix.sum() - np.trace(matrix)) / (n * (n - 1)))


def _full(code: int, counts: dict[int, int], cap: int | None) -> bool:
    return cap is not None and code >= 0 and counts.get(code, 0) >= cap


def _rows(vectors: FloatArray | None, indices: IndexArray) -> FloatArray | None:
    """The items' vectors (zero rows for items without one); None without vectors."""
    if vectors is None:
        return None
    rows = np.zeros((indices.size, vectors.shape[1]), dtype=np.float32)
    known = indices >= 0
    rows[known] = vectors[indices[known]]
    return rows


def _similarity(
    position: int, rows: FloatArray | None, brands: IndexArray, categories: IndexArray
) -> FloatArray:
    """Similarity of every listed item to the one at `position`."""
    if rows is not None:
        similar: FloatArray = (rows @ rows[position]).astype(np.float32)
        return similar
    same_category = (categories == categories[position]) & (categories >= 0)
    same_brand = (brands == brands[position]) & (brands >= 0)
    content: FloatArray = (0.5 * same_category + 0.5 * same_brand).astype(np.float32)
    return content


def _codes(values: list[str | None]) -> IndexArray:
    """Case-insensitive integer codes of a column (-1 for null)."""
    lookup: dict[str, int] = {}
    codes = np.full(len(values), -1, dtype=np.int64)
    for i, value in enumerate(values):
        if value is not None:
            codes[i] = lookup.setdefault(value.casefold(), len(lookup))
    return codes


def _parse(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        parsed = json.loads(text)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
