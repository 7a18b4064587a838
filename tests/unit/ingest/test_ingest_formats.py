"""Every input format, gzip (whole and cut off), folders and file errors."""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

import polars as pl
import pytest

from shelfwise.config import EventsConfig, SourceConfig
from shelfwise.contracts import (
    QUARANTINE_SCHEMA,
    RAW_ITEM_ID,
    RAW_USER_ID,
    REASON,
    ROW_NUMBER,
    SOURCE_FILE,
    TIMESTAMP,
    QuarantineReason,
)
from shelfwise.errors import ConfigError, EmptyDataError, InputFileError
from shelfwise.ingest import read_source, read_source_detailed

EVENTS_CSV = "user_id,item_id,event,timestamp,extra\nu1,i1,view,100,x\nu2,i2,buy,200,y\n"


def test_csv_keeps_strings_adds_provenance_and_drops_extras(write) -> None:
    path = write("events.csv", EVENTS_CSV)
    read = read_source_detailed(EventsConfig(path=path), "events")
    data = read.data
    assert data.columns == [
        RAW_USER_ID,
        RAW_ITEM_ID,
        "event_type",
        TIMESTAMP,
        ROW_NUMBER,
        SOURCE_FILE,
    ]
    assert data[TIMESTAMP].to_list() == ["100", "200"]  # values as read
    assert data[ROW_NUMBER].to_list() == [1, 2]
    assert data[SOURCE_FILE].to_list() == [str(path)] * 2
    assert read.ignored_columns == ["extra"]
    assert read.file_format == "csv"
    assert read.quarantine.schema == pl.Schema(QUARANTINE_SCHEMA)


def test_empty_cells_are_null(write) -> None:
    path = write("catalog.csv", "item_id,title,price\ni1,,3\ni2,Hat,\n")
    data, _ = read_source(SourceConfig(path=path), "catalog")
    assert data["title"].to_list() == [None, "Hat"]
    assert data["price"].to_list() == ["3", None]


def test_tsv(write) -> None:
    path = write("events.tsv", 'user\titem\tts\nu1\t"quoted" i1\t5\n')
    data, quarantine = read_source(EventsConfig(path=path), "events")
    assert data[RAW_ITEM_ID].to_list() == ['"quoted" i1']  # TSV has no quoting
    assert data["event_type"].to_list() == ["view"]  # the default event type
    assert quarantine.is_empty()


def test_headerless_csv_takes_column_names(write) -> None:
    path = write("taobao.csv", "1,10,c1,pv,1511544070\n2,20,c2,buy,1511544071\n")
    source = EventsConfig(
        path=path,
        has_header=False,
        column_names=["user_id", "item_id", "category_id", "behavior", "timestamp"],
    )
    data, _ = read_source(source, "events")
    assert data.height == 2
    assert data["category"].to_list() == ["c1", "c2"]
    assert data["event_type"].to_list() == ["pv", "buy"]  # mapped later, in validate


def test_headerless_single_line_and_header_only_files(write) -> None:
    names = ["user_id", "item_id"]
    path = write("one.csv", "u1,i1")
    data, _ = read_source(EventsConfig(path=path, has_header=False, column_names=names), "events")
    assert data[RAW_USER_ID].to_list() == ["u1"]
    path = write("empty.csv", "user_id,item_id\n")
    data, quarantine = read_source(EventsConfig(path=path), "events")
    assert data.is_empty()
    assert quarantine.is_empty()
    assert RAW_ITEM_ID in data.columns


def test_a_file_without_any_data_is_empty_data(write) -> None:
    path = write("events.jsonl", "\n\n")
    with pytest.raises(EmptyDataError, match=r"data\.events: .*events\.jsonl holds no data"):
        read_source(EventsConfig(path=path), "events")


def test_headerless_csv_without_column_names_is_a_config_error(write) -> None:
    path = write("taobao.csv", "1,10\n")
    with pytest.raises(ConfigError, match="column_names"):
        read_source(EventsConfig(path=path, has_header=False), "events")


def test_parquet_keeps_native_types(tmp_path: Path) -> None:
    path = tmp_path / "catalog.parquet"
    pl.DataFrame({"sku": [1, 2], "price": [9.5, 3.0], "in_stock": [True, False]}).write_parquet(
        path
    )
    data, _ = read_source(SourceConfig(path=path), "catalog")
    assert data.schema[RAW_ITEM_ID] == pl.Int64
    assert data.schema["price"] == pl.Float64
    assert data[ROW_NUMBER].to_list() == [1, 2]


def test_jsonl_fast_path(write) -> None:
    lines = [{"user_id": "u1", "item_id": "i1", "ts": 5}, {"user_id": "u2", "item_id": "i2"}]
    path = write("events.jsonl", "".join(json.dumps(line) + "\n" for line in lines))
    data, quarantine = read_source(EventsConfig(path=path), "events")
    assert data[TIMESTAMP].to_list() == [5, None]
    assert quarantine.is_empty()


