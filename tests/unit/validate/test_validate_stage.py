"""ingest + validate on malformed files, the rejected-share threshold, stage wiring."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from shelfwise import ingest, validate
from shelfwise._internal.stage import StageContext
from shelfwise.config import ShelfwiseConfig, load_config
from shelfwise.contracts import CATALOG_SCHEMA, EVENT_SCHEMA, QUARANTINE_SCHEMA, ROW_NUMBER
from shelfwise.errors import PipelineError, RejectedShareError

CATALOG = (
    b"item_id,title,price\n"
    b"i1,Red Hat,10.5\n"  # 1 ok
    b"i2,Blue Cap,abc\n"  # 2 bad-type
    b"i3,Bag,-4\n"  # 3 negative-price
    b",No Id,3\n"  # 4 missing-id
    b"i1,Red Hat,10.5\n"  # 5 exact duplicate of 1: merged
    b"i1,Other Hat,11\n"  # 6 duplicate-item
    b"i4,Caf\xe9,2\n"  # 7 undecodable-text (Latin-1 byte in a UTF-8 file)
    b"i5,Shoe,1,extra\n"  # 8 malformed-row
    b"i6,Sock,2\n"  # 9 ok
)
EVENTS = (
    "user_id,item_id,event,timestamp\n"
    "u1,i1,view,1511544070\n"  # 1 ok
    "u1,i9,view,1511544071\n"  # 2 unknown-item
    ",i1,view,1511544072\n"  # 3 missing-id
    "u2,i1,teleport,1511544073\n"  # 4 bad-event-type
    "u2,i1,view,not-a-time\n"  # 5 bad-type
    "u2,i1,view,100\n"  # 6 timestamp-out-of-range
    "u1,i1,view,1511544070\n"  # 7 duplicate-event
    "u3,i6,buy,1511544080\n"  # 8 ok, buy -> purchase
    "u4,i6,view,15115"  # 9 cut off: truncated-input
)


def _run_dir(tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    return run_dir


def _config(tmp_path: Path, **overrides: Any) -> ShelfwiseConfig:
    catalog = tmp_path / "catalog.csv"
    catalog.write_bytes(CATALOG)
    events = tmp_path / "events.csv.gz"
    events.write_bytes(gzip.compress(EVENTS.encode())[:-8])  # the gzip trailer never arrived
    return load_config(
        overrides={
            "data.catalog": {"path": str(catalog)},
            "data.events": {"path": str(events), "event_type_values": {"buy": "purchase"}},
            "data.allow_partial_files": True,  # keep the rows before the cut (row 9)
            **overrides,
        },
        environ={},
    )


def _ingest_then_validate(config: ShelfwiseConfig, run_dir: Path) -> tuple[Any, Any]:
    ingested = ingest.run(StageContext(config, run_dir, {}, run_dir / "ingest"))
    validated = validate.run(
        StageContext(config, run_dir, {"ingest": run_dir / "ingest"}, run_dir / "validate")
    )
    return ingested, validated


def test_malformed_files_land_in_quarantine_with_the_right_reason(tmp_path: Path) -> None:
    config = _config(tmp_path, **{"data.max_rejected_share": 1.0})
    run_dir = _run_dir(tmp_path)
    ingested, validated = _ingest_then_validate(config, run_dir)
    out = run_dir / "validate"

    quarantine = pl.read_parquet(out / "quarantine.parquet")
    assert quarantine.schema == pl.Schema(QUARANTINE_SCHEMA)
    by_row = {
        (source, row): reason
        for source, row, reason in quarantine.select("source", ROW_NUMBER, "reason").iter_rows()
    }
    assert by_row == {
        ("catalog", 2): "bad-type",
        ("catalog", 3): "negative-price",
        ("catalog", 4): "missing-id",
        ("catalog", 6): "duplicate-item",
        ("catalog", 7): "undecodable-text",
        ("catalog", 8): "malformed-row",
        ("events", 2): "unknown-item",
        ("events", 3): "missing-id",
        ("events", 4): "bad-event-type",
        ("events", 5): "bad-type",
        ("events", 6): "timestamp-out-of-range",
        ("events", 7): "duplicate-event",
        ("events", 9): "truncated-input",
    }

    report = json.loads((out / "report.json").read_text())
    for source in ("catalog", "events"):
        counts = report["sources"][source]
        assert counts["rows_in"] == counts["accepted"] + counts["quarantined"] + counts["merged"]
        assert counts["quarantined"] == sum(counts["by_reason"].values())
    assert report["sources"]["catalog"]["rows_in"] == 9
    assert report["sources"]["catalog"]["merged"] == 1
    assert report["sources"]["events"]["rows_in"] == 9
    assert any("ends early" in warning for warning in report["warnings"])
    assert any("invalid UTF-8" in warning for warning in report["warnings"])

    catalog = pl.read_parquet(out / "catalog.parquet")
    assert catalog.schema == pl.Schema(CATALOG_SCHEMA)
    assert catalog["raw_item_id"].to_list() == ["i1", "i6"]
    events = pl.read_parquet(out / "events.parquet")
    assert events.schema == pl.Schema(EVENT_SCHEMA)
    assert events.select("raw_user_id", "event_type").rows() == [("u1", "view"), ("u3", "purchase")]
    assert pl.read_parquet(out / "queries.parquet").is_empty()

    assert ingested.row_counts["events_parse_rejected"] == 1
    assert validated.row_counts["catalog_rows_in"] == 9
    assert validated.row_counts["events_accepted"] == 2


def test_rejected_share_threshold_stops_the_run_and_keeps_the_evidence(tmp_path: Path) -> None:
    config = _config(tmp_path)  # default data.max_rejected_share: 0.05
    run_dir = _run_dir(tmp_path)
    with pytest.raises(
        RejectedShareError,
        match=r"(?s)catalog: 6 of 9 rows rejected \(66\.67% > "
        r"data\.max_rejected_share 5\.00%\).*bad-type 1.*rejected/quarantine\.parquet"
        r".*max_rejected_share: 0\.79",
    ):
        _ingest_then_validate(config, run_dir)
    rejected = run_dir / "rejected"
    report = json.loads((rejected / "report.json").read_text())
    assert report["over_threshold"] == ["catalog", "events"]
    assert pl.read_parquet(rejected / "quarantine.parquet").height == 13
    assert not (run_dir / "validate" / "report.json").exists()


def test_threshold_is_inclusive(tmp_path: Path) -> None:
    events = tmp_path / "events.csv"
    events.write_text("user_id,item_id,timestamp\nu,i,1511544070\n,i,1511544070\n")
    config = load_config(
        overrides={"data.events": {"path": str(events)}, "data.max_rejected_share": 0.5},
        environ={},
    )
    _, validated = _ingest_then_validate(config, _run_dir(tmp_path))
    assert validated.row_counts["events_quarantined"] == 1


def test_validate_needs_the_ingest_folder(tmp_path: Path) -> None:
    config = _config(tmp_path)
    context = StageContext(config, tmp_path, {}, tmp_path / "validate")
    with pytest.raises(PipelineError, match="needs the ingest stage's output folder"):
        validate.run(context)
