"""Fake traffic: users whose events no human makes, and fake-order accounts.

Per user, over browse events (view, click, cart, purchase) in time order:

- `rate`: more than `max_events_per_minute` sustained over any `rate_window_seconds`;
- `no-dwell`: more than `max_no_dwell_share` of the views/clicks came under
  `min_dwell_seconds` after the previous event (nobody reads a page that fast);
- `regular`: more than `max_regular_share` of the gaps sit within
  `regular_tolerance` (or 1 s) of the user's median gap (a script's timer);
- `unviewed-purchase`: at least `unviewed_min_purchases` purchases, none of them after
  a view, click or cart of the item, and no more views, clicks and carts than
  purchases (only in shops that log views: on Taobao's log, 20 of 815 users bought
  only items they had not viewed in the 9-day window, yet browsed 7-296 other pages:
  shoppers whose views fell before the window, not fake accounts);

and across users:

- `ring`: at least `ring_min_accounts` new accounts (first event at most
  `new_account_seconds` before the purchase, at most `ring_max_user_events` events)
  buying the same product within `ring_window_seconds` (fake-order rings, 刷单).

The first three flag a user as `suspected-bot`, the last two as
`suspected-fake-order`; every event of a flagged user is quarantined with that reason.
Users whose timestamps are all whole minutes (coarse clocks, daily exports) skip the
rate, dwell and regularity patterns, which need second resolution. The thresholds'
defaults are in `config/fake_traffic.py`; the measured precision and recall in
benchmarks/RESULTS.md (benchmarks/bots.py).

In the pipeline the events come in user buckets on disk (`FakeTrafficCheck`): each
user's pattern runs on one bucket at a time; only new accounts' purchases (a small
share of the events) are held across buckets for the ring pattern.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import polars as pl

from shelfwise.config.fake_traffic import FakeTrafficConfig
from shelfwise.contracts import (
    EVENT_TYPE,
    RAW_ITEM_ID,
    RAW_USER_ID,
    TIMESTAMP,
    EventType,
    QuarantineReason,
)
from shelfwise.validate._scratch import read_scratch
from shelfwise.validate._stages import typed

USER: Final = "user"
ITEM: Final = "item"
KIND: Final = "kind"
TS: Final = "ts"
SEQ: Final = "seq"
PATTERN: Final = "pattern"
FLAG_REASON: Final = "flag_reason"
FLAG_DETAIL: Final = "flag_detail"
BROWSE: Final = (EventType.VIEW, EventType.CLICK, EventType.CART, EventType.PURCHASE)
_LOOKS: Final = (EventType.VIEW.value, EventType.CLICK.value)
_BOT_PATTERNS: Final = ("rate", "no-dwell", "regular")
_FAKE_PATTERNS: Final = ("unviewed-purchase", "ring")
FAKE_TRAFFIC_REASONS: Final = (
    QuarantineReason.SUSPECTED_BOT,
    QuarantineReason.SUSPECTED_FAKE_ORDER,
)
_FLAGS_SCHEMA: Final = {
    USER: pl.String,
    PATTERN: pl.String,
    FLAG_REASON: pl.String,
    FLAG_DETAIL: pl.String,
}
_NEW_SCHEMA: Final = {USER: pl.String, ITEM: pl.String, TS: pl.Int64}


def _empty_flags() -> pl.DataFrame:
    return pl.DataFrame(schema=_FLAGS_SCHEMA)


def _window_counts(group: np.ndarray, times: np.ndarray, window: int) -> np.ndarray:
    """Rows in [t, t + window) of the same group, for rows sorted by (group, time).

    Groups are laid end to end on one axis, each `span` apart, so one searchsorted
    answers every row (no per-user Python loop).
    """
    if times.size == 0:
        return np.zeros(0, dtype=np.int64)
    offset = times - times.min()
    span = int(offset.max()) + window + 1
    key = group.astype(np.int64) * span + offset
    ends = np.searchsorted(key, key + window, side="left")
    counts: np.ndarray = ends - np.arange(times.size)
    return counts


def user_patterns(
    events: pl.DataFrame, config: FakeTrafficConfig, *, views_logged: bool
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The per-user patterns over events holding every event of their users.

    Args:
        events: columns USER, ITEM, KIND, TS (unix seconds), SEQ (source order).
        config: the thresholds.
        views_logged: whether the shop logs views (else `unviewed-purchase` is off).

    Returns:
        (flags: USER, PATTERN, FLAG_REASON, FLAG_DETAIL, one row per flagged user;
        new accounts' purchases: USER, ITEM, TS, the ring pattern's input).
    """
    browse = events.filter(pl.col(KIND).is_in([k.value for k in BROWSE])).sort(USER, TS, SEQ)
    if browse.is_empty():
        return _empty_flags(), pl.DataFrame(schema=_NEW_SCHEMA)
    group = (pl.col(USER) != pl.col(USER).shift()).fill_null(True).cum_sum()
    browse = browse.with_columns(group.alias("__g"))
    window = config.rate_window_seconds
    counts = _window_counts(browse["__g"].to_numpy(), browse[TS].to_numpy(), window)
    gap = pl.col(TS).diff().over(USER)
    browse = browse.with_columns(pl.Series("__in_window", counts), gap.alias("__gap"))
    looks = pl.col(KIND).is_in(_LOOKS) & pl.col("__gap").is_not_null()
    median = pl.col("__gap").median()
    near = (pl.col("__gap") - median).abs() <= pl.max_horizontal(
        pl.lit(1.0), median * config.regular_tolerance
    )
    touched = (
        browse.filter(pl.col(KIND) != EventType.PURCHASE.value)
        .group_by(USER, ITEM)
        .agg(pl.col(TS).min().alias("__first_touch"))
    )
    purchases = browse.filter(pl.col(KIND) == EventType.PURCHASE.value).join(
        touched, on=[USER, ITEM], how="left"
    )
    unviewed = purchases.group_by(USER).agg(
        pl.len().alias("__purchases"),
        (pl.col("__first_touch").is_null() | (pl.col("__first_touch") > pl.col(TS)))
        .sum()
        .alias("__unviewed"),
    )
    per_user = (
        browse.group_by(USER)
        .agg(
            pl.len().alias("__n"),
            pl.col(TS).min().alias("__first"),
            pl.col("__in_window").max().alias("__peak"),
            (pl.col(TS) % 60 == 0).all().alias("__coarse"),
            ((pl.col("__gap") < config.min_dwell_seconds) & looks).sum().alias("__fast"),
            looks.sum().alias("__looks"),
            median.alias("__median"),
            near.filter(pl.col("__gap").is_not_null()).sum().alias("__regular"),
            pl.col("__gap").is_not_null().sum().alias("__gaps"),
            (pl.col(KIND) != EventType.PURCHASE.value).sum().alias("__browsed"),
        )
        .join(unviewed, on=USER, how="left")
    )
    limit = config.max_events_per_minute * window / 60.0
    enough = (pl.col("__n") >= config.min_events) & ~pl.col("__coarse")
    fast_share = pl.col("__fast") / pl.col("__looks")
    regular_share = pl.col("__regular") / pl.col("__gaps")
    rules: list[tuple[str, pl.Expr, pl.Expr]] = [
        (
            "rate",
            ~pl.col("__coarse") & (pl.col("__peak") > limit),
            pl.format(
                "{} events within {} s, above data.fake_traffic.max_events_per_minute {} "
                "sustained over rate_window_seconds",
                pl.col("__peak"),
                pl.lit(window),
                pl.lit(config.max_events_per_minute),
            ),
        ),
        (
            "no-dwell",
            enough & (pl.col("__looks") > 0) & (fast_share > config.max_no_dwell_share),
            pl.format(
                "{} of {} views/clicks came under {} s after the previous event, above "
                "data.fake_traffic.max_no_dwell_share {}",
                pl.col("__fast"),
                pl.col("__looks"),
                pl.lit(config.min_dwell_seconds),
                pl.lit(config.max_no_dwell_share),
            ),
        ),
        (
            "regular",
            enough
            & (pl.col("__median") >= config.min_dwell_seconds)
            & (regular_share > config.max_regular_share),
            pl.format(
                "{} of {} gaps between events within 1 s or {} of the median gap {} s "
                "(scripted timing; data.fake_traffic.max_regular_share {})",
                pl.col("__regular"),
                pl.col("__gaps"),
                pl.lit(config.regular_tolerance),
                pl.col("__median"),
                pl.lit(config.max_regular_share),
            ),
        ),
    ]
    if views_logged:
        rules.append(
            (
                "unviewed-purchase",
                (pl.col("__purchases") >= config.unviewed_min_purchases)
                & (pl.col("__unviewed") == pl.col("__purchases"))
                & (pl.col("__browsed") <= pl.col("__purchases")),
                pl.format(
                    "{} purchases, none after a view, click or cart of the item, and {} "
                    "other events (data.fake_traffic.unviewed_min_purchases {})",
                    pl.col("__purchases"),
                    pl.col("__browsed"),
                    pl.lit(config.unviewed_min_purchases),
                ),
            )
        )
    pattern = pl.coalesce(
        [pl.when(hit.fill_null(False)).then(pl.lit(name)) for name, hit, _ in rules]
    )
    detail = pl.coalesce([pl.when(hit.fill_null(False)).then(text) for _, hit, text in rules])
    flags = (
        per_user.with_columns(pattern.alias(PATTERN), detail.alias(FLAG_DETAIL))
        .filter(pl.col(PATTERN).is_not_null())
        .select(USER, PATTERN, _reason_of(pl.col(PATTERN)), FLAG_DETAIL)
        .cast(_FLAGS_SCHEMA)  # type: ignore[arg-type]
    )
    new_accounts = per_user.filter(pl.col("__n") <= config.ring_max_user_events).select(
        USER, "__first"
    )
    new_purchases = (
        browse.filter(pl.col(KIND) == EventType.PURCHASE.value)
        .join(new_accounts, on=USER, how="inner")
        .filter(pl.col(TS) - pl.col("__first") <= config.new_account_seconds)
        .select(USER, ITEM, TS)
    )
    return flags, new_purchases


