"""Column mapping: aliases, explicit mapping, id_from, schema errors, the stage."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pytest

from shelfwise import ingest
from shelfwise._internal.stage import StageContext
from shelfwise.config import EventsConfig, ShelfwiseConfig, SourceConfig, load_config
from shelfwise.contracts import (
    CATEGORY,
    DESCRIPTION,
    EVENT_TYPE,
    QUERY,
    RAW_ITEM_ID,
    RAW_USER_ID,
    RELEVANCE,
    SESSION_ID,
    TIMESTAMP,
    TITLE,
    VALUE,
)
from shelfwise.errors import EmptyDataError, SchemaError
from shelfwise.ingest import read_source, read_source_detailed


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("userId,itemId,behavior,ts", [RAW_USER_ID, RAW_ITEM_ID, EVENT_TYPE, TIMESTAMP]),
        ("visitorid,itemid,event,event_time", [RAW_USER_ID, RAW_ITEM_ID, EVENT_TYPE, TIMESTAMP]),
        (
            "user,sku,action,datetime,rating",
            [RAW_USER_ID, RAW_ITEM_ID, EVENT_TYPE, TIMESTAMP, VALUE],
        ),
        (
            "USER_ID,Product_Id,behavior_type,time,session",
            [RAW_USER_ID, RAW_ITEM_ID, EVENT_TYPE, TIMESTAMP, SESSION_ID],
        ),
        ("user_id,item,search_query,category_id", [RAW_USER_ID, RAW_ITEM_ID, QUERY, CATEGORY]),
    ],
)
def test_event_aliases(write, header: str, expected: list[str]) -> None:
    values = ",".join("v" for _ in header.split(","))
    path = write("events.csv", f"{header}\n{values}\n")
    data, _ = read_source(EventsConfig(path=path), "events")
    assert set(expected) <= set(data.columns)


def test_catalog_and_query_aliases(write) -> None:
    catalog = write(
        "c.csv", "product_id,name,product_description,categoryid,brand,price\n1,a,b,c,d,2\n"
    )
    data, _ = read_source(SourceConfig(path=catalog), "catalog")
    assert data.columns[:6] == [RAW_ITEM_ID, TITLE, DESCRIPTION, CATEGORY, "brand", "price"]
    queries = write("q.csv", "query,item_id,median_relevance\nhat,1,3\n")
    data, _ = read_source(SourceConfig(path=queries), "queries")
    assert data.columns[:3] == [QUERY, RAW_ITEM_ID, RELEVANCE]


def test_explicit_mapping_wins_over_aliases(write) -> None:
    path = write("c.csv", "item_id,code,title,movie_title\n1,A,x,Toy Story\n")
    read = read_source_detailed(
        SourceConfig(path=path, mapping={"code": RAW_ITEM_ID, "movie_title": TITLE}), "catalog"
    )
    assert read.data[RAW_ITEM_ID].to_list() == ["A"]
    assert read.data[TITLE].to_list() == ["Toy Story"]
    assert sorted(read.ignored_columns) == ["item_id", "title"]


def test_exact_shelfwise_name_wins_over_alias(write) -> None:
    path = write("e.csv", "user,raw_user_id,item_id\nalias,exact,i\n")
    data, _ = read_source(EventsConfig(path=path), "events")
    assert data[RAW_USER_ID].to_list() == ["exact"]


def test_id_from_builds_the_same_stable_id_for_catalog_and_queries(write) -> None:
    text = (
        "query,product_title,product_description,median_relevance\n"
        "hat,Red Hat,Warm,4\n"
        "cap,Red Hat,Warm,2\n"
        "cap,Blue Cap,,3\n"
    )
    path = write("train.csv", text)
    id_from = ["product_title", "product_description"]
    catalog, _ = read_source(SourceConfig(path=path, id_from=id_from), "catalog")
    queries, _ = read_source(SourceConfig(path=path, id_from=id_from), "queries")
    expected = hashlib.sha1(b"Red Hat\x1fWarm").hexdigest()[:16]
    assert catalog[RAW_ITEM_ID].to_list()[:2] == [expected, expected]
    assert catalog[RAW_ITEM_ID].to_list() == queries[RAW_ITEM_ID].to_list()
    assert catalog[RAW_ITEM_ID][2] == hashlib.sha1(b"Blue Cap\x1f").hexdigest()[:16]
    assert catalog[TITLE].to_list() == ["Red Hat", "Red Hat", "Blue Cap"]


def test_id_from_of_all_null_values_is_null(write) -> None:
    path = write("c.csv", "title,description\n,\nA,\n")
    data, _ = read_source(SourceConfig(path=path, id_from=["title", "description"]), "catalog")
    assert data[RAW_ITEM_ID][0] is None
    assert data[RAW_ITEM_ID][1] is not None


def test_id_from_unknown_column(write) -> None:
    path = write("c.csv", "title\nA\n")
    with pytest.raises(SchemaError, match=r"data\.catalog\.id_from names 'desc'"):
        read_source(SourceConfig(path=path, id_from=["title", "desc"]), "catalog")


def test_missing_required_column_explains_and_suggests_mapping(write) -> None:
    path = write("e.csv", "customer,product_code,when\nc,p,1\n")
    with pytest.raises(SchemaError) as caught:
        read_source(EventsConfig(path=path), "events")
    message = str(caught.value)
    assert "required column(s) raw_user_id, raw_item_id missing" in message
    assert "found columns: customer, product_code, when" in message
    assert "data.events.mapping: {" in message
    assert "product_code: raw_item_id" in message


def test_mapping_key_not_in_file(write) -> None:
    path = write("c.csv", "item_id,movie_title\n1,a\n")
    with pytest.raises(SchemaError, match=r"names column 'movie_titel'.*found columns: item_id"):
        read_source(SourceConfig(path=path, mapping={"movie_titel": TITLE}), "catalog")


def test_mapping_target_must_be_a_shelfwise_column(write) -> None:
    path = write("c.csv", "item_id,movie_title\n1,a\n")
    with pytest.raises(SchemaError, match=r"'titel', which is not a catalog column"):
        read_source(SourceConfig(path=path, mapping={"movie_title": "titel"}), "catalog")


def test_default_event_type_fills_a_missing_column(write) -> None:
    path = write("e.csv", "user_id,item_id,rating\nu,i,5\n")
    data, _ = read_source(EventsConfig(path=path, default_event_type="rating"), "events")
    assert data[EVENT_TYPE].to_list() == ["rating"]


def _context(config: ShelfwiseConfig, tmp_path: Path) -> StageContext:
    return StageContext(config=config, run_dir=tmp_path, inputs={}, out=tmp_path / "ingest")


def test_run_writes_configured_sources_and_counts(write, tmp_path: Path) -> None:
    events = write("e.csv", "user_id,item_id,junk\nu1,i1,x\nu2\n")
    catalog = write("c.csv", "item_id,title\ni1,Hat\n")
    config = load_config(
        overrides={"data.events": {"path": str(events)}, "data.catalog": {"path": str(catalog)}},
        environ={},
    )
    result = ingest.run(_context(config, tmp_path))
    out = tmp_path / "ingest"
    assert sorted(p.name for p in out.iterdir()) == [
        "catalog",
        "events",
        "ingest.json",
        "quarantine.parquet",
    ]
    assert [p.name for p in (out / "events").iterdir()] == ["part-000000.parquet"]
    assert result.row_counts == {
        "catalog_rows": 1,
        "catalog_parse_rejected": 0,
        "events_rows": 1,
        "events_parse_rejected": 1,
    }
    assert result.extra["ignored_columns"] == {"catalog": [], "events": ["junk"]}
    meta = json.loads((out / "ingest.json").read_text())
    assert meta["sources"]["events"]["timestamp_unit"] == "auto"
    assert pl.read_parquet(out / "quarantine.parquet")["source"].to_list() == ["events"]


def test_run_resolves_ordinal_time_for_sequence_files(write, tmp_path: Path) -> None:
    path = write("seq.txt", "u1 i1 i2\n")
    config = load_config(overrides={"data.events": {"path": str(path)}}, environ={})
    ingest.run(_context(config, tmp_path))
    meta = json.loads((tmp_path / "ingest" / "ingest.json").read_text())
    assert meta["sources"]["events"]["timestamp_unit"] == "ordinal"


def test_run_needs_events_or_queries(write, tmp_path: Path) -> None:
    catalog = write("c.csv", "item_id\ni1\n")
    config = load_config(overrides={"data.catalog": {"path": str(catalog)}}, environ={})
    with pytest.raises(EmptyDataError, match=r"configure data\.events .* or data\.queries"):
        ingest.run(_context(config, tmp_path))


@pytest.mark.parametrize(
    ("time_column", "chosen_by"),
    [
        ("timeframe", "a known name for event times"),  # read as file order before
        ("created_at", "a known name for event times"),
        ("order_time_utc", "its name looks like a time"),
        ("clicked_at", "its name looks like a time"),
        ("timestamp", "its name"),
    ],
)
def test_time_columns_are_recognised_and_reported(
    write, tmp_path: Path, time_column: str, chosen_by: str
) -> None:
    events = write("e.csv", f"visitorid,itemid,{time_column}\nu1,i1,1433221332117\n")
    config = load_config(overrides={"data.events": {"path": str(events)}}, environ={})
    ingest.run(_context(config, tmp_path))
    meta = json.loads((tmp_path / "ingest" / "ingest.json").read_text())["sources"]["events"]
    assert meta["timestamp_column"] == time_column
    assert meta["timestamp_chosen_by"].startswith(chosen_by)
    data, _ = read_source(EventsConfig(path=events), "events")
    assert data[TIMESTAMP].to_list() == ["1433221332117"]


def test_a_mapped_time_column_wins_and_none_is_reported_when_absent(write, tmp_path: Path) -> None:
    events = write("e.csv", "user_id,item_id,when,time\nu1,i1,5,6\n")
    source = {"path": str(events), "mapping": {"when": "timestamp"}}
    config = load_config(overrides={"data.events": source}, environ={})
    ingest.run(_context(config, tmp_path))
    meta = json.loads((tmp_path / "ingest" / "ingest.json").read_text())["sources"]["events"]
    assert (meta["timestamp_column"], meta["timestamp_chosen_by"]) == (
        "when",
        "named in data.events.mapping",
    )
    bare = write("b.csv", "user_id,item_id\nu1,i1\n")
    config = load_config(overrides={"data.events": {"path": str(bare)}}, environ={})
    ingest.run(_context(config, tmp_path / "other"))
    meta = json.loads((tmp_path / "other" / "ingest" / "ingest.json").read_text())
    assert meta["sources"]["events"]["timestamp_column"] is None


def test_small_batches_split_a_source_into_parts(write, tmp_path: Path) -> None:
    rows = "".join(f"u{n},i{n}\n" for n in range(10))
    events = write("e.csv", "user_id,item_id\n" + rows)
    config = load_config(
        overrides={"data.events": {"path": str(events)}, "data.batch_rows": 3}, environ={}
    )
    result = ingest.run(_context(config, tmp_path))
    parts = sorted((tmp_path / "ingest" / "events").iterdir())
    assert [p.name for p in parts] == [f"part-00000{n}.parquet" for n in range(4)]
    assert [pl.read_parquet(p).height for p in parts] == [3, 3, 3, 1]
    assert pl.concat([pl.read_parquet(p) for p in parts])["row_number"].to_list() == list(
        range(1, 11)
    )
    assert result.row_counts["events_rows"] == 10
