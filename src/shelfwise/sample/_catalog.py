"""The sample catalog: items with brands, attributes, prices, popularity and text.

Items are drawn category by category, so internal item indices are contiguous per
category (`category_start`); raw ids (`SKU00001`) are assigned by a random permutation,
so the written catalog, sorted by raw id, mixes categories like a real one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from numpy.typing import NDArray

from shelfwise.contracts import (
    ATTRIBUTES,
    BRAND,
    CATEGORY,
    DESCRIPTION,
    IN_STOCK,
    PRICE,
    RAW_ITEM_ID,
    TITLE,
)
from shelfwise.sample._categories import CATEGORIES
from shelfwise.sample._text import ItemText, render_item
from shelfwise.sample._vocabulary import COLOR_KEYS, COLORS, DEPARTMENTS

STYLE_DIMENSIONS = 6
_IN_STOCK_SHARE = 0.93
_POPULARITY_EXPONENT = 1.0  # Zipf exponent of item popularity within a category

DEPARTMENT_KEYS: tuple[str, ...] = tuple(DEPARTMENTS)
CATEGORY_DEPARTMENT: NDArray[np.int64] = np.array(
    [DEPARTMENT_KEYS.index(c.department) for c in CATEGORIES], dtype=np.int64
)
BRAND_NAMES: tuple[str, ...] = tuple(dict.fromkeys(b.en for c in CATEGORIES for b in c.brands))


@dataclass(frozen=True)
class CatalogModel:
    """Ground truth of the catalog, indexed by internal item index.

    Attributes:
        raw_item_ids: Raw id of each item.
        category: Category index (into `CATEGORIES`), non-decreasing.
        department: Department index (into `DEPARTMENT_KEYS`).
        brand: Global brand index (into `BRAND_NAMES`).
        color: Color index (into `COLOR_KEYS`), -1 for colorless items.
        fits: Index into the category's `fits`, -1 where not applicable.
        price: Price in yuan.
        price_z: Standardised log price within the category.
        log_popularity: Log of the global popularity share.
        category_start: First item of each category (length categories + 1).
        category_keys: Category index + cumulative within-category popularity; sample
            an item of category c with `searchsorted(category_keys, c + u)`.
        global_keys: Cumulative global popularity, for sampling any item.
        style: Latent style vectors (items x STYLE_DIMENSIONS).
        trend: Popularity trend over the simulated window (log scale per window).
        frame: The catalog table, sorted by raw item id.
    """

    raw_item_ids: list[str]
    category: NDArray[np.int64]
    department: NDArray[np.int64]
    brand: NDArray[np.int64]
    color: NDArray[np.int64]
    fits: NDArray[np.int64]
    price: NDArray[np.float64]
    price_z: NDArray[np.float64]
    log_popularity: NDArray[np.float64]
    category_start: NDArray[np.int64]
    category_keys: NDArray[np.float64]
    global_keys: NDArray[np.float64]
    style: NDArray[np.float64]
    trend: NDArray[np.float64]
    frame: pl.DataFrame

    @property
    def n_items(self) -> int:
        """Number of items."""
        return len(self.raw_item_ids)

    @property
    def active_categories(self) -> NDArray[np.bool_]:
        """Categories that hold at least one item."""
        return np.diff(self.category_start) > 0


def category_shares() -> NDArray[np.float64]:
    """Relative size of each category, summing to one."""
    shares = np.array([c.share for c in CATEGORIES], dtype=np.float64)
    result: NDArray[np.float64] = shares / shares.sum()
    return result


def _category_counts(n_items: int, rng: np.random.Generator) -> NDArray[np.int64]:
    shares = category_shares()
    n_categories = len(CATEGORIES)
    if n_items < n_categories:
        chosen = rng.choice(n_categories, size=n_items, replace=False, p=shares)
        return np.bincount(chosen, minlength=n_categories).astype(np.int64)
    return (1 + rng.multinomial(n_items - n_categories, shares)).astype(np.int64)


def _zipf(n: int, exponent: float) -> NDArray[np.float64]:
    weights = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    result: NDArray[np.float64] = weights / weights.sum()
    return result


@dataclass
class _Columns:
    """Per-item arrays filled category by category."""

    brand: list[NDArray[np.int64]]
    color: list[NDArray[np.int64]]
    fits: list[NDArray[np.int64]]
    log_price: list[NDArray[np.float64]]
    price_z: list[NDArray[np.float64]]
    popularity: list[NDArray[np.float64]]
    texts: list[ItemText]


def _draw_category(
    category_index: int, count: int, rng: np.random.Generator, columns: _Columns
) -> None:
    category = CATEGORIES[category_index]
    department = DEPARTMENTS[category.department]
    brand_weights = _zipf(len(category.brands), 0.9)
    brand = rng.choice(len(category.brands), size=count, p=brand_weights)
    color = (
        rng.choice(len(category.colors), size=count, p=_zipf(len(category.colors), 0.6))
        if category.colors
        else np.full(count, -1)
    )
    size = rng.integers(0, max(len(category.sizes), 1), size=count)
    material = rng.integers(0, max(len(category.materials), 1), size=count)
    capacity = rng.integers(0, max(len(category.capacities), 1), size=count)
    fits = rng.integers(0, len(category.fits), size=count) if category.fits else np.full(count, -1)
    tiers = np.array([b.tier for b in category.brands])
    log_price = (
        np.log(category.price_median)
        + tiers[brand]
        + 0.15 * capacity
        + category.price_sigma * rng.standard_normal(count)
    )
    spread = log_price.std() if count > 1 else 1.0
    # Popular items: big brands first, with plenty of noise; then Zipf by rank.
    appeal = np.log(brand_weights[brand]) + rng.gumbel(size=count)
    rank = np.empty(count, dtype=np.int64)
    rank[np.argsort(-appeal, kind="stable")] = np.arange(count)
    popularity = _zipf(count, _POPULARITY_EXPONENT)[rank]

    for i in range(count):
        brand_record = category.brands[int(brand[i])]
        columns.texts.append(
            render_item(
                category,
                department,
                brand_record,
                line=str(rng.choice(brand_record.lines)) if brand_record.lines else "",
                color=COLORS[category.colors[int(color[i])]] if category.colors else None,
                size=category.sizes[int(size[i])] if category.sizes else None,
                material=category.materials[int(material[i])] if category.materials else None,
                capacity=category.capacities[int(capacity[i])] if category.capacities else None,
                fits=category.fits[int(fits[i])] if category.fits else None,
                rng=rng,
            )
        )
    global_brand = np.array([BRAND_NAMES.index(b.en) for b in category.brands], dtype=np.int64)
    global_color = np.array([COLOR_KEYS.index(k) for k in category.colors] + [-1], np.int64)
    columns.brand.append(global_brand[brand])
    columns.color.append(global_color[color])
    columns.fits.append(fits.astype(np.int64))
    columns.log_price.append(log_price)
    columns.price_z.append((log_price - log_price.mean()) / max(float(spread), 1e-6))
    columns.popularity.append(popularity)


def _round_price(log_price: NDArray[np.float64]) -> NDArray[np.float64]:
    """Shop-style prices: 5999, 199, 89.9, 9.9."""
    price = np.exp(log_price)
    rounded = np.where(
        price >= 1000,
        np.round(price / 100) * 100 - 1,
        np.where(price >= 100, np.round(price / 10) * 10 - 1, np.round(price) - 0.1),
    )
    return np.maximum(np.round(rounded, 2), 1.9)


def build_catalog(n_items: int, rng: np.random.Generator) -> CatalogModel:
    """Draw the catalog and its ground truth.

    Args:
        n_items: Number of items (at least 1).
        rng: Random generator; the catalog depends on nothing else.

    Returns:
        The catalog model, including the table to write.
    """
    counts = _category_counts(n_items, rng)
    columns = _Columns([], [], [], [], [], [], [])
    for category_index, count in enumerate(counts.tolist()):
        if count:
            _draw_category(category_index, count, rng, columns)
    category = np.repeat(np.arange(len(CATEGORIES), dtype=np.int64), counts)
    category_start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    within = np.concatenate(columns.popularity)
    cumulative = np.concatenate(
        [np.cumsum(p) for p in columns.popularity if len(p)]
    )  # each category's run ends at 1
    cumulative[category_start[1:][counts > 0] - 1] = 1.0
    shares = category_shares()
    active_share = shares * (counts > 0)
    popularity = within * (active_share / active_share.sum())[category]
    global_cumulative = np.cumsum(popularity)
    global_cumulative /= global_cumulative[-1]

    brand = np.concatenate(columns.brand)
    brand_style = rng.standard_normal((len(BRAND_NAMES), STYLE_DIMENSIONS))
    style = brand_style[brand] + 0.7 * rng.standard_normal((n_items, STYLE_DIMENSIONS))
    trend = rng.standard_normal(n_items)
    in_stock = rng.random(n_items) < _IN_STOCK_SHARE
    price = _round_price(np.concatenate(columns.log_price))

    width = max(5, len(str(n_items)))
    sku_number = rng.permutation(n_items) + 1
    raw_item_ids = [f"SKU{n:0{width}d}" for n in sku_number.tolist()]
    frame = pl.DataFrame(
        {
            RAW_ITEM_ID: raw_item_ids,
            TITLE: [t.title for t in columns.texts],
            DESCRIPTION: [t.description for t in columns.texts],
            CATEGORY: [CATEGORIES[c].label for c in category.tolist()],
            BRAND: [t.brand for t in columns.texts],
            PRICE: price,
            IN_STOCK: in_stock,
            ATTRIBUTES: [t.attributes for t in columns.texts],
        },
        schema={
            RAW_ITEM_ID: pl.String,
            TITLE: pl.String,
            DESCRIPTION: pl.String,
            CATEGORY: pl.String,
            BRAND: pl.String,
            PRICE: pl.Float64,
            IN_STOCK: pl.Boolean,
            ATTRIBUTES: pl.String,
        },
    ).sort(RAW_ITEM_ID)
    return CatalogModel(
        raw_item_ids=raw_item_ids,
        category=category,
        department=CATEGORY_DEPARTMENT[category],
        brand=brand,
        color=np.concatenate(columns.color),
        fits=np.concatenate(columns.fits),
        price=price,
        price_z=np.concatenate(columns.price_z),
        log_popularity=np.log(popularity),
        category_start=category_start,
        category_keys=category + cumulative,
        global_keys=global_cumulative,
        style=style,
        trend=trend,
        frame=frame,
    )
