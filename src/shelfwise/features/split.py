"""Assign every interaction to train / valid / test, frozen in the run's artifacts.

Two protocols:
- time (default, production-like): one global cutoff; every test event is strictly
  later than every train and valid event, every valid event strictly later than
  every train event. Events at a cutoff's exact second stay on the earlier side.
- leave_last_out (sequential benchmarks): per user, ordered by time then input
  order, the last event is test and the one before it valid; users with fewer than
  `min_user_events` events keep all of theirs in train.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from shelfwise.config import SplitConfig
from shelfwise.contracts import ROW_NUMBER, SPLIT, TIMESTAMP, USER_INDEX, SplitName


@dataclass(frozen=True)
class SplitInfo:
    """What the split did, for the manifest and the report."""

    method: str
    valid_cutoff: int | None  # time split: train has timestamp <= valid_cutoff
    test_cutoff: int | None  # time split: test has timestamp > test_cutoff
    counts: dict[str, int]


def assign_split(events: pl.DataFrame, config: SplitConfig) -> tuple[pl.DataFrame, SplitInfo]:
    """Add a SPLIT column to `events` (needs USER_INDEX, TIMESTAMP, ROW_NUMBER).

    Returns:
        The events with SPLIT, and a SplitInfo.
    """
    if config.method == "time":
        result, valid_cutoff, test_cutoff = _time_split(events, config)
    else:
        result = _leave_last_out(events, config)
        valid_cutoff = test_cutoff = None
    counts = {name.value: 0 for name in SplitName}
    for name, count in result.group_by(SPLIT).len().iter_rows():
        counts[str(name)] = int(count)
    return result, SplitInfo(config.method, valid_cutoff, test_cutoff, counts)


def _time_split(
    events: pl.DataFrame, config: SplitConfig
) -> tuple[pl.DataFrame, int | None, int | None]:
    if events.is_empty():
        return events.with_columns(pl.lit(SplitName.TRAIN.value).alias(SPLIT)), None, None
    timestamps = events[TIMESTAMP]
    # Quantiles with "lower" interpolation are real timestamps; strict ">" keeps ties
    # on the earlier side, so test is strictly after train.
    test_cutoff = int(timestamps.quantile(1.0 - config.test_fraction, "lower") or 0)
    valid_cutoff: int | None = None
    if config.valid_fraction > 0:
        share = 1.0 - config.test_fraction - config.valid_fraction
        valid_cutoff = int(timestamps.quantile(max(share, 0.0), "lower") or 0)
    split_expr = (
        pl.when(pl.col(TIMESTAMP) > test_cutoff)
        .then(pl.lit(SplitName.TEST.value))
        .when(pl.lit(valid_cutoff is not None) & (pl.col(TIMESTAMP) > (valid_cutoff or 0)))
        .then(pl.lit(SplitName.VALID.value))
        .otherwise(pl.lit(SplitName.TRAIN.value))
    )
    return events.with_columns(split_expr.alias(SPLIT)), valid_cutoff, test_cutoff


def _leave_last_out(events: pl.DataFrame, config: SplitConfig) -> pl.DataFrame:
    ordered = events.sort([USER_INDEX, TIMESTAMP, ROW_NUMBER])
    position_from_end = (
        pl.int_range(pl.len(), 0, -1).over(USER_INDEX) - 1
    )  # 0 for each user's last event
    user_size = pl.len().over(USER_INDEX)
    eligible = user_size >= config.min_user_events
    split_expr = (
        pl.when(eligible & (position_from_end == 0))
        .then(pl.lit(SplitName.TEST.value))
        .when(eligible & (position_from_end == 1) & pl.lit(config.valid_fraction > 0))
        .then(pl.lit(SplitName.VALID.value))
        .otherwise(pl.lit(SplitName.TRAIN.value))
    )
    return ordered.with_columns(split_expr.alias(SPLIT))
