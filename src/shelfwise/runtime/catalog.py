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

from shelfwise.contracts import BRAND, CATEGORY, IN_STOCK, PRICE, RAW_ITEM_ID, TITLE, BoolArray
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
            items known to be out of stock.
    """

    category: str | Sequence[str] | None = None
    brand: str | Sequence[str] | None = None
    price_min: float | None = None
    price_max: float | None = None
    in_stock: bool | None = None

    def is_empty(self) -> bool:
        """True when no filter is set."""
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
        self._category = _Codes(self.categories)
        self._brand = _Codes(self.brands)
        self._price = np.asarray(
            [np.nan if p is None else p for p in self.prices], dtype=np.float64
        )
        # Unknown stock counts as available: catalogs without the column stay usable.
        self._stock = np.asarray([s is not False for s in self.in_stock], dtype=np.bool_)

    def __len__(self) -> int:
        return len(self.raw_item_ids)

    def blocked(self, filters: Filters | None) -> BoolArray:
        """A fresh mask, True for items the filters rule out (all False without filters)."""
        if filters is None or filters.is_empty():
            return np.zeros(len(self), dtype=np.bool_)
        allowed = np.ones(len(self), dtype=np.bool_)
        if filters.category is not None:
            allowed &= self._category.matching(filters.category)
        if filters.brand is not None:
            allowed &= self._brand.matching(filters.brand)
        with np.errstate(invalid="ignore"):
            if filters.price_min is not None:
                allowed &= self._price >= filters.price_min
            if filters.price_max is not None:
                allowed &= self._price <= filters.price_max
        if filters.in_stock is not None:
            allowed &= self._stock if filters.in_stock else ~self._stock
        return ~allowed

    def same_category(self, item_index: int) -> BoolArray:
        """True for items in the item's category (all True when it has none)."""
        code = self._category.codes[item_index]
        if code < 0:
            return np.ones(len(self), dtype=np.bool_)
        same: BoolArray = self._category.codes == code
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
