"""Sessions: a user's visits, from the data's `session_id` or from inactivity gaps.

Anonymous shops (and click logs such as Taobao's) are judged per *session*: predict the
next item of a visit from its earlier items. `assign_sessions` numbers every event's
session; `session_split` holds out the last sessions by start time (the
taobao-userbehavior protocol of `shared/data/README.md`); `session_sequences` turns the
events of chosen sessions into one ordered row per session, the input of the session
models (`shelfwise.retrieval.session_knn`, SASRec) and of `shelfwise.evaluate.sessions`.

Rules:
- With a SESSION_ID column, a session is (user, session_id); events without one fall
  back to the gap rule within their user.
- Without one, a user's events (by time, then input order) start a new session when
  more than `gap_seconds` passed since the previous event (default 30 minutes, the
  protocol's cut).
- Sessions are numbered 0, 1, ... by start time (ties: first input row), so a
  session's number is its age order: what STAN's recency decay and the split read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import numpy as np
import polars as pl

from shelfwise._internal.artifacts import atomic_write_json
from shelfwise._internal.sequences import Sequences
from shelfwise.contracts import (
    ITEM_INDEX,
    ROW_NUMBER,
    SESSION_ID,
    SPLIT,
    TIMESTAMP,
    USER_INDEX,
    WEIGHT,
    SplitName,
)
from shelfwise.errors import DataError

SESSION_INDEX: Final = "session_index"
DEFAULT_GAP_SECONDS: Final = 30 * 60
SessionTargets = Literal["last", "every"]


def assign_sessions(
    events: pl.DataFrame,
    *,
    gap_seconds: int = DEFAULT_GAP_SECONDS,
    session_column: str = SESSION_ID,
) -> pl.DataFrame:
    """`events` with SESSION_INDEX (Int64), sorted by session, then time, then input order.

    Args:
        events: USER_INDEX, TIMESTAMP, ROW_NUMBER, and optionally `session_column`.
        gap_seconds: inactivity (seconds) that ends a session without a session id.
        session_column: the data's session id column, used when present.

    Raises:
        DataError: `gap_seconds` < 1.
    """
    if gap_seconds < 1:
        raise DataError(f"sessions: the inactivity gap must be >= 1 second, got {gap_seconds}")
    ordered = events.sort(USER_INDEX, TIMESTAMP, ROW_NUMBER)
    new_by_gap = pl.col(TIMESTAMP).diff().over(USER_INDEX).fill_null(gap_seconds + 1) > gap_seconds
    gap_number = new_by_gap.cast(pl.Int64).cum_sum().over(USER_INDEX)
    given = (
        pl.col(session_column).cast(pl.String)
        if session_column in events.columns
        else pl.lit(None, dtype=pl.String)
    )
    key = pl.coalesce(pl.lit("s:") + given, pl.lit("g:") + gap_number.cast(pl.String)).alias(
        "__session_key"
    )
    keyed = ordered.with_columns(key)
    starts = (
        keyed.group_by(USER_INDEX, "__session_key")
        .agg(pl.col(TIMESTAMP).min().alias("__start"), pl.col(ROW_NUMBER).min().alias("__first"))
        .sort("__start", "__first")
        .with_row_index(SESSION_INDEX)
        .with_columns(pl.col(SESSION_INDEX).cast(pl.Int64))
    )
    return (
        keyed.join(
            starts.select(USER_INDEX, "__session_key", SESSION_INDEX),
            on=[USER_INDEX, "__session_key"],
            how="left",
        )
        .drop("__session_key")
        .sort(SESSION_INDEX, TIMESTAMP, ROW_NUMBER)
    )


def session_split(
    events: pl.DataFrame,
    *,
    test_fraction: float,
    valid_fraction: float,
    min_session_events: int = 2,
) -> pl.DataFrame:
    """Set SPLIT by session: the last sessions by start time are test, those before valid.

    Only sessions with at least `min_session_events` events can be held out (one event
    predicts nothing); shorter ones stay in train, so no event is lost. Of the eligible
    sessions, the last `test_fraction` (rounded up, at least one when any exists) are
    test and the `valid_fraction` before them valid.

    Args:
        events: with SESSION_INDEX (`assign_sessions`).
        test_fraction: share of eligible sessions held out for test.
        valid_fraction: share held out for validation (0: none).
        min_session_events: events a session needs to be held out.

    Returns:
        The events with SPLIT (a string column of `SplitName` values).
    """
    sizes = events.group_by(SESSION_INDEX).len().sort(SESSION_INDEX)
    eligible = sizes.filter(pl.col("len") >= min_session_events)[SESSION_INDEX].to_numpy()
    n_test = int(np.ceil(test_fraction * eligible.size)) if eligible.size else 0
    n_valid = int(np.ceil(valid_fraction * eligible.size)) if valid_fraction > 0 else 0
    n_valid = min(n_valid, max(eligible.size - n_test, 0))
    test = eligible[eligible.size - n_test :] if n_test else eligible[:0]
    valid = eligible[eligible.size - n_test - n_valid : eligible.size - n_test]
    return events.with_columns(
        pl.when(pl.col(SESSION_INDEX).is_in(test.tolist()))
        .then(pl.lit(SplitName.TEST.value))
        .when(pl.col(SESSION_INDEX).is_in(valid.tolist()))
        .then(pl.lit(SplitName.VALID.value))
        .otherwise(pl.lit(SplitName.TRAIN.value))
        .alias(SPLIT)
    )


@dataclass(frozen=True)
class SessionRows:
    """Chosen sessions as rows: their items in time order, and which session each is.

    Attributes:
        sessions: SESSION_INDEX of each row, in start order.
        sequences: each session's positive-weight items, oldest first.
    """

    sessions: np.ndarray
    sequences: Sequences


def session_sequences(events: pl.DataFrame, *, splits: tuple[str, ...]) -> SessionRows:
    """The sessions of `splits`, one row each (positive-weight events only), by start.

    Args:
        events: SESSION_INDEX, ITEM_INDEX, SPLIT and, when present, WEIGHT; sorted by
            session then time (as `assign_sessions` leaves them).
        splits: the SPLIT values to keep.
    """
    chosen = events.filter(pl.col(SPLIT).cast(pl.String).is_in(list(splits)))
    if WEIGHT in chosen.columns:
        chosen = chosen.filter(pl.col(WEIGHT) > 0)
    chosen = chosen.filter(pl.col(ITEM_INDEX).is_not_null())
    ids, starts, counts = np.unique(
        chosen[SESSION_INDEX].to_numpy(), return_index=True, return_counts=True
    )
    del starts
    indptr = np.zeros(ids.size + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    items = chosen[ITEM_INDEX].cast(pl.Int64).to_numpy()
    return SessionRows(ids.astype(np.int64), Sequences(indptr=indptr, items=items))


SESSION_FILES: Final = {name.value: f"sessions_{name.value}.npz" for name in SplitName}
SESSIONS_JSON: Final = "sessions.json"


def write_session_files(events: pl.DataFrame, out: Path) -> dict[str, int]:
    """Write each split's sessions (`sessions_<split>.npz`) and `sessions.json` counts.

    Rows are sessions in start order, items oldest first (positive weights only): the
    training rows of the session models and the held-out sessions of
    `shelfwise.evaluate.sessions`.

    Returns:
        Sessions per split.
    """
    counts: dict[str, int] = {}
    for name, file in SESSION_FILES.items():
        rows = session_sequences(events, splits=(name,))
        rows.sequences.save(out / file)
        counts[name] = rows.sequences.n_users
    atomic_write_json(out / SESSIONS_JSON, {"sessions": counts})
    return counts


def read_session_files(folder: Path) -> dict[str, Sequences] | None:
    """The sessions `write_session_files` wrote into `folder`; None when it wrote none."""
    if not (folder / SESSIONS_JSON).exists():
        return None
    return {name: Sequences.load(folder / file) for name, file in SESSION_FILES.items()}


__all__ = [
    "DEFAULT_GAP_SECONDS",
    "SESSIONS_JSON",
    "SESSION_FILES",
    "SESSION_INDEX",
    "SessionRows",
    "SessionTargets",
    "assign_sessions",
    "read_session_files",
    "session_sequences",
    "session_split",
    "write_session_files",
]
