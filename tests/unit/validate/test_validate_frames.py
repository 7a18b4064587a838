"""validate_frames on literal frames: casts, each check, ordering, derived catalog."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from rich.console import Console

from shelfwise.config import ShelfwiseConfig, load_config
from shelfwise.contracts import (
    CATALOG_SCHEMA,
    EVENT_SCHEMA,
    QUARANTINE_SCHEMA,
    QUERY_SCHEMA,
    ROW_NUMBER,
)
from shelfwise.validate import report_table, validate_frames

NOW = 1_700_000_000.0  # 2023-11-14


def config(**events: Any) -> ShelfwiseConfig:
    return load_config(
        overrides={"data.events": {"path": "events.csv", **events}, "data.max_rejected_share": 1.0},
        environ={},
    )


def reasons(quarantine: pl.DataFrame, source: str) -> dict[int, str]:
    mine = quarantine.filter(pl.col("source") == source)
    return dict(zip(mine[ROW_NUMBER].to_list(), mine["reason"].to_list(), strict=True))


def events_frame(rows: list[tuple[Any, ...]]) -> pl.DataFrame:
    columns = ["raw_user_id", "raw_item_id", "event_type", "timestamp"]
    return pl.DataFrame(rows, schema=dict.fromkeys(columns, pl.String), orient="row")


def test_outputs_have_the_contract_schemas() -> None:
    result = validate_frames(
        config(), events=events_frame([("u", "i", "view", "1600000000")]), now=NOW
    )
    assert result.catalog.schema == pl.Schema(CATALOG_SCHEMA)
    assert result.events.schema == pl.Schema(EVENT_SCHEMA)
    assert result.queries.schema == pl.Schema(QUERY_SCHEMA)
    assert result.quarantine.schema == pl.Schema(QUARANTINE_SCHEMA)
    assert result.queries.is_empty()


def test_catalog_checks_and_merge() -> None:
    catalog = pl.DataFrame(
        {
            "raw_item_id": ["a", " ", "b", "c", "a", "a", "d", "e"],
            "title": ["Hat", "x", "Cap", "Bag", "Hat", "Other", "caf\ufffd", "Box"],
            "price": ["1.5", "2", "abc", "-3", "1.50", "1", "4", "inf"],
            "in_stock": ["yes", None, None, None, "y", None, None, "0"],
        }
    )
    result = validate_frames(config(), catalog=catalog, now=NOW)
    assert reasons(result.quarantine, "catalog") == {
        2: "missing-id",
        3: "bad-type",
        4: "negative-price",
        6: "duplicate-item",
        7: "undecodable-text",
        8: "bad-type",
    }
    assert result.catalog["raw_item_id"].to_list() == ["a"]
    assert result.catalog["price"].to_list() == [1.5]
    assert result.catalog["in_stock"].to_list() == [True]
    counts = result.report["sources"]["catalog"]
    assert counts == {
        "rows_in": 8,
        "accepted": 1,
        "quarantined": 6,
        "merged": 1,  # row 5 equals row 1 once typed (1.5 == 1.50, yes == y)
        "by_reason": {
            "bad-type": 2,
            "duplicate-item": 1,
            "missing-id": 1,
            "negative-price": 1,
            "undecodable-text": 1,
        },
        "rejected_share": 0.75,
    }
    duplicate = result.quarantine.filter(pl.col("reason") == "duplicate-item")
    assert (
        duplicate["detail"][0]
        == "raw_item_id a already described differently in row 1 (first kept)"
    )


@pytest.mark.parametrize(
    ("unit", "raw", "seconds"),
    [
        ("auto", "1511544070", 1511544070),
        ("auto", "1511544070123", 1511544070),
        ("auto", "1511544070.9", 1511544070),
        ("auto", "2017-11-24T17:21:10Z", 1511544070),
        ("auto", "2017-11-25T01:21:10+08:00", 1511544070),
        ("auto", "2017-11-24 17:21:10", 1511544070),
        ("auto", "2017-11-24", 1511481600),
        ("s", "1511544070", 1511544070),
        ("ms", "1511544070123", 1511544070),
        ("iso", "2017-11-24T17:21:10.5Z", 1511544070),
    ],
)
def test_timestamp_units(unit: str, raw: str, seconds: int) -> None:
    result = validate_frames(
        config(timestamp_unit=unit), events=events_frame([("u", "i", "view", raw)]), now=NOW
    )
    assert result.events["timestamp"].to_list() == [seconds]


def test_native_datetime_timestamps() -> None:
    events = pl.DataFrame(
        {"raw_user_id": ["u"], "raw_item_id": ["i"], "timestamp": [1511544070]}
    ).with_columns(pl.from_epoch("timestamp"))
    result = validate_frames(config(), events=events, now=NOW)
    assert result.events["timestamp"].to_list() == [1511544070]
    assert result.events["event_type"].to_list() == ["view"]  # no column: the default


def test_event_checks_in_order() -> None:
    events = events_frame(
        [
            ("u1", "i1", "pv", "1511544070"),  # 1 ok, pv -> view
            (None, "i1", "xx", "nonsense"),  # 2 missing id wins over everything else
            ("u1", "i1", "BUY", "yesterday"),  # 3 bad timestamp
            ("u1", "i1", "jump", "1511544070"),  # 4 bad event type
            ("u1", "i1", "view", "100"),  # 5 before min_timestamp
            ("u1", "i1", "view", str(int(NOW) + 2 * 86400)),  # 6 in the future
            ("u1", "i1", "view", "1511544070000"),  # 7 same event as row 1 (ms)
            ("u1", "i2", None, "1511544070"),  # 8 empty event type
            ("u1", "i2", "view", None),  # 9 empty timestamp
            ("u1", "i2", "buy", "1511544071"),  # 10 ok, buy -> purchase
        ]
    )
    result = validate_frames(
        config(event_type_values={"pv": "view", "buy": "purchase"}), events=events, now=NOW
    )
    assert reasons(result.quarantine, "events") == {
        2: "missing-id",
        3: "bad-type",
        4: "bad-event-type",
        5: "timestamp-out-of-range",
        6: "timestamp-out-of-range",
        7: "duplicate-event",
        8: "missing-value",
        9: "missing-value",
    }
    assert result.events["event_type"].to_list() == ["view", "purchase"]
    detail = result.quarantine.filter(pl.col(ROW_NUMBER) == 5)["detail"][0]
    assert "timestamp 100 (1970-01-01T00:01:40Z) is outside 1990-01-01T00:00:00Z" in detail
    detail = result.quarantine.filter(pl.col(ROW_NUMBER) == 4)["detail"][0]
    assert "event_type jump is not one of view, click, cart" in detail


def test_ordinal_timestamps_skip_the_range_check() -> None:
    events = events_frame([("u", "i1", "view", "0"), ("u", "i2", "view", "1")])
    result = validate_frames(config(), events=events, timestamp_unit="ordinal", now=NOW)
    assert result.events["timestamp"].to_list() == [0, 1]
    assert result.quarantine.is_empty()


def test_events_without_timestamps_use_file_order() -> None:
    events = pl.DataFrame({"raw_user_id": ["u", "u"], "raw_item_id": ["a", "b"]})
    result = validate_frames(config(), events=events, now=NOW)
    assert result.events["timestamp"].to_list() == [0, 1]
    assert any("no timestamp column" in w for w in result.report["warnings"])


def test_unknown_items_against_a_configured_catalog() -> None:
    catalog = pl.DataFrame({"raw_item_id": ["i1"]})
    events = events_frame([("u", "i1", "view", "1511544070"), ("u", "i9", "view", "1511544070")])
    queries = pl.DataFrame(
        {"query": ["hat", "cap"], "raw_item_id": ["i1", "i9"], "relevance": ["1", "2"]}
    )
    result = validate_frames(config(), catalog=catalog, events=events, queries=queries, now=NOW)
    assert reasons(result.quarantine, "events") == {2: "unknown-item"}
    assert reasons(result.quarantine, "queries") == {2: "unknown-item"}
    assert result.report["catalog_derived"] is False


def test_derived_catalog_takes_item_attributes_from_events() -> None:
    events = events_frame(
        [
            ("u", "i1", "view", "1511544070"),
            ("u", "i2", "view", "1511544071"),
            ("v", "i1", "view", "1511544072"),
        ]
    ).with_columns(pl.Series("category", [None, "c2", "c1"]))
    result = validate_frames(config(), events=events, now=NOW)
    assert result.report["catalog_derived"] is True
    assert result.catalog["raw_item_id"].to_list() == ["i1", "i2"]
    assert result.catalog["category"].to_list() == ["c1", "c2"]
    assert result.catalog.schema == pl.Schema(CATALOG_SCHEMA)


def test_query_checks() -> None:
    queries = pl.DataFrame(
        {
            "query": ["hat", None, "hat", "cap", "hat", "bag"],
            "raw_item_id": ["i1", "i1", None, "i1", "i1", "i2"],
            "relevance": ["3", "1", "1", "high", "2", None],
        }
    )
    result = validate_frames(config(), queries=queries, now=NOW)
    assert reasons(result.quarantine, "queries") == {
        2: "missing-value",
        3: "missing-id",
        4: "bad-type",
        5: "duplicate-query-label",
        6: "missing-value",
    }
    assert result.queries.rows() == [("hat", "i1", 3.0)]


def test_parse_rejects_count_toward_rows_in() -> None:
    parse = pl.DataFrame(
        {
            "source": ["events"],
            "source_file": ["e.csv"],
            "row_number": [2],
            "reason": ["malformed-row"],
            "detail": ["expected 4 fields, found 5 (line 3)"],
            "raw_row": ['"a,b,c,d,e"'],
        },
        schema=QUARANTINE_SCHEMA,
    )
    events = events_frame([("u", "i", "view", "1511544070")])
    result = validate_frames(config(), events=events, parse_quarantine=parse, now=NOW)
    counts = result.report["sources"]["events"]
    assert (counts["rows_in"], counts["accepted"], counts["quarantined"]) == (2, 1, 1)
    assert counts["by_reason"] == {"malformed-row": 1}


def test_raw_row_is_the_row_as_json() -> None:
    events = events_frame([(None, "i", "view", "1511544070")])
    result = validate_frames(config(), events=events, now=NOW)
    assert result.quarantine["raw_row"][0] == (
        '{"raw_user_id":null,"raw_item_id":"i","event_type":"view","timestamp":"1511544070"}'
    )


def test_report_table_renders() -> None:
    events = events_frame([("u", "i", "view", "1511544070"), (None, "i", "view", "1")])
    result = validate_frames(config(), events=events, now=NOW)
    console = Console(width=120, record=True)
    console.print(report_table(result.report))
    text = console.export_text()
    assert "events" in text
    assert "missing-id 1" in text
    assert "50.00%" in text
    assert "derived from events" in text


def test_public_names_match_all() -> None:
    import shelfwise.validate as package

    public = {name for name in vars(package) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(package, name)).__name__ == "module"}
    assert sorted(public - modules - {"annotations"}) == sorted(package.__all__)
