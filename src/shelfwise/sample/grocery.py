"""`generate_grocery`: a grocery shop whose shoppers buy the same staples again and again.

What makes it grocery-like (issue 15), with known ground truth:

- every shopper has 5-25 *staples*, drawn by popularity from the shop's staple
  items, each bought again on its own cycle: the item's typical interval (7-28 days,
  by category: bread and milk weekly, detergent monthly) times a per-shopper factor,
  so the same item is weekly for one shopper and fortnightly for another;
- shoppers go shopping every 3-9 days (jittered); on a trip each staple that is due
  (days since its last purchase ≥ its cycle × a ±15% jitter) goes in the basket with
  probability 0.9, so baskets are mostly repeats;
- a long tail of *occasional* items (Poisson, about a quarter of a basket), drawn by
  popularity from the shopper's two favourite categories or the whole shop, a few
  of which become repeats by chance;
- a basket holds 5-30 items: short baskets are topped up with occasional items, long
  ones cut; every item of an order is a `purchase` row with the order's `session_id`,
  a few seconds apart.

The same seed writes the same shop. The default domain (`generate_shop`) is untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import polars as pl
from numpy.typing import NDArray

from shelfwise.contracts import (
    BRAND,
    CATEGORY,
    DESCRIPTION,
    EVENT_TYPE,
    IN_STOCK,
    PRICE,
    QUERY,
    RAW_ITEM_ID,
    RAW_USER_ID,
    RELEVANCE,
    SESSION_ID,
    TIMESTAMP,
    TITLE,
    EventType,
)
from shelfwise.sample.generator import FileFormat, ShopSummary, _write, window_end

# category (English, Chinese), typical repurchase cycle in days, share of staple items
AISLES: Final[tuple[tuple[str, str, int, float], ...]] = (
    ("milk", "牛奶", 7, 0.8),
    ("bread", "面包", 7, 0.8),
    ("eggs", "鸡蛋", 10, 0.8),
    ("fruit", "水果", 7, 0.6),
    ("vegetables", "蔬菜", 7, 0.6),
    ("meat", "肉类", 10, 0.5),
    ("cheese", "奶酪", 14, 0.5),
    ("coffee", "咖啡", 21, 0.5),
    ("snacks", "零食", 14, 0.3),
    ("drinks", "饮料", 14, 0.4),
    ("frozen", "冷冻食品", 21, 0.3),
    ("pantry", "调味品", 28, 0.3),
    ("detergent", "洗涤剂", 28, 0.4),
    ("toiletries", "洗护用品", 28, 0.3),
)
BRANDS: Final = ("FreshFarm", "GoldenField", "BlueRiver", "SunValley", "家乐", "华润", "晨光")
MIN_BASKET, MAX_BASKET = 5, 30
WINDOW_DAYS: Final = 180
_DAY: Final = 86_400


@dataclass(frozen=True)
class GroceryCatalog:
    """Ground truth of the grocery catalog (by internal item index)."""

    frame: pl.DataFrame
    aisle: NDArray[np.int64]
    cycle_days: NDArray[np.float64]  # typical repurchase interval of the item
    staple: NDArray[np.bool_]  # items shoppers keep on their list
    popularity: NDArray[np.float64]  # sums to 1


def build_grocery_catalog(n_items: int, rng: np.random.Generator) -> GroceryCatalog:
    """Items spread over the aisles, each with a cycle, a staple flag and a popularity."""
    aisle = np.sort(rng.integers(0, len(AISLES), n_items))
    base_cycle = np.array([a[2] for a in AISLES], dtype=np.float64)[aisle]
    cycle = np.clip(base_cycle * rng.lognormal(0.0, 0.2, n_items), 5.0, 35.0)
    staple = rng.random(n_items) < np.array([a[3] for a in AISLES])[aisle]
    popularity = 1.0 / np.power(1.0 + rng.permutation(n_items), 0.9)
    popularity /= popularity.sum()
    brand = rng.integers(0, len(BRANDS), n_items)
    raw_ids = [f"G{i:05d}" for i in range(n_items)]
    titles = [
        f"{BRANDS[b]} {AISLES[a][0]} {AISLES[a][1]} #{i}"
        for i, (a, b) in enumerate(zip(aisle, brand, strict=True))
    ]
    frame = pl.DataFrame(
        {
            RAW_ITEM_ID: raw_ids,
            TITLE: titles,
            DESCRIPTION: [
                f"{AISLES[a][0]}, bought every {c:.0f} days"
                for a, c in zip(aisle, cycle, strict=True)
            ],
            CATEGORY: [AISLES[a][0] for a in aisle],
            BRAND: [BRANDS[b] for b in brand],
            PRICE: np.round(rng.lognormal(2.0, 0.6, n_items), 2),
            IN_STOCK: rng.random(n_items) < 0.97,
        }
    )
    return GroceryCatalog(frame, aisle.astype(np.int64), cycle, staple, popularity)


def _baskets(
    catalog: GroceryCatalog, n_users: int, end: int, rng: np.random.Generator
) -> tuple[list[int], list[int], list[int], list[int]]:
    """(user, item, timestamp, order number) of every purchase, in order."""
    users: list[int] = []
    items: list[int] = []
    stamps: list[int] = []
    orders: list[int] = []
    n_items = catalog.aisle.size
    staples = np.flatnonzero(catalog.staple)
    if staples.size == 0:
        staples = np.arange(n_items)
    staple_p = catalog.popularity[staples] / catalog.popularity[staples].sum()
    start = end - WINDOW_DAYS * _DAY
    order = 0
    for user in range(n_users):
        count = min(int(rng.integers(5, 26)), staples.size)
        own = rng.choice(staples, size=count, replace=False, p=staple_p)
        cycles = catalog.cycle_days[own] * rng.lognormal(0.0, 0.25, count)
        last = -rng.random(count) * cycles  # staggered: not everything due on day one
        favourite = rng.choice(len(AISLES), size=2, replace=False)
        in_favourite = np.isin(catalog.aisle, favourite)
        gap = float(rng.uniform(3.0, 9.0))
        day = float(rng.uniform(0.0, gap))
        explore = float(rng.uniform(2.0, 5.0))
        while day < WINDOW_DAYS:
            due = (day - last) >= cycles * rng.uniform(0.85, 1.15, count)
            chosen = own[due & (rng.random(count) < 0.9)]
            last[due] = day
            extra = int(rng.poisson(explore))
            extra = max(extra, MIN_BASKET - chosen.size)
            if extra > 0:
                pool = in_favourite if rng.random() < 0.6 else np.ones(n_items, dtype=bool)
                p = np.where(pool, catalog.popularity, 0.0)
                p[chosen] = 0.0
                extra = min(extra, int((p > 0).sum()))
                if extra > 0:
                    added = rng.choice(n_items, size=extra, replace=False, p=p / p.sum())
                    chosen = np.concatenate([chosen, added])
            if chosen.size > MAX_BASKET:
                chosen = rng.choice(chosen, size=MAX_BASKET, replace=False)
            rng.shuffle(chosen)
            moment = start + int(day * _DAY) + int(rng.integers(8 * 3600, 20 * 3600))
            for position, item in enumerate(chosen.tolist()):
                users.append(user)
                items.append(int(item))
                stamps.append(moment + 5 * position)
                orders.append(order)
            order += 1
            day += gap * float(rng.uniform(0.7, 1.3))
    return users, items, stamps, orders


def generate_grocery(
    out_dir: Path,
    *,
    users: int = 2000,
    items: int = 1000,
    seed: int = 42,
    file_format: FileFormat = "parquet",
) -> ShopSummary:
    """Write a grocery shop's `catalog`, `events` (orders) and `queries` files.

    Args:
        out_dir: Output folder, created if missing; existing files are overwritten.
        users: Shoppers (each places an order every 3-9 days over 180 days).
        items: Catalog items.
        seed: Random seed (>= 0); the same seed writes the same shop.
        file_format: parquet, csv or jsonl.

    Returns:
        Paths, counts and a demo user (the number of events follows from the users).

    Raises:
        ValueError: a count below 1 (items below 30), a negative seed, an unknown format.
    """
    if users < 1 or items < 30:
        raise ValueError(f"need users >= 1 and items >= 30, got {users} and {items}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if file_format not in ("parquet", "csv", "jsonl"):
        raise ValueError(f"file_format must be parquet, csv or jsonl, got {file_format!r}")
    catalog_seed, event_seed = np.random.SeedSequence(seed).spawn(2)
    catalog = build_grocery_catalog(items, np.random.default_rng(catalog_seed))
    user_rows, item_rows, stamps, orders = _baskets(
        catalog, users, window_end(seed), np.random.default_rng(event_seed)
    )
    raw_items = catalog.frame[RAW_ITEM_ID]
    events = pl.DataFrame(
        {
            RAW_USER_ID: [f"shopper{u:05d}" for u in user_rows],
            RAW_ITEM_ID: raw_items.gather(item_rows),
            EVENT_TYPE: [EventType.PURCHASE.value] * len(item_rows),
            TIMESTAMP: pl.Series(stamps, dtype=pl.Int64),
            SESSION_ID: [f"order{o:07d}" for o in orders],
        }
    ).sort(TIMESTAMP, RAW_USER_ID, maintain_order=True)
    queries = pl.DataFrame(
        {
            QUERY: [AISLES[int(a)][0] for a in catalog.aisle],
            RAW_ITEM_ID: raw_items,
            RELEVANCE: [2.0] * items,
        }
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.{file_format}" for name in ("catalog", "events", "queries")]
    _write(catalog.frame, paths[0], file_format)
    _write(events, paths[1], file_format)
    _write(queries, paths[2], file_format)
    busiest = events.group_by(RAW_USER_ID).len().sort("len", RAW_USER_ID, descending=[True, False])
    return ShopSummary(
        catalog_path=paths[0],
        events_path=paths[1],
        queries_path=paths[2],
        n_items=items,
        n_users=int(events[RAW_USER_ID].n_unique()),
        n_events=events.height,
        n_queries=len(AISLES),
        example_user_id=str(busiest[RAW_USER_ID][0]) if busiest.height else "",
        example_query_en="milk",
        example_query_zh="牛奶",
    )


__all__ = ["AISLES", "GroceryCatalog", "build_grocery_catalog", "generate_grocery"]