def _reason_of(pattern: pl.Expr) -> pl.Expr:
    return (
        pl.when(pattern.is_in(list(_BOT_PATTERNS)))
        .then(pl.lit(QuarantineReason.SUSPECTED_BOT.value))
        .otherwise(pl.lit(QuarantineReason.SUSPECTED_FAKE_ORDER.value))
        .alias(FLAG_REASON)
    )


def ring_accounts(new_purchases: pl.DataFrame, config: FakeTrafficConfig) -> pl.DataFrame:
    """Users in fake-order rings: USER, PATTERN, FLAG_REASON, FLAG_DETAIL.

    Args:
        new_purchases: USER, ITEM, TS of purchases made by new accounts.
        config: `ring_window_seconds` and `ring_min_accounts`.
    """
    rows = new_purchases.unique([USER, ITEM], keep="first").sort(ITEM, TS, USER)
    if rows.height < config.ring_min_accounts:
        return _empty_flags()
    group = (pl.col(ITEM) != pl.col(ITEM).shift()).fill_null(True).cum_sum()
    codes = rows.select(group).to_series().to_numpy()
    window = config.ring_window_seconds
    counts = _window_counts(codes, rows[TS].to_numpy(), window)
    starts = np.flatnonzero(counts >= config.ring_min_accounts)
    cover = np.zeros(rows.height + 1, dtype=np.int64)
    np.add.at(cover, starts, 1)
    np.add.at(cover, starts + counts[starts], -1)
    member = np.cumsum(cover[:-1]) > 0
    size = np.zeros(rows.height, dtype=np.int64)
    for start in starts.tolist():  # the largest ring each member belongs to
        end = start + int(counts[start])
        size[start:end] = np.maximum(size[start:end], counts[start])
    ring = rows.with_columns(pl.Series("__size", size)).filter(pl.Series(member))
    return (
        ring.group_by(USER, maintain_order=True)
        .agg(pl.col(ITEM).first(), pl.col("__size").max())
        .select(
            USER,
            pl.lit("ring").alias(PATTERN),
            pl.lit(QuarantineReason.SUSPECTED_FAKE_ORDER.value).alias(FLAG_REASON),
            pl.format(
                "a new account among {} that bought raw_item_id {} within {} s "
                "(data.fake_traffic.ring_min_accounts {})",
                pl.col("__size"),
                pl.col(ITEM),
                pl.lit(window),
                pl.lit(config.ring_min_accounts),
            ).alias(FLAG_DETAIL),
        )
        .cast(_FLAGS_SCHEMA)  # type: ignore[arg-type]
    )


