"""The fake-traffic check (issue 15): each pattern on a hand-made event table, a busy
human left alone, and quarantine counts that add up through validate."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import shelfwise.validate._core as core
from shelfwise.config import ShelfwiseConfig, load_config
from shelfwise.config.fake_traffic import FakeTrafficConfig
from shelfwise.contracts import EVENT_TYPE, RAW_ITEM_ID, RAW_USER_ID, REASON, TIMESTAMP
from shelfwise.validate import validate_frames
from shelfwise.validate._bots import ITEM, KIND, PATTERN, SEQ, TS, USER, detect

T0 = 1_700_000_000
DAY = 86_400
NOW = float(T0 + 200 * DAY)


def _rows(
    user: str, kinds: list[str], times: list[int], items: list[str] | None = None
) -> list[tuple[str, str, str, int]]:
    items = items or [f"i{n % 7}" for n in range(len(kinds))]
    return [(user, item, kind, t) for item, kind, t in zip(items, kinds, times, strict=True)]


def _human(user: str = "human") -> list[tuple[str, str, str, int]]:
    """A busy human: 300 events over 60 days, sessions of views 5-90 s apart, carts and
    purchases after views."""
    rows: list[tuple[str, str, str, int]] = []
    t = T0
    for session in range(30):
        t = T0 + session * 2 * DAY + (session * 3_917) % 20_000
        for step in range(10):
            item = f"i{(session * 10 + step) % 40}"
            t += 5 + (step * 37 + session * 11) % 86
            rows.append((user, item, "view", t))
        rows.append((user, item, "cart", t + 20))
        rows.append((user, item, "purchase", t + 60))
    return rows


def _frame(rows: list[tuple[str, str, str, int]]) -> pl.DataFrame:
    frame = pl.DataFrame(
        rows, schema={USER: pl.String, ITEM: pl.String, KIND: pl.String, TS: pl.Int64}, orient="row"
    )
    return frame.with_row_index(SEQ).with_columns(pl.col(SEQ).cast(pl.Int64))


def _patterns(rows: list[tuple[str, str, str, int]], **thresholds: object) -> dict[str, str]:
    flags = detect(_frame(rows), FakeTrafficConfig.model_validate(thresholds))
    return dict(zip(flags[USER].to_list(), flags[PATTERN].to_list(), strict=True))


def test_a_busy_human_is_not_flagged() -> None:
    assert _patterns(_human()) == {}


def test_sustained_rate_beyond_human_limits_is_a_bot() -> None:
    scraper = _rows("s", ["view"] * 200, [T0 + n for n in range(200)])  # one a second
    assert _patterns(_human() + scraper) == {"s": "rate"}


def test_views_without_dwell_are_a_bot() -> None:
    # 30 views: two in the same second, then a 100 s pause; 30 events in 300 s is no rate.
    times = [T0 + (n // 3) * 100 for n in range(30)]
    assert _patterns(_human() + _rows("fast", ["view"] * 30, times)) == {"fast": "no-dwell"}


def test_a_constant_timer_is_scripted() -> None:
    times = [T0 + 12 * n for n in range(40)]
    assert _patterns(_human() + _rows("timer", ["click"] * 40, times)) == {"timer": "regular"}


def test_purchases_never_viewed_are_fake_orders_when_the_shop_logs_views() -> None:
    buyer = _rows("buyer", ["purchase"] * 3, [T0 + n * DAY for n in range(3)], ["a", "b", "c"])
    assert _patterns(_human() + buyer) == {"buyer": "unviewed-purchase"}
    # A shopper who browses plenty but whose views of these items fell before the log.
    browser = _rows("browser", ["view"] * 10, [T0 + 3 * DAY + 50 * n for n in range(10)])
    assert _patterns(
        _human()
        + buyer
        + browser
        + [(u.replace("buyer", "browser"), i, k, t) for u, i, k, t in buyer]
    ) == {"buyer": "unviewed-purchase"}
    # A shop that logs only purchases: the same user is normal.
    assert _patterns(buyer + _rows("other", ["purchase"] * 2, [T0, T0 + 5])) == {}


def test_new_accounts_buying_one_product_in_a_burst_are_a_ring() -> None:
    ring = [
        row
        for n in range(6)
        for row in _rows(
            f"new{n}", ["view", "purchase"], [T0 + 200 * n, T0 + 200 * n + 30], ["x", "x"]
        )
    ]
    # An old customer buying the same product within the hour is not part of it.
    loyal = [(u, i, k, t - 30 * DAY) for u, i, k, t in _human("loyal")] + [
        ("loyal", "x", "purchase", T0 + 100)
    ]
    found = _patterns(ring + loyal)
    assert found == {f"new{n}": "ring" for n in range(6)}
    # Four new accounts are below ring_min_accounts 5.
    assert _patterns(ring[:8] + loyal) == {}


def test_coarse_timestamps_skip_the_time_patterns() -> None:
    daily = _rows("daily", ["view"] * 100, [T0 - T0 % DAY + (n // 50) * DAY for n in range(100)])
    assert _patterns(daily) == {}


def _config(**fake: object) -> ShelfwiseConfig:
    return load_config(overrides={"data.fake_traffic": fake} if fake else {}, environ={})


def _events(rows: list[tuple[str, str, str, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            RAW_USER_ID: pl.String,
            RAW_ITEM_ID: pl.String,
            EVENT_TYPE: pl.String,
            TIMESTAMP: pl.Int64,
        },
        orient="row",
    )


def _shop() -> tuple[pl.DataFrame, pl.DataFrame]:
    scraper = _rows("s", ["view"] * 200, [T0 + n for n in range(200)])
    timer = _rows("timer", ["click"] * 40, [T0 + 12 * n for n in range(40)])
    ring = [row for n in range(5) for row in _rows(f"new{n}", ["purchase"], [T0 + 60 * n], ["x"])]
    events = _events(_human() + _human("other") + scraper + timer + ring)
    catalog = pl.DataFrame({RAW_ITEM_ID: [f"i{n}" for n in range(40)] + ["x"]})
    return catalog, events


@pytest.mark.parametrize("buckets", [1, 3])
def test_flagged_events_are_quarantined_and_counts_add_up(
    monkeypatch: pytest.MonkeyPatch, buckets: int
) -> None:
    monkeypatch.setattr(core, "bucket_count", lambda rows: buckets)
    catalog, events = _shop()
    result = validate_frames(_config(), catalog=catalog, events=events, now=NOW)
    counts = result.report["sources"]["events"]
    assert counts["rows_in"] == counts["accepted"] + counts["quarantined"] == events.height
    assert counts["by_reason"] == {"suspected-bot": 240, "suspected-fake-order": 5}
    # Fake traffic is not broken data: the rejected share stays 0.
    assert counts["rejected_share"] == 0.0
    fake = result.report["fake_traffic"]
    assert fake["users_by_pattern"] == {"rate": 1, "regular": 1, "ring": 5}
    assert fake["events_flagged"] == 245
    assert set(result.events[RAW_USER_ID].unique().to_list()) == {"human", "other"}
    details = result.quarantine.filter(pl.col(REASON) == "suspected-fake-order")["detail"]
    assert details[0] == (
        "a new account among 5 that bought raw_item_id x within 3600 s "
        "(data.fake_traffic.ring_min_accounts 5)"
    )


def test_disabled_check_flags_nothing() -> None:
    catalog, events = _shop()
    result = validate_frames(_config(enabled=False), catalog=catalog, events=events, now=NOW)
    assert result.report["sources"]["events"]["quarantined"] == 0
    assert result.report["fake_traffic"] == {"checked": False}


def test_ratings_and_ordinal_time_are_never_checked(tmp_path: Path) -> None:
    ratings = _events(_rows("s", ["rating"] * 200, [T0 + n for n in range(200)]))
    result = validate_frames(_config(), events=ratings, now=NOW)
    assert result.report["sources"]["events"]["quarantined"] == 0
    ordinal = _events(_rows("s", ["view"] * 200, list(range(200))))
    result = validate_frames(_config(), events=ordinal, timestamp_unit="ordinal", now=NOW)
    assert result.report["fake_traffic"] == {"checked": False}


def test_a_high_flagged_share_warns() -> None:
    catalog, events = _shop()
    result = validate_frames(_config(warn_share=0.01), catalog=catalog, events=events, now=NOW)
    assert any("data.fake_traffic.warn_share 1%" in note for note in result.report["warnings"])


def test_flags_over_max_share_are_withheld_with_a_warning() -> None:
    catalog, events = _shop()
    result = validate_frames(_config(max_share=0.1), catalog=catalog, events=events, now=NOW)
    assert result.report["sources"]["events"]["quarantined"] == 0
    fake = result.report["fake_traffic"]
    assert fake["withheld"] == 245
    assert fake["events_flagged"] == 0
    assert any("none were quarantined" in note for note in result.report["warnings"])
