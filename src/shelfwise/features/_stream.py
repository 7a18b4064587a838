"""validate's events read batch by batch into compact columns (ids become indices).

Why: holding every event with its raw ids, type and query as strings took 4.5 GB at
10M events (issue 13); the matrices and sequences the stage writes take about 40 bytes
an event. Here each record batch of `events.parquet` (validate writes one row group per
batch) is joined to the id maps and kept as numbers only: user and item index
(UInt32), timestamp, weight (Float32), event type (a category), input row number, and
the split when the data gives one. About 30 bytes an event, so the stage's peak grows
with its outputs, not with the input's strings. Events from a search (non-empty query)
are kept apart with their query and position: they are the search re-ranker's labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final, cast

import polars as pl
import pyarrow.parquet as pq

from shelfwise.contracts import (
    EVENT_TYPE,
    ITEM_INDEX,
    POSITION,
    QUERY,
    RAW_ITEM_ID,
    RAW_USER_ID,
    ROW_NUMBER,
    SESSION_ID,
    SPLIT,
    TIMESTAMP,
    USER_INDEX,
    WEIGHT,
)

BATCH_ROWS: Final = 1_000_000  # events read at once: ~100 MB of Arrow strings at most
INDEX_DTYPE: Final = pl.UInt32()  # 4 billion users or items are beyond one machine anyway
SEARCH_SCHEMA: Final[dict[str, pl.DataType]] = {
    USER_INDEX: pl.Int64(),
    ITEM_INDEX: pl.Int64(),
    EVENT_TYPE: pl.String(),
    TIMESTAMP: pl.Int64(),
    QUERY: pl.String(),
    POSITION: pl.Int64(),
    ROW_NUMBER: pl.UInt32(),
}


@dataclass(frozen=True)
class CompactEvents:
    """Every event as numbers, in input order, and the search events apart.

    Attributes:
        frame: USER_INDEX, ITEM_INDEX (UInt32; null for an item the catalog lacks),
            EVENT_TYPE (category), TIMESTAMP, WEIGHT (Float32), ROW_NUMBER (UInt32, the
            input order) and SPLIT (the data's own, only with `keep_split`).
        search: the events with a non-empty query (`SEARCH_SCHEMA`), in input order.
    """

    frame: pl.DataFrame
    search: pl.DataFrame


def user_ids(events: Path) -> pl.DataFrame:
    """USER_INDEX (Int64) and RAW_USER_ID: the distinct users, sorted (a streaming scan)."""
    if not _has_rows(events):
        return pl.DataFrame(schema={USER_INDEX: pl.Int64, RAW_USER_ID: pl.String})
    return (
        pl.scan_parquet(events)
        .select(RAW_USER_ID)
        .unique()
        .collect(engine="streaming")
        .sort(RAW_USER_ID)
        .with_row_index(USER_INDEX)
        .with_columns(pl.col(USER_INDEX).cast(pl.Int64))
        .select(USER_INDEX, RAW_USER_ID)
    )


def read_compact(
    events: Path,
    users: pl.DataFrame,
    items: pl.DataFrame,
    weights: dict[str, float],
    *,
    keep_split: bool,
    keep_sessions: bool = False,
    batch_rows: int = BATCH_ROWS,
) -> CompactEvents:
    """Read `events` a batch at a time into `CompactEvents`.

    Args:
        events: validate's `events.parquet`.
        users: USER_INDEX and RAW_USER_ID (`user_ids`).
        items: ITEM_INDEX and RAW_ITEM_ID of the catalog.
        weights: event type -> weight (types not listed weigh 0).
        keep_split: keep the data's SPLIT column (`split.method: given`).
        keep_sessions: keep the data's SESSION_ID column, when it has one (a category;
            the session and last_basket splits read it).
        batch_rows: events per batch (the test proves any size gives the same result).
    """
    user_map = users.select(RAW_USER_ID, pl.col(USER_INDEX).cast(INDEX_DTYPE))
    item_map = items.select(RAW_ITEM_ID, pl.col(ITEM_INDEX).cast(INDEX_DTYPE))
    frames: list[pl.DataFrame] = []
    searches: list[pl.DataFrame] = []
    offset = 0
    if _has_rows(events):
        source = pq.ParquetFile(events)
        names = set(source.schema_arrow.names)
        wanted = [RAW_USER_ID, RAW_ITEM_ID, EVENT_TYPE, TIMESTAMP, QUERY, POSITION]
        if keep_split:
            wanted.append(SPLIT)
        if keep_sessions:
            wanted.append(SESSION_ID)
        columns = [name for name in wanted if name in names]
        for batch in source.iter_batches(batch_size=batch_rows, columns=columns):
            chunk = cast(pl.DataFrame, pl.from_arrow(batch))  # a record batch is a frame
            compact, search = _compact(chunk, user_map, item_map, weights, offset, keep_split)
            frames.append(compact)
            if search is not None:
                searches.append(search)
            offset += chunk.height
    frame = pl.concat(frames, rechunk=True) if frames else _empty_frame(keep_split)
    search = pl.concat(searches, rechunk=True) if searches else pl.DataFrame(schema=SEARCH_SCHEMA)
    return CompactEvents(frame=frame, search=search)


def _compact(
    chunk: pl.DataFrame,
    user_map: pl.DataFrame,
    item_map: pl.DataFrame,
    weights: dict[str, float],
    offset: int,
    keep_split: bool,
) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    indexed = (
        chunk.with_row_index(ROW_NUMBER, offset=offset)
        .join(user_map, on=RAW_USER_ID, how="left", maintain_order="left")
        .join(item_map, on=RAW_ITEM_ID, how="left", maintain_order="left")
    )
    weight = pl.col(EVENT_TYPE).replace_strict(weights, default=0.0).cast(pl.Float32)
    columns = [
        pl.col(USER_INDEX),
        pl.col(ITEM_INDEX),
        pl.col(EVENT_TYPE).cast(pl.Categorical),
        pl.col(TIMESTAMP),
        weight.alias(WEIGHT),
        pl.col(ROW_NUMBER),
    ]
    if keep_split and SPLIT in indexed.columns:
        columns.append(pl.col(SPLIT))
    if SESSION_ID in indexed.columns:  # read only when asked for (`keep_sessions`)
        columns.append(pl.col(SESSION_ID).cast(pl.String).cast(pl.Categorical))
    compact = indexed.select(columns)
    search = None
    if QUERY in indexed.columns:
        position = (
            pl.col(POSITION).cast(pl.Int64)
            if POSITION in indexed.columns
            else pl.lit(None, dtype=pl.Int64).alias(POSITION)
        )
        search = indexed.filter(pl.col(QUERY).str.strip_chars().str.len_chars() > 0).select(
            pl.col(USER_INDEX).cast(pl.Int64),
            pl.col(ITEM_INDEX).cast(pl.Int64),
            pl.col(EVENT_TYPE),
            pl.col(TIMESTAMP),
            pl.col(QUERY),
            position,
            pl.col(ROW_NUMBER),
        )
    return compact, search


def _empty_frame(keep_split: bool) -> pl.DataFrame:
    schema: dict[str, pl.DataType] = {
        USER_INDEX: INDEX_DTYPE,
        ITEM_INDEX: INDEX_DTYPE,
        EVENT_TYPE: pl.Categorical(),
        TIMESTAMP: pl.Int64(),
        WEIGHT: pl.Float32(),
        ROW_NUMBER: pl.UInt32(),
    }
    if keep_split:
        schema[SPLIT] = pl.String()
    return pl.DataFrame(schema=schema)


def _has_rows(path: Path) -> bool:
    return path.is_file() and pq.ParquetFile(path).metadata.num_rows > 0