def look_counts(kinds: pl.Series) -> tuple[int, int]:
    """(browse events, views and clicks among them) of a column of event types."""
    browse = kinds.filter(kinds.is_in([k.value for k in BROWSE]))
    return browse.len(), int(browse.is_in(list(_LOOKS)).sum())


def views_are_logged(browse: int, looks: int) -> bool:
    """Whether at least half the browse events are views or clicks."""
    return browse > 0 and looks >= 0.5 * browse


def detect(events: pl.DataFrame, config: FakeTrafficConfig) -> pl.DataFrame:
    """Flagged users of an in-memory event table: USER, PATTERN, FLAG_REASON, FLAG_DETAIL.

    Args:
        events: USER, ITEM, KIND, TS, SEQ.
        config: the thresholds.
    """
    flags, new_purchases = user_patterns(
        events, config, views_logged=views_are_logged(*look_counts(events[KIND]))
    )
    return merge_flags([flags, ring_accounts(new_purchases, config)])


def merge_flags(frames: Iterable[pl.DataFrame]) -> pl.DataFrame:
    """One flag per user: a bot pattern wins over a fake-order one (listed order)."""
    order = {name: rank for rank, name in enumerate((*_BOT_PATTERNS, *_FAKE_PATTERNS))}
    combined = pl.concat([_empty_flags(), *frames])
    ranked = combined.with_columns(
        pl.col(PATTERN).replace_strict(order, return_dtype=pl.Int64).alias("__rank")
    )
    return (
        ranked.sort("__rank", USER).unique(USER, keep="first", maintain_order=True).drop("__rank")
    )