def test_jsonl_bad_lines_are_located(write) -> None:
    text = '{"user_id": "u1", "item_id": "i1"}\n{"user_id": "u2", "item_id"\n\n[1, 2]\n'
    text += '{"user_id": "u3", "item_id": "i3"}\n'
    path = write("events.jsonl", text)
    data, quarantine = read_source(EventsConfig(path=path), "events")
    assert data[RAW_USER_ID].to_list() == ["u1", "u3"]
    assert data[ROW_NUMBER].to_list() == [1, 5]  # line numbers, blank line included
    assert quarantine[REASON].to_list() == ["malformed-row", "malformed-row"]
    assert quarantine[ROW_NUMBER].to_list() == [2, 4]
    assert json.loads(quarantine["raw_row"][0]) == '{"user_id": "u2", "item_id"'


def test_recbole_atomic_files(write) -> None:
    inter = write(
        "ml.inter",
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n196\t242\t3\t881250949\n",
    )
    item = write(
        "ml.item",
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "242\tKolya\t1996\tComedy\n",
    )
    events, _ = read_source(EventsConfig(path=inter, default_event_type="rating"), "events")
    assert events.row(0, named=True) | {SOURCE_FILE: None} == {
        RAW_USER_ID: "196",
        RAW_ITEM_ID: "242",
        "event_type": "rating",
        TIMESTAMP: "881250949",
        "value": "3",
        ROW_NUMBER: 1,
        SOURCE_FILE: None,
    }
    catalog = read_source_detailed(
        SourceConfig(path=item, mapping={"movie_title": "title", "class": "category"}), "catalog"
    )
    assert catalog.file_format == "recbole"
    assert catalog.data["title"].to_list() == ["Kolya"]
    assert catalog.data["category"].to_list() == ["Comedy"]
    assert catalog.ignored_columns == ["release_year"]


def test_sequence_file_explodes_lines_with_ordinal_time(write) -> None:
    path = write("beauty.txt", "1 10 11 12\n2  20\n3\n\n4 40 41\n")
    read = read_source_detailed(EventsConfig(path=path), "events")
    data = read.data
    assert read.file_format == "sequence"
    assert data[RAW_USER_ID].to_list() == ["1", "1", "1", "2", "4", "4"]
    assert data[RAW_ITEM_ID].to_list() == ["10", "11", "12", "20", "40", "41"]
    assert data[TIMESTAMP].to_list() == [0, 1, 2, 0, 0, 1]
    assert data[ROW_NUMBER].to_list() == [1, 1, 1, 2, 5, 5]
    assert read.quarantine[ROW_NUMBER].to_list() == [3]  # a user without items
    assert read.quarantine[REASON].to_list() == ["malformed-row"]


def test_gzip_csv(write) -> None:
    path = write("events.csv.gz", EVENTS_CSV)
    read = read_source_detailed(EventsConfig(path=path), "events")
    assert read.file_format == "csv"
    assert read.data.height == 2
    assert read.warnings == []


def test_concatenated_gzip_members(tmp_path: Path) -> None:
    path = tmp_path / "events.csv.gz"
    path.write_bytes(gzip.compress(EVENTS_CSV.encode()) + gzip.compress(b"u3,i3,view,300,z\n"))
    data, _ = read_source(EventsConfig(path=path), "events")
    assert data[RAW_USER_ID].to_list() == ["u1", "u2", "u3"]


