"""Assign every interaction to train / valid / test, frozen in the run's artifacts.

Six protocols:
- time (default, production-like): one global cutoff; every test event is strictly
  later than every train and valid event, every valid event strictly later than
  every train event. Events at a cutoff's exact second stay on the earlier side.
- leave_last_out (sequential benchmarks): per user, ordered by time then input
  order, the last event is test and the one before it valid; users with fewer than
  `min_user_events` events keep all of theirs in train.
- random (RecBole's default "RO + RS 8:1:1, group by user"): per user, events in a
  seeded random order, cut by the fractions with RecBole's rounding.
- given: the events' own SPLIT column (a published split, e.g. RecBole's file).
- last_basket (next-basket protocol): per user, the last order is test and the one
  before it valid (`_last_basket`).
- session (anonymous sessions): whole sessions, the last by start time test and the
  ones before valid (`shelfwise.features.sessions`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from shelfwise.config import SplitConfig
from shelfwise.contracts import (
    EVENT_TYPE,
    ROW_NUMBER,
    SESSION_ID,
    SPLIT,
    TIMESTAMP,
    USER_INDEX,
    EventType,
    SplitName,
)
from shelfwise.errors import ConfigError, DataError
from shelfwise.features.sessions import assign_sessions, session_split

# The split as a category (a small code a row instead of a string): the features stage
# holds it for every event. Compares equal to the SplitName strings, and its categories
# are in alphabetical order so that it sorts as those strings do.
SPLIT_DTYPE = pl.Enum(sorted(name.value for name in SplitName))


def _split(name: SplitName) -> pl.Expr:
    return pl.lit(name.value, dtype=SPLIT_DTYPE)


@dataclass(frozen=True)
class SplitInfo:
    """What the split did, for the manifest and the report."""

    method: str
    valid_cutoff: int | None  # time split: train has timestamp <= valid_cutoff
    test_cutoff: int | None  # time split: test has timestamp > test_cutoff
    counts: dict[str, int]


def assign_split(
    events: pl.DataFrame, config: SplitConfig, *, seed: int = 0
) -> tuple[pl.DataFrame, SplitInfo]:
    """Set the SPLIT column of `events` (needs USER_INDEX, TIMESTAMP, ROW_NUMBER).

    Any SPLIT column already present is used by `given` and replaced otherwise.

    Raises:
        DataError: `given` without a valid split value on every event.
        ConfigError: `auto`, which the pipeline resolves before this stage.

    Returns:
        The events with SPLIT, and a SplitInfo.
    """
    valid_cutoff = test_cutoff = None
    if config.method == "given":
        result = _given(events).with_columns(pl.col(SPLIT).cast(SPLIT_DTYPE))
    else:
        events = events.drop(SPLIT, strict=False)
        if config.method == "time":
            result, valid_cutoff, test_cutoff = _time_split(events, config)
        elif config.method == "random":
            result = _random_split(events, config, seed)
        elif config.method == "last_basket":
            result = _last_basket(events, config)
        elif config.method == "session":
            result = _session(events, config)
        elif config.method == "auto":  # the pipeline resolves it (plan.split_choice)
            raise ConfigError(
                "split.method 'auto' reached the split itself: it is resolved from the "
                "validated events by `shelfwise run`; choose a method when calling the "
                "features stage directly"
            )
        else:
            result = _leave_last_out(events, config)
    counts = {name.value: 0 for name in SplitName}
    for name, count in result.group_by(SPLIT).len().iter_rows():
        counts[str(name)] = int(count)
    return result, SplitInfo(config.method, valid_cutoff, test_cutoff, counts)


def _time_split(
    events: pl.DataFrame, config: SplitConfig
) -> tuple[pl.DataFrame, int | None, int | None]:
    if events.is_empty():
        return events.with_columns(_split(SplitName.TRAIN).alias(SPLIT)), None, None
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
        .then(_split(SplitName.TEST))
        .when(pl.lit(valid_cutoff is not None) & (pl.col(TIMESTAMP) > (valid_cutoff or 0)))
        .then(_split(SplitName.VALID))
        .otherwise(_split(SplitName.TRAIN))
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
        .then(_split(SplitName.TEST))
        .when(eligible & (position_from_end == 1) & pl.lit(config.valid_fraction > 0))
        .then(_split(SplitName.VALID))
        .otherwise(_split(SplitName.TRAIN))
    )
    return ordered.with_columns(split_expr.alias(SPLIT))


def _last_basket(events: pl.DataFrame, config: SplitConfig) -> pl.DataFrame:
    """Next-basket protocol: each user's last order is test, the order before it valid.

    Orders are the purchases (every event when the data has no purchase): one order per
    `session_id` when the events carry one, else a user's purchases less than
    `basket_gap_minutes` apart. An order starts at its first event; a user's events
    from the last order's start on are test, from the second-to-last order's start on
    valid (with `valid_fraction` > 0), the rest train. Users with fewer orders than
    that plus one stay in train, so every evaluated user has a training history.
    """
    if events.is_empty():
        return events.with_columns(_split(SplitName.TRAIN).alias(SPLIT))
    purchase = pl.col(EVENT_TYPE).cast(pl.String) == EventType.PURCHASE.value
    has_purchases = bool(events.select(purchase.any()).item())
    orders = events.filter(purchase) if has_purchases else events
    with_session = SESSION_ID in orders.columns and orders[SESSION_ID].null_count() < orders.height
    if with_session:
        starts = (
            orders.filter(pl.col(SESSION_ID).is_not_null())
            .group_by(USER_INDEX, SESSION_ID)
            .agg(pl.col(TIMESTAMP).min().alias("__start"))
        )
    else:
        gap = int(config.basket_gap_minutes * 60)
        starts = (
            orders.select(USER_INDEX, TIMESTAMP)
            .sort(USER_INDEX, TIMESTAMP)
            .filter(
                (pl.col(TIMESTAMP) - pl.col(TIMESTAMP).shift(1).over(USER_INDEX)).fill_null(gap + 1)
                > gap
            )
            .select(USER_INDEX, pl.col(TIMESTAMP).alias("__start"))
        )
    with_valid = config.valid_fraction > 0
    cutoffs = starts.group_by(USER_INDEX).agg(
        pl.col("__start").sort(descending=True).get(0).alias("__test"),
        pl.col("__start").sort(descending=True).get(1, null_on_oob=True).alias("__valid"),
        pl.len().alias("__orders"),
    )
    eligible = pl.col("__orders").fill_null(0) >= (3 if with_valid else 2)
    split_expr = (
        pl.when(eligible & (pl.col(TIMESTAMP) >= pl.col("__test")))
        .then(_split(SplitName.TEST))
        .when(eligible & pl.lit(with_valid) & (pl.col(TIMESTAMP) >= pl.col("__valid")))
        .then(_split(SplitName.VALID))
        .otherwise(_split(SplitName.TRAIN))
    )
    return (
        events.join(cutoffs, on=USER_INDEX, how="left")
        .with_columns(split_expr.alias(SPLIT))
        .drop("__test", "__valid", "__orders")
        .sort(ROW_NUMBER)
    )


def _given(events: pl.DataFrame) -> pl.DataFrame:
    names = [name.value for name in SplitName]
    if SPLIT not in events.columns:
        raise DataError(
            "split.method is 'given' but the events have no split column; map yours "
            "(data.events.mapping: {your_column: split}) or choose another split.method"
        )
    missing = events.filter(pl.col(SPLIT).is_null() | ~pl.col(SPLIT).is_in(names)).height
    if missing:
        raise DataError(
            f"split.method is 'given' but {missing:,} of {events.height:,} events have no "
            f"split value in {names}; fill them or choose another split.method"
        )
    return events


def _random_split(events: pl.DataFrame, config: SplitConfig, seed: int) -> pl.DataFrame:
    """Per user: seeded shuffle, then RecBole's `_calcu_split_ids` counts.

    With n events and ratios (train, valid, test): valid = int(rv * n), test =
    int(rt * n); a split whose share is in (0, 1) event gets one event taken from
    train while train keeps more than one (RecBole's rounding).
    """
    keyed = events.with_columns(
        pl.Series("__key", np.random.default_rng(seed).random(events.height))
    ).sort([USER_INDEX, "__key"])
    n = pl.len().over(USER_INDEX)
    position = pl.int_range(pl.len()).over(USER_INDEX)
    rv, rt = config.valid_fraction, config.test_fraction
    n_test = (rt * n).floor().cast(pl.Int64)
    n_valid = (rv * n).floor().cast(pl.Int64)
    # RecBole walks the ratios from the last (test) to the second (valid).
    bump_test = (rt * n > 0) & (rt * n < 1) & ((n - n_test - n_valid) > 1)
    n_test = n_test + bump_test.cast(pl.Int64)
    bump_valid = (rv * n > 0) & (rv * n < 1) & ((n - n_test - n_valid) > 1)
    n_valid = n_valid + bump_valid.cast(pl.Int64)
    n_train = n - n_valid - n_test
    split_expr = (
        pl.when(position < n_train)
        .then(_split(SplitName.TRAIN))
        .when(position < n_train + n_valid)
        .then(_split(SplitName.VALID))
        .otherwise(_split(SplitName.TEST))
    )
    return keyed.with_columns(split_expr.alias(SPLIT)).drop("__key").sort(ROW_NUMBER)


def _session(events: pl.DataFrame, config: SplitConfig) -> pl.DataFrame:
    """Session protocol: the last sessions by start time are test, those before valid.

    Sessions and their numbering are `shelfwise.features.sessions`'s (SESSION_INDEX is
    kept on the events, so the stage can write each split's sessions).
    """
    sessions = assign_sessions(events, gap_seconds=round(config.session_gap_minutes * 60))
    split = session_split(
        sessions, test_fraction=config.test_fraction, valid_fraction=config.valid_fraction
    )
    return split.with_columns(pl.col(SPLIT).cast(SPLIT_DTYPE))
