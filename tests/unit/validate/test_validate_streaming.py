"""Bounded-memory validation: batches and buckets change nothing but memory; and the
new checks (issue 14: NA ids, field lengths, dominant ids, time columns, row drops,
partial files)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
import pytest

import shelfwise.validate._engine as engine
from shelfwise import ingest, validate
from shelfwise._internal.stage import StageContext
from shelfwise.config import ShelfwiseConfig, load_config
from shelfwise.contracts import ROW_NUMBER
from shelfwise.errors import RowDropError
from shelfwise.validate import validate_frames

NOW = 1_700_000_000.0


def _events_csv(path: Path, rows: int) -> Path:
    lines = ["user_id,item_id,event,timestamp"]
    for n in range(rows):
        user, item = f"u{n % 37}", f"i{n % 23}"
        if n % 17 == 0:
            item = "i-unknown"
        if n % 29 == 0:
            user = "NA"
        stamp = 1_600_000_000 + (n // 3)  # every third row repeats a timestamp
        lines.append(f"{user},{item},view,{stamp}")
        if n % 11 == 0:
            lines.append(f"{user},{item},view,{stamp}")  # an exact duplicate event
    path.write_text("\n".join(lines) + "\n")
    return path


def _config(tmp_path: Path, events: Path, **overrides: Any) -> ShelfwiseConfig:
    catalog = tmp_path / "catalog.csv"
    rows = "".join(f"i{n},Item {n}\n" for n in range(23))
    catalog.write_text("item_id,title\n" + rows + "i3,Item 3\ni4,Other\n")  # merged, duplicate
    return load_config(
        overrides={
            "data.catalog": {"path": str(catalog)},
            "data.events": {"path": str(events)},
            "data.max_rejected_share": 1.0,
            **overrides,
        },
        environ={},
    )


def _run(config: ShelfwiseConfig, run_dir: Path) -> Any:
    run_dir.mkdir(parents=True, exist_ok=True)
    ingest.run(StageContext(config, run_dir, {}, run_dir / "ingest"))
    return validate.run(
        StageContext(config, run_dir, {"ingest": run_dir / "ingest"}, run_dir / "validate")
    )


def test_small_batches_and_many_buckets_give_identical_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = _events_csv(tmp_path / "events.csv", 600)
    whole = _run(_config(tmp_path, events), tmp_path / "whole")
    monkeypatch.setattr(engine, "BUCKET_ROWS", 50)  # ~14 buckets instead of 1
    batched = _run(_config(tmp_path, events, **{"data.batch_rows": 16}), tmp_path / "batched")

    assert batched.row_counts == whole.row_counts
    for name in ("catalog", "events", "queries", "quarantine"):
        one = pl.read_parquet(tmp_path / "whole" / "validate" / f"{name}.parquet")
        many = pl.read_parquet(tmp_path / "batched" / "validate" / f"{name}.parquet")
        assert one.equals(many), name
    groups = pq.ParquetFile(tmp_path / "batched" / "validate" / "events.parquet").num_row_groups
    assert groups > 20  # one per batch: no batch held the whole source
    assert not (tmp_path / "batched" / "validate" / "_work").exists()
    report = json.loads((tmp_path / "batched" / "validate" / "report.json").read_text())
    counts = report["sources"]["events"]
    assert counts["rows_in"] == counts["accepted"] + counts["quarantined"]
    assert set(counts["by_reason"]) == {"duplicate-event", "missing-id", "unknown-item"}
    catalog = report["sources"]["catalog"]
    assert (catalog["merged"], catalog["by_reason"]) == (1, {"duplicate-item": 1})


def config(**data: Any) -> ShelfwiseConfig:
    return load_config(
        overrides={"data.events": {"path": "events.csv"}, "data.max_rejected_share": 1.0, **data},
        environ={},
    )


@pytest.mark.parametrize("marker", ["NA", "null", "None", "N/A", "nan", "  ", "#N/A", "NULL"])
def test_missing_markers_in_ids_are_missing(marker: str) -> None:
    events = pl.DataFrame(
        {
            "raw_user_id": [marker, "u1", "u2"],
            "raw_item_id": ["i1", marker, "i2"],
            "timestamp": ["1600000000"] * 3,
        }
    )
    result = validate_frames(config(), events=events, now=NOW)
    rejected = result.quarantine.filter(pl.col("reason") == "missing-id")
    assert rejected[ROW_NUMBER].to_list() == [1, 2]
    assert result.events["raw_user_id"].to_list() == ["u2"]
    if marker.strip():
        assert "is a missing-value marker" in rejected["detail"][0]


def test_one_user_holding_most_events_is_warned_about() -> None:
    users = ["guest" if n % 3 else f"u{n}" for n in range(3000)]
    events = pl.DataFrame(
        {
            "raw_user_id": users,
            "raw_item_id": [f"i{n % 500}" for n in range(3000)],
            "timestamp": [str(1_600_000_000 + n) for n in range(3000)],
        }
    )
    result = validate_frames(config(), events=events, now=NOW)
    (warning,) = [w for w in result.report["warnings"] if "dominant_id_share" in w]
    assert warning.startswith("raw_user_id 'guest' holds 2,000 of the 3,000 accepted events")
    spread = events.with_columns(pl.Series("raw_user_id", [f"u{n % 40}" for n in range(3000)]))
    quiet = validate_frames(config(), events=spread, now=NOW)
    assert not [w for w in quiet.report["warnings"] if "dominant_id_share" in w]


def test_over_long_fields_are_quarantined_with_their_length() -> None:
    catalog = pl.DataFrame(
        {
            "raw_item_id": ["ok", "x" * 300, "title", "described"],
            "title": ["Hat", "Cap", "t" * (1 << 20), "Bag"],
            "description": [None, None, None, "d" * 70_000],
        }
    )
    queries = pl.DataFrame(
        {"query": ["hat", "q" * 2049], "raw_item_id": ["ok", "ok"], "relevance": ["1", "2"]}
    )
    result = validate_frames(
        config(**{"data.events": None}), catalog=catalog, queries=queries, now=NOW
    )
    details = dict(result.quarantine.select("raw_row", "detail").iter_rows())
    too_long = result.quarantine.filter(pl.col("reason") == "field-too-long")
    assert too_long.height == 4
    assert sorted(details.values()) == sorted(
        [
            "raw_item_id is 300 characters long, over data.limits.id_chars = 256",
            "title is 1048576 characters long, over data.limits.title_chars = 2048",
            "description is 70000 characters long, over data.limits.description_chars = 65536",
            "query is 2049 characters long, over data.limits.query_chars = 2048",
        ]
    )
    assert result.catalog["raw_item_id"].to_list() == ["ok"]
    raised = validate_frames(
        config(**{"data.events": None, "data.limits.id_chars": 400}), catalog=catalog, now=NOW
    )
    assert "x" * 300 in raised.catalog["raw_item_id"].to_list()


def test_the_time_column_is_named_in_the_report(tmp_path: Path) -> None:
    events = tmp_path / "events.csv"
    events.write_text("visitorid,itemid,timeframe\nu1,i1,1433221332117\nu2,i2,1433221332118\n")
    config = load_config(overrides={"data.events": {"path": str(events)}}, environ={})
    result = _run(config, tmp_path / "run")
    report = json.loads((tmp_path / "run" / "validate" / "report.json").read_text())
    (note,) = report["notes"]
    assert note.startswith("events: time taken from column 'timeframe' (a known name")
    assert "unix milliseconds for 100.00%" in note
    assert note in report["warnings"]  # not the standard name: worth a look
    assert result.extra["notes"] == [note]
    bare = tmp_path / "bare.csv"
    bare.write_text("user_id,item_id\nu1,i1\n")
    config = load_config(overrides={"data.events": {"path": str(bare)}}, environ={})
    _run(config, tmp_path / "bare")
    report = json.loads((tmp_path / "bare" / "validate" / "report.json").read_text())
    assert report["notes"][0].startswith("events have no timestamp column: file order is used")


def _previous_run(root: Path, run_id: str, config: ShelfwiseConfig, accepted: int) -> None:
    folder = root / run_id
    (folder / "validate").mkdir(parents=True)
    record = {"status": "complete", "config": config.model_dump(mode="json")}
    (folder / "run.json").write_text(json.dumps(record))
    manifest = {"row_counts": {"events_accepted": accepted}}
    (folder / "validate" / "manifest.json").write_text(json.dumps(manifest))


def test_a_sharp_row_drop_against_the_last_complete_run_stops_before_training(
    tmp_path: Path,
) -> None:
    events = _events_csv(tmp_path / "events.csv", 100)
    config = _config(tmp_path, events)
    runs = tmp_path / "runs"
    _previous_run(runs, "20250101-000000-aaaaaa", config, accepted=1000)
    with pytest.raises(
        RowDropError,
        match=r"events: \d+ rows accepted now against 1,000 in run 20250101-000000-aaaaaa.*"
        r"more than data\.max_row_drop_share 50%.*--set data\.max_row_drop_share=1",
    ) as caught:
        _run(config, runs / "20250102-000000-bbbbbb")
    assert caught.value.code == "row-count-drop"
    accepting = _config(tmp_path, events, **{"data.max_row_drop_share": 1.0})
    _run(accepting, runs / "20250103-000000-cccccc")
    moved = tmp_path / "elsewhere.csv"
    moved.write_bytes(events.read_bytes())
    _run(_config(tmp_path, moved), runs / "20250104-000000-dddddd")  # another path: no check


def test_a_small_drop_passes_and_is_recorded(tmp_path: Path) -> None:
    events = _events_csv(tmp_path / "events.csv", 100)
    config = _config(tmp_path, events)
    runs = tmp_path / "runs"
    _previous_run(runs, "20250101-000000-aaaaaa", config, accepted=120)
    _run(config, runs / "20250102-000000-bbbbbb")
    report = json.loads((runs / "20250102-000000-bbbbbb" / "validate" / "report.json").read_text())
    assert report["row_drop"]["events"]["previous"] == 120


def test_a_partial_file_marks_the_report_and_summary(tmp_path: Path) -> None:
    events = tmp_path / "events.csv.gz"
    text = "user_id,item_id,timestamp\n" + "".join(
        f"u{n},i{n},{1600000000 + n}\n" for n in range(50)
    )
    events.write_bytes(gzip.compress(text.encode())[:-12])
    config = load_config(
        overrides={"data.events": {"path": str(events)}, "data.allow_partial_files": True},
        environ={},
    )
    result = _run(config, tmp_path / "run")
    report = json.loads((tmp_path / "run" / "validate" / "report.json").read_text())
    (damaged,) = report["partial_files"]
    assert damaged["file"] == str(events)
    assert damaged["offset"] == events.stat().st_size
    assert "WARNING: 1 damaged input file(s) kept partially" in result.summary
    assert any("allow_partial_files is true" in w for w in report["warnings"])