@dataclass
class FakeTrafficCheck:
    """The fake-traffic check over user buckets on disk (see the module doc).

    Attributes:
        config: the thresholds.
        users_by_pattern: flagged users per pattern, after `find`.
        events_by_reason: flagged events per quarantine reason, after `find`.
        events_checked: events the check looked at, after `find`.
        withheld: events that would have been flagged but were not, because they were
            more than `max_share` of the events (0 when the flags were applied).
    """

    config: FakeTrafficConfig
    users_by_pattern: Counter[str] = field(default_factory=Counter)
    events_by_reason: Counter[str] = field(default_factory=Counter)
    events_checked: int = 0
    withheld: int = 0

    @property
    def columns(self) -> dict[str, str]:
        """Typed event column -> the name this check reads it under (user first)."""
        return {
            typed(RAW_USER_ID): USER,
            typed(RAW_ITEM_ID): ITEM,
            typed(EVENT_TYPE): KIND,
            typed(TIMESTAMP): TS,
        }

    def find(self, paths: list[Path], skip: np.ndarray) -> pl.DataFrame:
        """Flagged events: SEQ, FLAG_REASON, FLAG_DETAIL, sorted by SEQ.

        Args:
            paths: bucket files (USER, ITEM, KIND, TS, SEQ), each holding whole users.
            skip: sequence numbers already rejected (duplicates, unknown items).
        """
        existing = [path for path in paths if path.is_file()]
        counts = [look_counts(read_scratch(path, columns=[KIND])[KIND]) for path in existing]
        views_logged = views_are_logged(sum(c[0] for c in counts), sum(c[1] for c in counts))
        flags: list[pl.DataFrame] = []
        new_purchases: list[pl.DataFrame] = [pl.DataFrame(schema=_NEW_SCHEMA)]
        for path in existing:
            bucket = _read_bucket(path, skip)
            self.events_checked += bucket.height
            found, new = user_patterns(bucket, self.config, views_logged=views_logged)
            flags.append(found)
            new_purchases.append(new)
        rings = ring_accounts(pl.concat(new_purchases), self.config)
        merged = merge_flags([*flags, rings])
        self.users_by_pattern = Counter(dict(merged[PATTERN].value_counts().iter_rows()))
        found_events = [
            pl.DataFrame(schema={SEQ: pl.Int64, FLAG_REASON: pl.String, FLAG_DETAIL: pl.String})
        ]
        if merged.height:
            for path in existing:
                bucket = _read_bucket(path, skip).select(USER, SEQ)
                found_events.append(bucket.join(merged, on=USER, how="inner"))
        result = pl.concat([f.select(SEQ, FLAG_REASON, FLAG_DETAIL) for f in found_events]).sort(
            SEQ
        )
        if result.height > self.config.max_share * self.events_checked:
            # More fake than real traffic is far likelier a shop whose logs the rules do
            # not fit (or generated test data) than an invasion: flag nothing, warn.
            self.withheld = result.height
            self.users_by_pattern = Counter()
            return result.clear()
        self.events_by_reason = Counter(dict(result[FLAG_REASON].value_counts().iter_rows()))
        return result


def _read_bucket(path: Path, skip: np.ndarray) -> pl.DataFrame:
    frame = read_scratch(path)
    if skip.size:
        frame = frame.filter(~pl.col(SEQ).is_in(pl.Series(skip).implode()))
    return frame
