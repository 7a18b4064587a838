"""Large sample shops: simulate sessions in pieces and write the events day by day.

The events file is sorted by time, but sessions are simulated in random order. So:

1. sessions are simulated `SESSIONS_PER_CHUNK` at a time (each piece with its own
   seeded generator), and each piece's rows are spilled to a Parquet file in a
   temporary folder, one row group per day of the window; only per-session facts
   (start time, row count: 16 bytes a session) stay in memory;
2. whole sessions are kept until the wanted number of rows is met, and the kept ones
   are numbered in order of start time, as for small shops;
3. day by day, the spilled rows are read back, sorted (timestamp, session number,
   kind) and appended to the events file: Parquet row groups, or CSV / JSON lines.

Memory holds one piece of sessions or one day of rows, never all events.
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Final

import numpy as np
import polars as pl
from numpy.typing import NDArray

from shelfwise.contracts import TIMESTAMP
from shelfwise.ingest.parts import ParquetAppender
from shelfwise.sample._catalog import CatalogModel
from shelfwise.sample._events import (
    SESSIONS_PER_CHUNK,
    WINDOW_DAYS,
    EventRows,
    events_table,
    first_session_guess,
    kept_sessions,
    session_numbers,
    user_counts,
)
from shelfwise.sample._sessions import simulate
from shelfwise.sample._shoppers import ShopperModel

_DAY: Final = 86_400
_COLUMNS: Final = ("session", "user", "item", "kind", "timestamp", "query", "position")


def stream_events(
    catalog: CatalogModel,
    shoppers: ShopperModel,
    n_events: int,
    seed_sequence: np.random.SeedSequence,
    end: int,
    path: Path,
    file_format: str,
    sessions_per_chunk: int = SESSIONS_PER_CHUNK,
    extra: pl.DataFrame | None = None,
) -> tuple[int, NDArray[np.int64], NDArray[np.int64]]:
    """Simulate and write about `n_events` events to `path` in bounded memory.

    Args:
        extra: further events (fake users', `_bots.bot_events`) merged into each day
            in time order; not counted per shopper. Held in memory: a bounded share.

    Returns:
        Rows written (shoppers' only), and events and cart/purchase events per shopper.
    """
    start = end - WINDOW_DAYS * _DAY
    child = seed_sequence.spawn(1)[0]
    work = Path(tempfile.mkdtemp(prefix="shelfwise-shop-", dir=path.parent))
    try:
        starts, sizes = _simulate_pieces(
            catalog, shoppers, n_events, child, (start, end), work, sessions_per_chunk
        )
        keep = kept_sessions(sizes, n_events, np.random.default_rng(child.spawn(1)[0]))
        number, width = session_numbers(starts, keep)
        extra_days = None
        if extra is not None and extra.height:
            day = ((pl.col(TIMESTAMP) - start) // _DAY).clip(0, WINDOW_DAYS)
            extra_days = extra.with_columns(day.alias("__day")).partition_by(
                "__day", as_dict=True, include_key=False
            )
        return _write_days(
            work, keep, number, width, catalog, shoppers, path, file_format, extra_days
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _simulate_pieces(
    catalog: CatalogModel,
    shoppers: ShopperModel,
    n_events: int,
    child: np.random.SeedSequence,
    window: tuple[int, int],
    work: Path,
    piece_sessions: int,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Simulate pieces of sessions until there are enough rows; spill rows by day."""
    start, end = window
    wanted = first_session_guess(n_events)
    starts: list[NDArray[np.int64]] = []
    sizes: list[NDArray[np.int64]] = []
    done = rows = 0
    piece = 0
    while done < wanted or rows < n_events:
        count = min(piece_sessions, wanted - done) if done < wanted else piece_sessions
        rng = np.random.default_rng(child.spawn(1)[0])
        sessions = simulate(
            catalog,
            shoppers,
            n_sessions=count,
            window_end=end,
            window_days=WINDOW_DAYS,
            rng=rng,
        )
        day = np.clip((sessions.timestamp - start) // _DAY, 0, WINDOW_DAYS)
        order = np.argsort(day, kind="stable")
        bounds = np.searchsorted(day[order], np.arange(WINDOW_DAYS + 2))
        columns = {
            "day": day,
            "session": sessions.session + done,
            "user": sessions.user,
            "item": sessions.item,
            "kind": sessions.kind,
            "timestamp": sessions.timestamp,
            "query": sessions.query,
            "position": sessions.position,
        }
        # One file per piece, one row group per day: reading a day back skips the
        # other row groups by their statistics (one file per day and piece meant
        # thousands of small files, slow to write and to delete).
        with ParquetAppender(work / f"piece-{piece:05d}.parquet") as spill:
            for index in range(WINDOW_DAYS + 1):
                rows_of_day = order[bounds[index] : bounds[index + 1]]
                spill.write(pl.DataFrame({k: v[rows_of_day] for k, v in columns.items()}))
        starts.append(sessions.session_start)
        sizes.append(np.bincount(sessions.session, minlength=count).astype(np.int64))
        done += count
        rows += len(sessions.item)
        piece += 1
    return np.concatenate(starts), np.concatenate(sizes)


def _write_days(
    work: Path,
    keep: NDArray[np.bool_],
    number: NDArray[np.int64],
    width: int,
    catalog: CatalogModel,
    shoppers: ShopperModel,
    path: Path,
    file_format: str,
    extra_days: dict[tuple[object, ...], pl.DataFrame] | None = None,
) -> tuple[int, NDArray[np.int64], NDArray[np.int64]]:
    per_user = np.zeros(shoppers.n_users, dtype=np.int64)
    intent = np.zeros(shoppers.n_users, dtype=np.int64)
    written = 0
    header = True
    with ExitStack() as stack:
        if file_format == "parquet":
            appender = stack.enter_context(ParquetAppender(path))
        else:
            handle = stack.enter_context(path.open("wb"))
        spilled = pl.scan_parquet(work / "piece-*.parquet")
        for index in range(WINDOW_DAYS + 1):
            day = spilled.filter(pl.col("day") == index).collect()
            fake = (extra_days or {}).get((index,))
            arrays = {column: day[column].to_numpy() for column in _COLUMNS}
            kept = keep[arrays["session"]]
            if not kept.any() and fake is None:
                continue
            arrays = {column: values[kept] for column, values in arrays.items()}
            rows = EventRows.ordered(
                arrays["user"],
                arrays["item"],
                arrays["kind"],
                arrays["timestamp"],
                arrays["query"],
                arrays["position"],
                number[arrays["session"]],
            )
            frame = events_table(rows, catalog, shoppers, width)
            if fake is not None:  # fake users' events in time order among the day's
                frame = (
                    pl.concat([frame, fake], how="diagonal_relaxed")
                    .sort(TIMESTAMP, maintain_order=True)
                    .select(frame.columns)
                    .cast(frame.schema)
                )
            if file_format == "parquet":
                appender.write(frame)
            elif file_format == "csv":
                frame.write_csv(handle, include_header=header)  # the first rows
                header = False
            else:
                frame.write_ndjson(handle)
            events, carts = user_counts(rows.user, rows.kind, shoppers.n_users)
            per_user += events
            intent += carts
            written += len(rows.user)
    return written, per_user, intent
