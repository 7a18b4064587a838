"""Sessions from the data's session_id or from inactivity gaps, and the session split."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from shelfwise.config import ShelfwiseConfig, SplitConfig
from shelfwise.contracts import ITEM_INDEX, ROW_NUMBER, SESSION_ID, SPLIT, TIMESTAMP, USER_INDEX
from shelfwise.errors import DataError
from shelfwise.features.sessions import (
    SESSION_INDEX,
    assign_sessions,
    read_session_files,
    session_sequences,
    session_split,
)
from shelfwise.features.stage import build_features
from shelfwise.pipeline import run_pipeline

MINUTE = 60


def events(rows: list[tuple[int, int, int]], session_ids: list[str | None] | None = None):
    """(user, item, minute) rows in input order."""
    frame = pl.DataFrame(
        {
            USER_INDEX: [user for user, _, _ in rows],
            ITEM_INDEX: [item for _, item, _ in rows],
            TIMESTAMP: [minute * MINUTE for _, _, minute in rows],
            ROW_NUMBER: list(range(len(rows))),
        }
    )
    if session_ids is not None:
        frame = frame.with_columns(pl.Series(SESSION_ID, session_ids, dtype=pl.String))
    return frame


def sessions_of(frame: pl.DataFrame) -> dict[int, list[int]]:
    """session_index -> row numbers."""
    grouped = frame.group_by(SESSION_INDEX).agg(pl.col(ROW_NUMBER)).sort(SESSION_INDEX)
    return {int(s): sorted(rows) for s, rows in grouped.iter_rows()}


def test_gaps_over_30_minutes_start_a_new_session_per_user() -> None:
    # user 0: minutes 0, 10, 40 (30-minute gap exactly: same session), 71 (31: new)
    # user 1: minutes 5, 200 (new)
    frame = events([(0, 1, 0), (0, 2, 10), (1, 3, 5), (0, 3, 40), (0, 4, 71), (1, 5, 200)])
    found = assign_sessions(frame)
    # numbered by start: u0's first (0 min), u1's first (5), u0's second (71), u1's (200)
    assert sessions_of(found) == {0: [0, 1, 3], 1: [2], 2: [4], 3: [5]}


def test_the_gap_is_configurable() -> None:
    frame = events([(0, 1, 0), (0, 2, 10)])
    assert sessions_of(assign_sessions(frame, gap_seconds=5 * MINUTE)) == {0: [0], 1: [1]}
    with pytest.raises(DataError, match="inactivity gap must be >= 1 second, got 0"):
        assign_sessions(frame, gap_seconds=0)


def test_the_data_session_id_wins_over_gaps_and_missing_ids_fall_back() -> None:
    # the same session id across a 3-hour gap stays one session; another id at
    # minute 1 is its own; an event without an id falls back to the gap rule
    frame = events(
        [(0, 1, 0), (0, 2, 1), (0, 3, 180), (0, 4, 181)],
        session_ids=["a", "b", "a", None],
    )
    assert sessions_of(assign_sessions(frame)) == {0: [0, 2], 1: [1], 2: [3]}


def test_session_split_holds_out_the_last_sessions_by_start() -> None:
    # five sessions of two events each, one single-event session (never held out)
    rows = [(u, u, 10 * u) for u in range(5)] + [(u, u + 10, 10 * u + 1) for u in range(5)]
    rows.append((9, 99, 100))  # the latest session, but only one event: stays in train
    split = session_split(assign_sessions(events(rows)), test_fraction=0.2, valid_fraction=0.2)
    by_session = dict(
        split.group_by(SESSION_INDEX).agg(pl.col(SPLIT).first()).sort(SESSION_INDEX).iter_rows()
    )
    assert by_session == {0: "train", 1: "train", 2: "train", 3: "valid", 4: "test", 5: "train"}
    assert split.height == len(rows)  # nothing lost
    test = session_sequences(split, splits=("test",))
    assert test.sessions.tolist() == [4]
    assert test.sequences.row(0).tolist() == [4, 14]  # oldest first


def test_the_features_stage_writes_each_splits_sessions(
    tiny_config: ShelfwiseConfig, tmp_path: Path
) -> None:
    config = tiny_config.model_copy(update={"split": SplitConfig(method="session")})
    validate = run_pipeline(config, until="validate").run_dir / "validate"
    whole, batched = tmp_path / "whole", tmp_path / "batched"
    result = build_features(config, validate, whole, batch_rows=10**9)
    build_features(config, validate, batched, batch_rows=997)  # same files in batches
    sessions = read_session_files(whole)
    assert sessions is not None
    assert (whole / "sessions_test.npz").read_bytes() == (
        batched / "sessions_test.npz"
    ).read_bytes()
    counts = json.loads((whole / "sessions.json").read_text())["sessions"]
    assert counts == {name: rows.n_users for name, rows in sessions.items()}
    assert counts["test"] > 0
    assert counts["valid"] > 0
    # held-out sessions had two or more events (searches weigh 0, so items may be fewer);
    # no session is written twice and no positive event is invented
    assert (sessions["test"].lengths() >= 1).all()
    assert sum(rows.items.size for rows in sessions.values()) <= result.row_counts["interactions"]
