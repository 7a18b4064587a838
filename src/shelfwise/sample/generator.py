"""`generate_shop`: write a bilingual sample shop (catalog, events, labelled queries).

The three files use the shelfwise column names from `contracts.py`, so a config needs
no column mapping. Everything is drawn from one seed: the same seed writes the same
data, and the catalog does not depend on the number of users or events.

Large shops (above ~1.3M events) are simulated and written in pieces of sessions, day
by day, so memory does not grow with the number of events (see `_stream`).

Events cover the 90 days before a fixed date derived from the seed (never "now"). There
are no `search` rows: every row needs an item, so a query appears as the `query` of the
`click` rows on its results page (and of the `cart` and `purchase` rows that follow).
Browsing produces `view` rows without a query.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
from numpy.typing import NDArray

from shelfwise.sample._bots import bot_event_count, bot_events, inject_bots
from shelfwise.sample._catalog import CatalogModel, build_catalog
from shelfwise.sample._events import (
    FIRST_GUESS_ROWS_PER_SESSION,
    SESSIONS_PER_CHUNK,
    WINDOW_DAYS,
    EventRows,
    events_table,
    example_user,
    first_session_guess,
    kept_sessions,
    session_numbers,
    user_counts,
)
from shelfwise.sample._labels import build_labels, label_count
from shelfwise.sample._sessions import Sessions, simulate
from shelfwise.sample._shoppers import ShopperModel, build_shoppers
from shelfwise.sample._stream import stream_events

FileFormat = Literal["parquet", "csv", "jsonl"]
_LATEST_END = 1_735_603_200  # 2024-12-31 00:00:00 UTC; the window ends up to 60 days earlier
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
        bots_path: The fake users' truth (`bots.<format>`), or None without `bots`.
        n_bot_users: Fake users added (`bots`).
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
    bots_path: Path | None = None
    n_bot_users: int = 0


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
    rows_per_session = FIRST_GUESS_ROWS_PER_SESSION
    for _ in range(_MAX_ATTEMPTS):
        rng = np.random.default_rng(seed_sequence.spawn(1)[0])
        n_sessions = first_session_guess(n_events, rows_per_session)
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


def _events_frame(
    sessions: Sessions, keep: NDArray[np.bool_], catalog: CatalogModel, shoppers: ShopperModel
) -> pl.DataFrame:
    rows = np.flatnonzero(keep[sessions.session])
    session_number, width = session_numbers(sessions.session_start, keep)
    ordered = EventRows.ordered(
        sessions.user[rows],
        sessions.item[rows],
        sessions.kind[rows],
        sessions.timestamp[rows],
        sessions.query[rows],
        sessions.position[rows],
        session_number[sessions.session[rows]],
    )
    return events_table(ordered, catalog, shoppers, width)


def generate_shop(
    out_dir: Path,
    *,
    users: int = 2000,
    items: int = 1000,
    events: int = 100_000,
    seed: int = 42,
    file_format: FileFormat = "parquet",
    sessions_per_chunk: int = SESSIONS_PER_CHUNK,
    bots: float = 0.0,
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
        sessions_per_chunk: shops needing more sessions than this are simulated and
            written in pieces of this many sessions (memory follows it, not `events`).
        bots: the share of fake events (bots, fake-order rings) to add, labelled in
            `bots.<format>` (see `sample/_bots.py`); 0 writes exactly the shop without.

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
    if not 0.0 <= bots < 1.0:
        raise ValueError(f"bots must be a share in [0, 1), got {bots}")
    catalog_seed, shopper_seed, label_seed, event_seed = np.random.SeedSequence(seed).spawn(4)
    catalog = build_catalog(items, np.random.default_rng(catalog_seed))
    shoppers = build_shoppers(users, catalog, np.random.default_rng(shopper_seed))
    labels = build_labels(catalog, label_count(items), np.random.default_rng(label_seed))

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.{file_format}" for name in ("catalog", "events", "queries")]
    _write(catalog.frame, paths[0], file_format)
    _write(labels.frame, paths[2], file_format)
    end = window_end(seed)
    bots_path: Path | None = None
    n_bots = 0
    if first_session_guess(events) <= sessions_per_chunk:
        # One piece, as always: small shops keep their exact seeded output.
        sessions, rng = _simulate_enough(catalog, shoppers, events, event_seed, end)
        sizes = np.bincount(sessions.session, minlength=len(sessions.session_start))
        keep = kept_sessions(sizes, events, rng)
        events_frame = _events_frame(sessions, keep, catalog, shoppers)
        if bots:
            events_frame, truth = inject_bots(
                events_frame,
                raw_item_ids=catalog.raw_item_ids,
                prices=catalog.price,
                first_user_number=users + 1,
                share=bots,
                window_end=end,
                window_days=WINDOW_DAYS,
                rng=np.random.default_rng([seed, 0xB07]),  # apart from the shop's own draws
            )
            bots_path = out_dir / f"bots.{file_format}"
            _write(truth, bots_path, file_format)
            n_bots = truth.height
        _write(events_frame, paths[1], file_format)
        kept = keep[sessions.session]
        per_user, intent = user_counts(sessions.user[kept], sessions.kind[kept], users)
        n_events = events_frame.height
    else:
        fake = None
        if bots:  # drawn up front (a bounded share of the rows), merged day by day
            fake, truth = bot_events(
                bot_event_count(events, bots),
                raw_item_ids=catalog.raw_item_ids,
                prices=catalog.price,
                first_user_number=users + 1,
                window_end=end,
                window_days=WINDOW_DAYS,
                rng=np.random.default_rng([seed, 0xB07]),
            )
            bots_path = out_dir / f"bots.{file_format}"
            _write(truth, bots_path, file_format)
            n_bots = truth.height
        n_events, per_user, intent = stream_events(
            catalog,
            shoppers,
            events,
            event_seed,
            end,
            paths[1],
            file_format,
            sessions_per_chunk,
            extra=fake,
        )
        n_events += fake.height if fake is not None else 0
    return ShopSummary(
        catalog_path=paths[0],
        events_path=paths[1],
        queries_path=paths[2],
        n_items=catalog.frame.height,
        n_users=int(np.count_nonzero(per_user)) + n_bots,
        n_events=n_events,
        n_queries=labels.n_queries,
        example_user_id=example_user(shoppers.raw_user_ids, per_user, intent),
        example_query_en=labels.example_en,
        example_query_zh=labels.example_zh,
        bots_path=bots_path,
        n_bot_users=n_bots,
    )
