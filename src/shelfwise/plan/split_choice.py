"""`split.method: auto`: the split chosen from the data's shape (issue 15).

The features stage splits the events, and the plan proper runs after it, so this choice
is made first: the pipeline resolves `auto` on the validated events just before the
features stage runs (`resolve_split`), and the plan stage shows the same choice, with
the numbers that decided it, as the `split` row of its table (`split_row`). The choice
is a pure function of the validated events, so a cached features stage and the plan's
row always agree with what ran.

Rules, in order:

1. **Anonymous sessions given** — a `session_id` on at least half the events and at
   least `SINGLE_SESSION_SHARE` of users with one session id only: each user id is a
   visit (a click-session log such as YooChoose or Diginetica), so the session protocol
   (`session`) judges it; a user-level split would test users on nothing they did before.
2. **User ids that are visits** — no usable `session_id`, but at least
   `ONE_DAY_SHARE` of users seen on one day only, a median of at most
   `MAX_MEDIAN_EVENTS` events per user, over a log of at least two days: `session`.
3. Otherwise users come back (ml-100k, Amazon, Taobao's users, the generated shop:
   long histories, several sessions or days per user): the current default, `time`.

Either session rule also needs `MIN_SESSIONS` visits of two or more events (one event
predicts nothing; the split holds out only those); with fewer, `time`. `last_basket` is
not chosen automatically: no rule in shelfwise tells a grocery shop from its data yet
(the repeat policy `learn` handles repeat purchases on any split).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import polars as pl

from shelfwise.config import ShelfwiseConfig, SplitConfig
from shelfwise.contracts import RAW_USER_ID, SESSION_ID, TIMESTAMP
from shelfwise.plan.record import Choice

# Thresholds, measured with `benchmarks/gate_sessions.py --shapes`: an anonymous log is
# extreme (the generated shop with one user id per visit: 100% of users with one
# session id), shops with accounts are far from it on at least one number — ml-100k 64%
# of users on one day only (a rating sitting) but a median of 65 events; Taobao 0% and
# 78; the generated shop 5% with one session id; Amazon Beauty has no timestamps (a
# log under one day: MIN_LOG_DAYS keeps it off the day rule). The cuts sit between.
SINGLE_SESSION_SHARE: Final = 0.5
SESSION_ID_COVERAGE: Final = 0.5
ONE_DAY_SHARE: Final = 0.8
MAX_MEDIAN_EVENTS: Final = 20.0
MIN_LOG_DAYS: Final = 2.0
MIN_SESSIONS: Final = 20
DAY_SECONDS: Final = 86_400
FALLBACK: Final = "time"  # SplitConfig's default method


@dataclass(frozen=True)
class SplitChoice:
    """The split method a run uses, why, and the numbers that decided it."""

    method: str
    reason: str
    numbers: dict[str, float] = field(default_factory=dict)


def measure(events: Path) -> dict[str, float]:
    """The shape numbers the rules read, from validate's `events.parquet` (one scan).

    Returns:
        users, events, median_events (per user), session_id_coverage (share of events
        with one), single_session_share (users with one session id, among users with
        any), one_day_share (users whose events fall on one UTC day), log_days (first to
        last event), sessions_of_two (session ids with two or more events) and
        users_of_two (users with two or more events).
    """
    frame = pl.scan_parquet(events)
    names = frame.collect_schema().names()
    session = pl.col(SESSION_ID) if SESSION_ID in names else pl.lit(None, dtype=pl.String)
    rows = frame.select(pl.col(RAW_USER_ID), pl.col(TIMESTAMP), session.alias(SESSION_ID))
    per_user = (
        rows.group_by(RAW_USER_ID)
        .agg(
            pl.len().alias("events"),
            pl.col(SESSION_ID).drop_nulls().n_unique().alias("sessions"),
            (pl.col(TIMESTAMP).min() // DAY_SECONDS).alias("first_day"),
            (pl.col(TIMESTAMP).max() // DAY_SECONDS).alias("last_day"),
        )
        .collect(engine="streaming")
    )
    totals = rows.select(
        pl.len().alias("events"),
        pl.col(SESSION_ID).is_not_null().sum().alias("with_session"),
        pl.col(TIMESTAMP).min().alias("first"),
        pl.col(TIMESTAMP).max().alias("last"),
    ).collect(engine="streaming")
    sessions_of_two = (
        rows.filter(pl.col(SESSION_ID).is_not_null())
        .group_by(RAW_USER_ID, SESSION_ID)
        .len()
        .filter(pl.col("len") >= 2)
        .select(pl.len())
        .collect(engine="streaming")
        .item()
    )
    n_events = int(totals["events"][0])
    users = per_user.height
    with_sessions = per_user.filter(pl.col("sessions") > 0)
    first, last = totals["first"][0], totals["last"][0]
    return {
        "users": float(users),
        "events": float(n_events),
        "median_events": float(np.median(per_user["events"].to_numpy())) if users else 0.0,
        "session_id_coverage": int(totals["with_session"][0]) / n_events if n_events else 0.0,
        "single_session_share": (
            with_sessions.filter(pl.col("sessions") == 1).height / with_sessions.height
            if with_sessions.height
            else 0.0
        ),
        "one_day_share": (
            per_user.filter(pl.col("first_day") == pl.col("last_day")).height / users
            if users
            else 0.0
        ),
        "log_days": (last - first) / DAY_SECONDS if first is not None and last is not None else 0.0,
        "sessions_of_two": float(sessions_of_two),
        "users_of_two": float(per_user.filter(pl.col("events") >= 2).height),
    }


def choose_split(events: Path, split: SplitConfig) -> SplitChoice:
    """The method a run with this split config uses on these validated events.

    A method other than `auto` is kept as configured (no scan).
    """
    if split.method != "auto":
        return SplitChoice(split.method, f"as configured (split.method: {split.method})")
    if not events.is_file():
        return SplitChoice(FALLBACK, "split.method auto: no events to look at; the default")
    numbers = measure(events)
    return decide(numbers)


def decide(numbers: dict[str, float]) -> SplitChoice:
    """The rules of the module docstring on `measure`'s numbers."""
    coverage, single = numbers["session_id_coverage"], numbers["single_session_share"]
    one_day, median = numbers["one_day_share"], numbers["median_events"]
    days = numbers["log_days"]
    if coverage >= SESSION_ID_COVERAGE and single >= SINGLE_SESSION_SHARE:
        why = (
            f"session_id on {coverage:.0%} of events and {single:.0%} of users "
            f"(>= {SINGLE_SESSION_SHARE:.0%}) have one session: anonymous visits"
        )
        visits = numbers["sessions_of_two"]
    elif (
        coverage < SESSION_ID_COVERAGE
        and one_day >= ONE_DAY_SHARE
        and median <= MAX_MEDIAN_EVENTS
        and days >= MIN_LOG_DAYS
    ):
        why = (
            f"user ids look like visits: {one_day:.0%} of users (>= {ONE_DAY_SHARE:.0%}) "
            f"seen on one day only, median {median:g} events per user "
            f"(<= {MAX_MEDIAN_EVENTS:g}), over a {days:.0f}-day log"
        )
        visits = numbers["users_of_two"]
    else:
        sessions = (
            f"{single:.0%} of users with one session id, "
            if coverage >= SESSION_ID_COVERAGE
            else ""
        )
        return SplitChoice(
            FALLBACK,
            f"users come back ({sessions}{one_day:.0%} seen on one day only, median "
            f"{median:g} events per user over a {days:.0f}-day log); the default",
            numbers,
        )
    if visits < MIN_SESSIONS:
        return SplitChoice(
            FALLBACK,
            f"{why}, but only {visits:.0f} visits of two or more events (< {MIN_SESSIONS}) "
            "to hold out; the default",
            numbers,
        )
    return SplitChoice("session", why, numbers)


def resolve_split(config: ShelfwiseConfig, validate_folder: Path) -> ShelfwiseConfig:
    """`config` with `split.method: auto` replaced by the chosen method (else unchanged).

    The config the features stage runs on (the pipeline calls this for it).
    """
    if config.split.method != "auto":
        return config
    choice = choose_split(validate_folder / "events.parquet", config.split)
    split = config.split.model_copy(update={"method": choice.method})
    return config.model_copy(update={"split": split})


def split_row(config: ShelfwiseConfig, validate_folder: Path) -> Choice:
    """The plan table's `split` row: the method and why."""
    choice = choose_split(validate_folder / "events.parquet", config.split)
    return Choice("split", "stage", True, f"{choice.method}: {choice.reason}", measured=True)


__all__ = [
    "SplitChoice",
    "choose_split",
    "decide",
    "measure",
    "resolve_split",
    "split_row",
]
