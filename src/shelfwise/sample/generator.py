"""`generate_shop`: write a bilingual sample shop (catalog, events, labelled queries).

The three files use the shelfwise column names from `contracts.py`, so a config needs
no column mapping. Everything is drawn from one seed: the same seed writes the same
data, and the catalog does not depend on the number of users or events.

Events cover the 90 days before a fixed date derived from the seed (never "now"). There
are no `search` rows: every row needs an item, so a query appears as the `query` of the
`click` rows on its results page (and of the `cart` and `purchase` rows that follow).
Browsing produces `view` rows without a query.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
from numpy.typing import NDArray

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
from shelfwise.sample._catalog import CatalogModel, build_catalog
from shelfwise.sample._labels import build_labels, label_count
from shelfwise.sample._queries import render_query
from shelfwise.sample._sessions import PURCHASE, Sessions, simulate
from shelfwise.sample._shoppers import ShopperModel, build_shoppers

FileFormat = Literal["parquet", "csv", "jsonl"]
WINDOW_DAYS = 90
_LATEST_END = 1_735_603_200  # 2024-12-31 00:00:00 UTC; the window ends up to 60 days earlier
_EVENT_KINDS = (EventType.VIEW, EventType.CLICK, EventType.CART, EventType.PURCHASE)
_FIRST_GUESS_ROWS_PER_SESSION = 3.4
_MAX_ATTEMPTS = 8


@dataclass(frozen=True)
class ShopSummary:
    """What `generate_shop` wrote.

    Attributes:
        catalog_path: The catalog file.
        events_path: The events file.
        queries_path: The labelled queries file.
        n_items: Catalog rows.
        n_users: Distinct users in the events.
        n_events: Event rows.
        n_queries: Distinct labelled queries.
        example_user_id: A raw user id with a typical, purchase-bearing history.
        example_query_en: An English query with several exact matches ("red dress").
        example_query_zh: A Chinese query with several exact matches ("联想 笔记本电脑").
    """

    catalog_path: Path
    events_path: Path
    queries_path: Path
    n_items: int
    n_users: int
    n_events: int
    n_queries: int
    example_user_id: str
    example_query_en: str
    example_query_zh: str


def window_end(seed: int) -> int:
    """Unix time at which the events of `seed` end (a midnight UTC in late 2024)."""
    return _LATEST_END - (seed % 61) * 86_400


def _write(frame: pl.DataFrame, path: Path, file_format: FileFormat) -> None:
    if file_format == "parquet":
        frame.write_parquet(path)
    elif file_format == "csv":
        frame.write_csv(path)
    else:
        frame.write_ndjson(path)


def _simulate_enough(
    catalog: CatalogModel,
    shoppers: ShopperModel,
    n_events: int,
    seed_sequence: np.random.SeedSequence,
    end: int,
) -> tuple[Sessions, np.random.Generator]:
    """Simulate at least `n_events` rows, re-estimating the rows per session if short."""
    rows_per_session = _FIRST_GUESS_ROWS_PER_SESSION
    for _ in range(_MAX_ATTEMPTS):
        rng = np.random.default_rng(seed_sequence.spawn(1)[0])
        n_sessions = math.ceil(1.08 * n_events / rows_per_session) + 20
        sessions = simulate(
            catalog,
            shoppers,
            n_sessions=n_sessions,
            window_end=end,
            window_days=WINDOW_DAYS,
            rng=rng,
        )
        if len(sessions.item) >= n_events:
            return sessions, rng
        rows_per_session = max(len(sessions.item), 1) / n_sessions / 1.05
    raise RuntimeError(  # unreachable in practice: the estimate converges in one retry
        f"could not simulate {n_events} events in {_MAX_ATTEMPTS} attempts"
    )


def _kept_sessions(
    sessions: Sessions, n_events: int, rng: np.random.Generator
) -> NDArray[np.bool_]:
    """Whole sessions, in random order, adding up to exactly `n_events` rows if possible."""
    n_sessions = len(sessions.session_start)
    sizes = np.bincount(sessions.session, minlength=n_sessions)
    order = rng.permutation(n_sessions)
    total = np.cumsum(sizes[order])
    n_prefix = int(np.searchsorted(total, n_events, side="right"))
    keep = np.zeros(n_sessions, dtype=bool)
    keep[order[:n_prefix]] = True
    remaining = n_events - (int(total[n_prefix - 1]) if n_prefix else 0)
    rest = order[n_prefix:]
    rest_sizes = sizes[rest].copy()
    while remaining > 0:
        fitting = np.flatnonzero((rest_sizes > 0) & (rest_sizes <= remaining))
        if len(fitting) == 0:
            break
        chosen = int(fitting[0])
        keep[rest[chosen]] = True
        remaining -= int(rest_sizes[chosen])
        rest_sizes[chosen] = 0
    return keep


def _events_frame(
    sessions: Sessions, keep: NDArray[np.bool_], catalog: CatalogModel, shoppers: ShopperModel
) -> pl.DataFrame:
    rows = np.flatnonzero(keep[sessions.session])
    kept_sessions = np.flatnonzero(keep)
    chronological = kept_sessions[
        np.lexsort((kept_sessions, sessions.session_start[kept_sessions]))
    ]
    session_number = np.full(len(keep), -1, dtype=np.int64)
    session_number[chronological] = np.arange(1, len(chronological) + 1)
    number = session_number[sessions.session[rows]]
    kind = sessions.kind[rows]
    timestamp = sessions.timestamp[rows]
    order = np.lexsort((kind, number, timestamp))
    rows, number, kind, timestamp = rows[order], number[order], kind[order], timestamp[order]
    item = sessions.item[rows]

    query = sessions.query[rows]
    codes, query_index = np.unique(query, return_inverse=True)
    texts: list[str | None] = [render_query(int(c)) if c >= 0 else None for c in codes.tolist()]
    value = np.where(kind == PURCHASE, catalog.price[item], np.nan)
    width = max(7, len(str(len(chronological))))
    frame = pl.DataFrame(
        {
            RAW_USER_ID: pl.Series(shoppers.raw_user_ids, dtype=pl.String).gather(
                sessions.user[rows]
            ),
            RAW_ITEM_ID: pl.Series(catalog.raw_item_ids, dtype=pl.String).gather(item),
            EVENT_TYPE: pl.Series([k.value for k in _EVENT_KINDS], dtype=pl.String).gather(kind),
            TIMESTAMP: pl.Series(timestamp, dtype=pl.Int64),
            VALUE: pl.Series(value, dtype=pl.Float64, nan_to_null=True),
            SESSION_ID: pl.Series(number, dtype=pl.Int64),
            QUERY: pl.Series(texts, dtype=pl.String).gather(query_index.ravel()),
            POSITION: pl.Series(sessions.position[rows], dtype=pl.Int64),
        }
    ).with_columns(pl.when(pl.col(POSITION) > 0).then(pl.col(POSITION)).alias(POSITION))
    return frame.with_columns(
        pl.concat_str(pl.lit("S"), pl.col(SESSION_ID).cast(pl.String).str.zfill(width)).alias(
            SESSION_ID
        )
    )


def _example_user(frame: pl.DataFrame) -> str:
    """A user with a cart or purchase whose event count is near the 90th percentile."""
    per_user = frame.group_by(RAW_USER_ID).agg(
        pl.len().alias("events"),
        pl.col(EVENT_TYPE)
        .is_in([EventType.CART.value, EventType.PURCHASE.value])
        .sum()
        .alias("intent"),
    )
    target = per_user["events"].quantile(0.9, interpolation="nearest") or 0
    candidates = per_user.filter(pl.col("intent") > 0)
    if candidates.is_empty():
        candidates = per_user
    best = candidates.with_columns((pl.col("events") - target).abs().alias("distance")).sort(
        ["distance", RAW_USER_ID]
    )
    return str(best[RAW_USER_ID][0])


def generate_shop(
    out_dir: Path,
    *,
    users: int = 2000,
    items: int = 1000,
    events: int = 100_000,
    seed: int = 42,
    file_format: FileFormat = "parquet",
) -> ShopSummary:
    """Generate the sample shop and write `catalog`, `events` and `queries` files.

    Args:
        out_dir: Output folder, created if missing; existing files are overwritten.
        users: Number of simulated shoppers (users without events are left out).
        items: Number of catalog items.
        events: Number of event rows to write (met exactly unless sessions cannot add
            up to it; always within 5% for more than a few hundred events).
        seed: Random seed (>= 0); the same seed writes the same data.
        file_format: parquet, csv or jsonl; files get the matching extension.

    Returns:
        Paths, counts and demo examples.

    Raises:
        ValueError: When a count is below 1, the seed is negative or the format is
            unknown.
    """
    for name, count in (("users", users), ("items", items), ("events", events)):
        if count < 1:
            raise ValueError(f"{name} must be at least 1, got {count}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if file_format not in ("parquet", "csv", "jsonl"):
        raise ValueError(f"file_format must be parquet, csv or jsonl, got {file_format!r}")
    catalog_seed, shopper_seed, label_seed, event_seed = np.random.SeedSequence(seed).spawn(4)
    catalog = build_catalog(items, np.random.default_rng(catalog_seed))
    shoppers = build_shoppers(users, catalog, np.random.default_rng(shopper_seed))
    labels = build_labels(catalog, label_count(items), np.random.default_rng(label_seed))
    sessions, rng = _simulate_enough(catalog, shoppers, events, event_seed, window_end(seed))
    keep = _kept_sessions(sessions, events, rng)
    events_frame = _events_frame(sessions, keep, catalog, shoppers)

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.{file_format}" for name in ("catalog", "events", "queries")]
    for frame, path in zip((catalog.frame, events_frame, labels.frame), paths, strict=True):
        _write(frame, path, file_format)
    return ShopSummary(
        catalog_path=paths[0],
        events_path=paths[1],
        queries_path=paths[2],
        n_items=catalog.frame.height,
        n_users=events_frame[RAW_USER_ID].n_unique(),
        n_events=events_frame.height,
        n_queries=labels.n_queries,
        example_user_id=_example_user(events_frame),
        example_query_en=labels.example_en,
        example_query_zh=labels.example_zh,
    )