def test_truncated_gzip_keeps_complete_lines(tmp_path: Path) -> None:
    rows = "".join(f"u{n},i{n * 7919 % 10007},view,{1000 + n},x\n" for n in range(2000))
    whole = gzip.compress(("user_id,item_id,event,timestamp,extra\n" + rows).encode())
    cut = whole[: len(whole) * 3 // 4]  # an interrupted download
    path = tmp_path / "events.csv.gz"
    path.write_bytes(cut)
    decompressor = zlib.decompressobj(wbits=31)
    recoverable = decompressor.decompress(cut) + decompressor.flush()
    complete_rows = recoverable.count(b"\n") - 1  # minus the header line
    partial_line = recoverable.rsplit(b"\n", 1)[1].decode()

    read = read_source_detailed(EventsConfig(path=path), "events", allow_partial=True)

    assert read.data.height == complete_rows
    assert read.data[ROW_NUMBER].to_list() == list(range(1, complete_rows + 1))
    assert read.data[RAW_USER_ID][-1] == f"u{complete_rows - 1}"
    assert read.quarantine[REASON].to_list() == [QuarantineReason.TRUNCATED_INPUT.value]
    assert read.quarantine[ROW_NUMBER].to_list() == [complete_rows + 1]
    assert json.loads(read.quarantine["raw_row"][0]) == partial_line
    assert len(read.warnings) == 1
    assert "ends early" in read.warnings[0]


def test_truncated_gzip_inside_quoted_multiline_field(tmp_path: Path) -> None:
    text = 'item_id,description\ni1,"one\ntwo"\ni2,"three\nfour and more'
    path = tmp_path / "catalog.csv.gz"
    whole = gzip.compress(text.encode())
    path.write_bytes(whole[:-8])  # the gzip trailer is missing: the stream never ends
    read = read_source_detailed(SourceConfig(path=path), "catalog", allow_partial=True)
    assert read.data["description"].to_list() == ["one\ntwo"]
    assert read.quarantine[REASON].to_list() == ["truncated-input"]
    assert json.loads(read.quarantine["raw_row"][0]).startswith('i2,"three\nfour')


def test_malformed_rows_are_quarantined_with_their_text(write) -> None:
    path = write("events.csv", "user_id,item_id\nu1,i1\nu2,i2,extra,field\nu3\nu4,i4\n")
    data, quarantine = read_source(EventsConfig(path=path), "events")
    assert data[RAW_USER_ID].to_list() == ["u1", "u4"]
    assert data[ROW_NUMBER].to_list() == [1, 4]
    assert quarantine[ROW_NUMBER].to_list() == [2, 3]
    assert quarantine["detail"][0] == "expected 2 fields, found 4 (line 3)"
    assert json.loads(quarantine["raw_row"][0]) == "u2,i2,extra,field"


def test_invalid_utf8_does_not_crash(write) -> None:
    path = write("catalog.csv", b"item_id,title\ni1,caf\xe9\ni2,ok\n")
    read = read_source_detailed(SourceConfig(path=path), "catalog")
    assert read.data["title"].to_list() == ["caf\ufffd", "ok"]
    assert "invalid UTF-8" in read.warnings[0]


def test_folder_reads_files_in_sorted_order(write, tmp_path: Path) -> None:
    write("events/b.csv", "user_id,item_id\nu2,i2\n")
    write("events/a.csv.gz", "user_id,item_id\nu1,i1\n")
    write("events/notes.md", "ignored")
    data, _ = read_source(EventsConfig(path=tmp_path / "events"), "events")
    assert data[RAW_USER_ID].to_list() == ["u1", "u2"]
    assert [Path(f).name for f in data[SOURCE_FILE]] == ["a.csv.gz", "b.csv"]


def test_folder_reads_hive_partitions_and_skips_other_folders(write, tmp_path: Path) -> None:
    # The serving event log's layout: <dir>/date=YYYY-MM-DD/hour=HH/*.jsonl
    write("log/date=2025-05-02/hour=00/b.jsonl", '{"raw_user_id": "u3", "raw_item_id": "i3"}\n')
    write("log/date=2025-05-01/hour=23/a.jsonl", '{"raw_user_id": "u2", "raw_item_id": "i2"}\n')
    write("log/date=2025-05-01/hour=07/a.jsonl", '{"raw_user_id": "u1", "raw_item_id": "i1"}\n')
    write("log/backup/old.jsonl", '{"raw_user_id": "x", "raw_item_id": "x"}\n')
    write("log/.tmp=1/partial.jsonl", '{"raw_user_id": "y", "raw_item_id": "y"}\n')
    data, _ = read_source(EventsConfig(path=tmp_path / "log"), "events")
    assert data[RAW_USER_ID].to_list() == ["u1", "u2", "u3"]


def test_folder_with_mixed_formats_is_refused(write, tmp_path: Path) -> None:
    write("events/a.csv", "user_id,item_id\nu1,i1\n")
    write("events/b.jsonl", '{"user_id": "u1", "item_id": "i1"}\n')
    with pytest.raises(InputFileError, match="mixes formats csv, jsonl"):
        read_source(EventsConfig(path=tmp_path / "events"), "events")


def test_missing_file_names_path_and_config_key(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(InputFileError, match=r"data\.events\.path: .*nope\.csv does not exist"):
        read_source(EventsConfig(path=missing), "events")


def test_unknown_extension_asks_for_a_format(write) -> None:
    path = write("events.dat", "user_id,item_id\nu1,i1\n")
    with pytest.raises(InputFileError, match=r"set data\.events\.format"):
        read_source(EventsConfig(path=path), "events")
    data, _ = read_source(EventsConfig(path=path, format="csv"), "events")
    assert data.height == 1


def test_truncated_gzip_jsonl_quarantines_the_partial_line(tmp_path: Path) -> None:
    text = (
        '{"user_id": "u1", "item_id": "i1"}\n\n{"user_id": "u2", "item_id": "i2"}\n{"user_id": "u3'
    )
    path = tmp_path / "events.jsonl.gz"
    path.write_bytes(gzip.compress(text.encode())[:-8])
    read = read_source_detailed(EventsConfig(path=path), "events", allow_partial=True)
    assert read.data[RAW_USER_ID].to_list() == ["u1", "u2"]
    assert read.quarantine.select(ROW_NUMBER, REASON).rows() == [(4, "truncated-input")]


def test_public_names_match_all() -> None:
    import shelfwise.ingest as package

    public = {name for name in vars(package) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(package, name)).__name__ == "module"}
    assert sorted(public - modules - {"annotations"}) == sorted(package.__all__)
