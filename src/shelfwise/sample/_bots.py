"""Labelled fake traffic for the sample shop (`shelfwise generate --bots SHARE`).

Three kinds of fake users are added on top of the simulated shoppers, so that a share
`SHARE` of the written events is fake:

- `scraper` (45% of the fake events): 150-600 views (the last scraper fewer, at least
  30) of random products, most of them in the same second as the one before (bursts
  of crawling);
- `click-farm` (35%): 40-200 (at least 25) views and clicks on a few promoted
  products, at a fixed timer of 5-30 s with a few percent of jitter;
- `fake-order-ring` (20%): groups of 5-12 brand-new accounts that buy the same product
  within 30 minutes, half of them after one quick view (刷单).

Their ids continue the shoppers' numbering (nothing in the id gives them away); the
truth is written beside the events as `bots.<format>` (raw_user_id, bot_kind, ring),
so a detector's precision and recall can be measured by user and by event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import polars as pl

from shelfwise.contracts import (
    EVENT_TYPE,
    POSITION,
    QUERY,
    RAW_ITEM_ID,
    RAW_USER_ID,
    SESSION_ID,
    TIMESTAMP,
    VALUE,
    EventType,
)

BOT_KIND: Final = "bot_kind"
RING: Final = "ring"
_SHARES: Final = {"scraper": 0.45, "click-farm": 0.35, "fake-order-ring": 0.20}
_DAY: Final = 86_400


@dataclass
class _Rows:
    user: list[str]
    item: list[int]
    kind: list[str]
    time: list[int]

    def add(self, user: str, items: np.ndarray, kinds: list[str], times: np.ndarray) -> None:
        self.user.extend([user] * len(items))
        self.item.extend(items.tolist())
        self.kind.extend(kinds)
        self.time.extend(times.tolist())


def bot_event_count(n_events: int, share: float) -> int:
    """Fake events to add to `n_events` real ones so that `share` of all are fake."""
    if not 0.0 <= share < 1.0:
        raise ValueError(f"bots must be a share in [0, 1), got {share}")
    return round(n_events * share / (1.0 - share))


def inject_bots(
    events: pl.DataFrame,
    *,
    raw_item_ids: list[str],
    prices: np.ndarray,
    first_user_number: int,
    share: float,
    window_end: int,
    window_days: int,
    rng: np.random.Generator,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Add fake users' events to `events` (sorted by time) and return them with the truth.

    Args:
        events: the shop's events (EVENT_TYPE values from `EventType`).
        raw_item_ids: the catalog's ids.
        prices: price of each catalog item.
        first_user_number: the number of the first fake user id (after the shoppers).
        share: the share of fake events in the result.
        window_end: unix time the events end at.
        window_days: days the events cover.
        rng: draws everything.

    Returns:
        (events with the fake ones, sorted by timestamp; the truth: raw_user_id,
        bot_kind, ring).
    """
    fake, labels = bot_events(
        bot_event_count(events.height, share),
        raw_item_ids=raw_item_ids,
        prices=prices,
        first_user_number=first_user_number,
        window_end=window_end,
        window_days=window_days,
        rng=rng,
    )
    combined = pl.concat([events, fake], how="diagonal_relaxed").sort(
        TIMESTAMP, maintain_order=True
    )
    columns = [c for c in events.columns if c in combined.columns]
    for column in (SESSION_ID, QUERY, POSITION):
        if column not in columns and column in combined.columns:
            columns.append(column)
    return combined.select(columns), labels


def bot_events(
    budget: int,
    *,
    raw_item_ids: list[str],
    prices: np.ndarray,
    first_user_number: int,
    window_end: int,
    window_days: int,
    rng: np.random.Generator,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """About `budget` fake events (scrapers, click farms, fake-order rings) and the truth.

    The fake events are in the order they were drawn (not by time); a large shop's
    generator merges them into its days as it writes them (`_stream.py`).

    Returns:
        (raw_user_id, raw_item_id, event_type, timestamp, value; the truth:
        raw_user_id, bot_kind, ring).
    """
    width = max(6, len(str(first_user_number + budget)))
    rows = _Rows([], [], [], [])
    truth: list[tuple[str, str, int | None]] = []
    n_items = len(raw_item_ids)
    start, end = window_end - window_days * _DAY, window_end - _DAY
    number = first_user_number

    def new_user(kind: str, ring: int | None = None) -> str:
        nonlocal number
        user = f"U{number:0{width}d}"
        number += 1
        truth.append((user, kind, ring))
        return user

    spent = dict.fromkeys(_SHARES, 0)
    goals = {kind: round(budget * part) for kind, part in _SHARES.items()}
    while spent["scraper"] < goals["scraper"]:
        size = max(30, min(int(rng.integers(150, 601)), goals["scraper"] - spent["scraper"]))
        gaps = rng.choice(np.array([0, 0, 0, 1]), size=size)
        gaps[rng.random(size) < 0.02] = rng.integers(60, 3_600)  # a pause between crawls
        times = int(rng.integers(start, end)) + np.cumsum(gaps)
        rows.add(new_user("scraper"), rng.integers(0, n_items, size), ["view"] * size, times)
        spent["scraper"] += size
    while spent["click-farm"] < goals["click-farm"]:
        size = max(25, min(int(rng.integers(40, 201)), goals["click-farm"] - spent["click-farm"]))
        period = float(rng.uniform(5, 30))
        gaps = np.maximum(1, np.round(period * (1 + rng.uniform(-0.04, 0.04, size))))
        times = int(rng.integers(start, end)) + np.cumsum(gaps).astype(np.int64)
        targets = rng.integers(0, n_items, int(rng.integers(2, 6)))
        kinds = rng.choice(np.array(["view", "click"]), size=size).tolist()
        rows.add(new_user("click-farm"), rng.choice(targets, size), kinds, times)
        spent["click-farm"] += size
    ring = 0
    while spent["fake-order-ring"] < goals["fake-order-ring"]:
        item = int(rng.integers(0, n_items))
        begin = int(rng.integers(start, end))
        for _ in range(int(rng.integers(5, 13))):
            user = new_user("fake-order-ring", ring)
            bought = begin + int(rng.integers(0, 1_800))
            if rng.random() < 0.5:
                viewed = bought - int(rng.integers(5, 120))
                rows.add(
                    user, np.array([item, item]), ["view", "purchase"], np.array([viewed, bought])
                )
                spent["fake-order-ring"] += 2
            else:
                rows.add(user, np.array([item]), ["purchase"], np.array([bought]))
                spent["fake-order-ring"] += 1
        ring += 1
    item_index = np.asarray(rows.item, dtype=np.int64)
    kinds = pl.Series(rows.kind, dtype=pl.String)
    fake = pl.DataFrame(
        {
            RAW_USER_ID: pl.Series(rows.user, dtype=pl.String),
            RAW_ITEM_ID: pl.Series(raw_item_ids, dtype=pl.String).gather(item_index),
            EVENT_TYPE: kinds,
            TIMESTAMP: pl.Series(rows.time, dtype=pl.Int64),
            VALUE: pl.Series(prices[item_index], dtype=pl.Float64),
        }
    ).with_columns(
        pl.when(pl.col(EVENT_TYPE) == EventType.PURCHASE.value).then(pl.col(VALUE)).alias(VALUE)
    )
    labels = pl.DataFrame(
        truth, schema={RAW_USER_ID: pl.String, BOT_KIND: pl.String, RING: pl.Int64}, orient="row"
    )
    return fake, labels
