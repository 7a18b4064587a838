"""The events table of the sample shop from simulated sessions, shared by the one-piece
path (`generator`) and the piece-by-piece path for large shops (`_stream`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

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
from shelfwise.sample._catalog import CatalogModel
from shelfwise.sample._queries import render_query
from shelfwise.sample._sessions import CART, PURCHASE
from shelfwise.sample._shoppers import ShopperModel

WINDOW_DAYS = 90
_EVENT_KINDS = (EventType.VIEW, EventType.CLICK, EventType.CART, EventType.PURCHASE)
FIRST_GUESS_ROWS_PER_SESSION = 3.4
# Shops needing more sessions are simulated and written in pieces of this many
# sessions (~1.3M events, ~0.5 GB), so the generator never holds all events; smaller
# shops are simulated in one piece, exactly as before.
SESSIONS_PER_CHUNK = 400_000


def first_session_guess(
    n_events: int, rows_per_session: float = FIRST_GUESS_ROWS_PER_SESSION
) -> int:
    """Sessions simulated for `n_events` rows at the given rows per session."""
    return math.ceil(1.08 * n_events / rows_per_session) + 20


def kept_sessions(
    sizes: NDArray[np.int64], n_events: int, rng: np.random.Generator
) -> NDArray[np.bool_]:
    """Whole sessions, in random order, adding up to exactly `n_events` rows if possible.

    Args:
        sizes: rows of each session.
        n_events: rows wanted.
        rng: draws the order.
    """
    n_sessions = len(sizes)
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


def session_numbers(
    session_start: NDArray[np.int64], keep: NDArray[np.bool_]
) -> tuple[NDArray[np.int64], int]:
    """1-based chronological number of each kept session (-1 for the others), and the
    digits of the session ids."""
    kept = np.flatnonzero(keep)
    chronological = kept[np.lexsort((kept, session_start[kept]))]
    number = np.full(len(keep), -1, dtype=np.int64)
    number[chronological] = np.arange(1, len(chronological) + 1)
    return number, max(7, len(str(len(chronological))))


def events_table(
    rows: EventRows, catalog: CatalogModel, shoppers: ShopperModel, width: int
) -> pl.DataFrame:
    """Event rows (already in output order) as the events table."""
    codes, query_index = np.unique(rows.query, return_inverse=True)
    texts: list[str | None] = [render_query(int(c)) if c >= 0 else None for c in codes.tolist()]
    value = np.where(rows.kind == PURCHASE, catalog.price[rows.item], np.nan)
    frame = pl.DataFrame(
        {
            RAW_USER_ID: pl.Series(shoppers.raw_user_ids, dtype=pl.String).gather(rows.user),
            RAW_ITEM_ID: pl.Series(catalog.raw_item_ids, dtype=pl.String).gather(rows.item),
            EVENT_TYPE: pl.Series([k.value for k in _EVENT_KINDS], dtype=pl.String).gather(
                rows.kind
            ),
            TIMESTAMP: pl.Series(rows.timestamp, dtype=pl.Int64),
            VALUE: pl.Series(value, dtype=pl.Float64, nan_to_null=True),
            SESSION_ID: pl.Series(rows.number, dtype=pl.Int64),
            QUERY: pl.Series(texts, dtype=pl.String).gather(query_index.ravel()),
            POSITION: pl.Series(rows.position, dtype=pl.Int64),
        }
    ).with_columns(pl.when(pl.col(POSITION) > 0).then(pl.col(POSITION)).alias(POSITION))
    return frame.with_columns(
        pl.concat_str(pl.lit("S"), pl.col(SESSION_ID).cast(pl.String).str.zfill(width)).alias(
            SESSION_ID
        )
    )


@dataclass(frozen=True)
class EventRows:
    """Event rows as arrays, in output order (timestamp, session number, kind)."""

    user: NDArray[np.int64]
    item: NDArray[np.int64]
    kind: NDArray[np.int64]
    timestamp: NDArray[np.int64]
    query: NDArray[np.int64]
    position: NDArray[np.int64]
    number: NDArray[np.int64]  # chronological session number

    @classmethod
    def ordered(
        cls,
        user: NDArray[np.int64],
        item: NDArray[np.int64],
        kind: NDArray[np.int64],
        timestamp: NDArray[np.int64],
        query: NDArray[np.int64],
        position: NDArray[np.int64],
        number: NDArray[np.int64],
    ) -> EventRows:
        """The rows sorted by timestamp, then session number, then kind."""
        order = np.lexsort((kind, number, timestamp))
        return cls(
            user[order],
            item[order],
            kind[order],
            timestamp[order],
            query[order],
            position[order],
            number[order],
        )


def example_user(
    raw_user_ids: list[str], events: NDArray[np.int64], intent: NDArray[np.int64]
) -> str:
    """A user with a cart or purchase whose event count is near the 90th percentile.

    Args:
        raw_user_ids: raw id of each shopper.
        events: events of each shopper.
        intent: cart and purchase events of each shopper.
    """
    active = np.flatnonzero(events > 0)
    per_user = pl.DataFrame(
        {
            RAW_USER_ID: pl.Series(raw_user_ids, dtype=pl.String).gather(active),
            "events": events[active],
            "intent": intent[active],
        }
    )
    target = per_user["events"].quantile(0.9, interpolation="nearest") or 0
    candidates = per_user.filter(pl.col("intent") > 0)
    if candidates.is_empty():
        candidates = per_user
    best = candidates.with_columns((pl.col("events") - target).abs().alias("distance")).sort(
        ["distance", RAW_USER_ID]
    )
    return str(best[RAW_USER_ID][0])


def user_counts(
    user: NDArray[np.int64], kind: NDArray[np.int64], n_users: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Events and cart/purchase events per shopper."""
    events = np.bincount(user, minlength=n_users).astype(np.int64)
    intent = np.bincount(user[kind >= CART], minlength=n_users).astype(np.int64)
    return events, intent
