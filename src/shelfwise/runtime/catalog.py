"""The served catalog: raw item ids, display fields, and request filters as masks.

Built once when a bundle loads. Filters become one boolean mask over `item_index`
that the engine hands to `top_k` as its exclusion mask, so filtering happens before
ranking and never shortens a result list that could have been filled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import polars as pl

from shelfwise.contracts import (
    ATTRIBUTES,
    BRAND,
    CATEGORY,
    IN_STOCK,
    PRICE,
    RAW_ITEM_ID,
    TITLE,
    BoolArray,
)
from shelfwise.contracts import IntArray as IndexArray


@dataclass(frozen=True)
class Filters:
    """Restrictions on which items a response may contain.

    Attributes:
        category: one category or a list (any of them); matched case-insensitively.
        brand: one brand or a list (any of them); matched case-insensitively.
        price_min: lowest allowed price (inclusive); items without a price fail it.
        price_max: highest allowed price (inclusive); items without a price fail it.
        in_stock: True keeps items in stock (and those with unknown stock), False keeps
            items known to be out of stock; None: the catalog's default
            (`Catalog.hide_out_of_stock`).
        include_out_of_stock: True lists sold-out items too where the catalog hides
            them by default (`in_stock`, when set, wins).
    """

    category: str | Sequence[str] | None = None
    brand: str | Sequence[str] | None = None
    price_min: float | None = None
    price_max: float | None = None
    in_stock: bool | None = None
    include_out_of_stock: bool = False

    def is_empty(self) -> bool:
        """True when no restriction is set (`include_out_of_stock` widens, never restricts)."""
        return (
            self.category is None
            and self.brand is None
            and self.price_min is None
            and self.price_max is None
            and self.in_stock is None
        )


class ScoredItem(NamedTuple):
    """One item of a response, with its display fields.

    A NamedTuple, not a frozen dataclass: every listed item makes one, and a tuple is
    built in a third of the time (0.5 vs 1.25 us).
    """

    raw_item_id: str
    score: float
    title: str | None
    category: str | None
    brand: str | None
    price: float | None
    in_stock: bool | None
    explanation: list[tuple[str, float]] | None = None


# An item's display fields as a live catalog update left them (`Overrides.display`):
# title, category, brand, price, in_stock.
Display = tuple[str | None, str | None, str | None, float | None, bool | None]


@dataclass(frozen=True)
class Overrides:
    """Online catalog updates over the bundle's items (`shelfwise.runtime.live_catalog`).

    One immutable snapshot, swapped in as `Catalog.overrides` by one reference
    assignment: a request reads it once and sees one consistent catalog.

    Attributes:
        removed: True for items deleted or hidden online (blocked everywhere).
        removed_ids: their raw ids (so lookups by id fail as for unknown items).
        stock, price: the filter arrays with the updates applied.
        category, brand: codes of the updated columns (None: the bundle's).
        display: item_index -> updated display fields, for changed items only.
        extension: what the live catalog keeps with the snapshot (its side index).
        unavailable: removed or known to be sold out: the mask of a request without
            filters when the catalog hides sold-out items (built once per snapshot).
    """

    removed: BoolArray
    removed_ids: frozenset[str]
    stock: BoolArray
    price: np.ndarray
    category: _Codes | None
    brand: _Codes | None
    display: dict[int, Display]
    extension: object | None = None
    unavailable: BoolArray | None = None


class _Codes:
    """Case-insensitive integer codes of a string column (-1 for null)."""

    def __init__(self, values: list[str | None]) -> None:
        folded = sorted({value.casefold() for value in values if value is not None})
        self.lookup = {value: code for code, value in enumerate(folded)}
        self.codes: IndexArray = np.asarray(
            [-1 if value is None else self.lookup[value.casefold()] for value in values],
            dtype=np.int64,
        )

    def matching(self, wanted: str | Sequence[str]) -> BoolArray:
        names = [wanted] if isinstance(wanted, str) else list(wanted)
        codes = [self.lookup[c] for name in names if (c := name.casefold()) in self.lookup]
        return np.isin(self.codes, np.asarray(codes, dtype=np.int64))


class Catalog:
    """Item ids and display fields in item_index order.

    Args:
        items: the bundle's `items.parquet` frame.
    """

    def __init__(self, items: pl.DataFrame) -> None:
        self.raw_item_ids: list[str] = [str(v) for v in items[RAW_ITEM_ID].to_list()]
        self.index: dict[str, int] = {raw: i for i, raw in enumerate(self.raw_item_ids)}
        self.titles: list[str | None] = items[TITLE].to_list()
        self.categories: list[str | None] = items[CATEGORY].to_list()
        self.brands: list[str | None] = items[BRAND].to_list()
        # display prices: NaN and infinities become unknown (JSON has no NaN)
        self.prices: list[float | None] = [
            None if p is None or not math.isfinite(p) else float(p) for p in items[PRICE].to_list()
        ]
        self.in_stock: list[bool | None] = items[IN_STOCK].to_list()
        # the attributes JSON text of each item (None: none): merchandising rules and
        # margin re-ranking parse it when first needed (`shelfwise.runtime.diversity`)
        self.attributes: list[str | None] = (
            items[ATTRIBUTES].to_list() if ATTRIBUTES in items.columns else [None] * items.height
        )
        self._category = _Codes(self.categories)
        self._brand = _Codes(self.brands)
        self._price = np.asarray(
            [np.nan if p is None else p for p in self.prices], dtype=np.float64
        )
        # Unknown stock counts as available: catalogs without the column stay usable.
        self._stock = np.asarray([s is not False for s in self.in_stock], dtype=np.bool_)
        self._sold_out: BoolArray = ~self._stock
        self.overrides: Overrides | None = None  # live updates (`runtime.live_catalog`)
        # Off here, so offline users of the engine (the promotion gate's re-scoring,
        # the CLI) list what the model ranks; the server turns it on from
        # `serve.hide_out_of_stock` (through the live catalog it attaches every engine to).
        self.hide_out_of_stock = False

    def __len__(self) -> int:
        return len(self.raw_item_ids)

    def wanted_stock(self, filters: Filters | None) -> bool | None:
        """The stock filter a request gets: its own `in_stock`, else True when the catalog
        hides sold-out items and the request did not ask to include them, else None."""
        if filters is not None and filters.in_stock is not None:
            return filters.in_stock
        if self.hide_out_of_stock and (filters is None or not filters.include_out_of_stock):
            return True
        return None

    def blocked(self, filters: Filters | None) -> BoolArray:
        """A fresh mask, True for items the filters rule out.

        Items deleted or hidden online (`overrides`) are always ruled out; items known
        to be sold out too when `hide_out_of_stock` is on and the filters say nothing
        of stock (`wanted_stock`).
        """
        over = self.overrides  # read once: one consistent snapshot per call
        stock_wanted = self.wanted_stock(filters)
        if filters is None or filters.is_empty():
            if stock_wanted:  # the server's default: one prepared mask, copied
                if over is None:
                    return self._sold_out.copy()
                return (over.unavailable if over.unavailable is not None else over.removed).copy()
            return np.zeros(len(self), dtype=np.bool_) if over is None else over.removed.copy()
        category, brand, price, stock = self._category, self._brand, self._price, self._stock
        if over is not None:
            category, brand = over.category or category, over.brand or brand
            price, stock = over.price, over.stock
        allowed = np.ones(len(self), dtype=np.bool_)
        if filters.category is not None:
            allowed &= category.matching(filters.category)
        if filters.brand is not None:
            allowed &= brand.matching(filters.brand)
        with np.errstate(invalid="ignore"):
            if filters.price_min is not None:
                allowed &= price >= filters.price_min
            if filters.price_max is not None:
                allowed &= price <= filters.price_max
        if stock_wanted is not None:
            allowed &= stock if stock_wanted else ~stock
        if over is not None:
            allowed &= ~over.removed
        return ~allowed

    def with_updates(
        self, display: dict[int, Display], removed: list[int], extension: object | None
    ) -> Overrides:
        """The `Overrides` snapshot for updated display fields and removed items.

        Args:
            display: item_index -> the item's fields after the updates.
            removed: items deleted or hidden online.
            extension: kept with the snapshot for the live catalog.
        """
        stock, price = self._stock.copy(), self._price.copy()
        categories, brands = list(self.categories), list(self.brands)
        for item, (_, category, brand, value, in_stock) in display.items():
            stock[item] = in_stock is not False
            price[item] = np.nan if value is None else value
            categories[item], brands[item] = category, brand
        changed = {i for i, fields in display.items() if fields[1] != self.categories[i]}
        rebranded = {i for i, fields in display.items() if fields[2] != self.brands[i]}
        mask = np.zeros(len(self), dtype=np.bool_)
        mask[np.asarray(removed, dtype=np.int64)] = True
        return Overrides(
            removed=mask,
            removed_ids=frozenset(self.raw_item_ids[i] for i in removed),
            stock=stock,
            price=price,
            # codes are rebuilt only when a category or brand changed (O(items))
            category=_Codes(categories) if changed else None,
            brand=_Codes(brands) if rebranded else None,
            display=display,
            extension=extension,
            unavailable=mask | ~stock,
        )

    def same_category(self, item_index: int) -> BoolArray:
        """True for items in the item's category (all True when it has none)."""
        over = self.overrides
        codes = self._category if over is None or over.category is None else over.category
        code = codes.codes[item_index]
        if code < 0:
            return np.ones(len(self), dtype=np.bool_)
        same: BoolArray = codes.codes == code
        return same

    def indices(self, raw_item_ids: Sequence[str]) -> IndexArray:
        """item_index of each known raw id (unknown ids are skipped)."""
        found = [self.index[raw] for raw in raw_item_ids if raw in self.index]
        return np.asarray(found, dtype=np.int64)

    def item(
        self,
        item_index: int,
        score: float,
        *,
        explanation: list[tuple[str, float]] | None = None,
    ) -> ScoredItem:
        """The response record of one item."""
        value = float(score)  # math, not numpy: this runs for every listed item
        over = self.overrides
        if over is not None and (shown := over.display.get(item_index)) is not None:
            title, category, brand, price, in_stock = shown
            return ScoredItem(
                raw_item_id=self.raw_item_ids[item_index],
                score=value if math.isfinite(value) else 0.0,
                title=title,
                category=category,
                brand=brand,
                price=price,
                in_stock=in_stock,
                explanation=explanation,
            )
        return ScoredItem(
            raw_item_id=self.raw_item_ids[item_index],
            score=value if math.isfinite(value) else 0.0,
            title=self.titles[item_index],
            category=self.categories[item_index],
            brand=self.brands[item_index],
            price=self.prices[item_index],
            in_stock=self.in_stock[item_index],
            explanation=explanation,
        )
