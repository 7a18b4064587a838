"""Tests of the built-in sample shop generator."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import polars as pl
import pytest

import shelfwise.sample
from shelfwise.contracts import (
    ATTRIBUTES,
    CATALOG_SCHEMA,
    CATEGORY,
    EVENT_SCHEMA,
    EVENT_TYPE,
    PRICE,
    QUERY,
    QUERY_SCHEMA,
    RAW_ITEM_ID,
    RAW_USER_ID,
    RELEVANCE,
    SESSION_ID,
    SPLIT,
    TIMESTAMP,
    TITLE,
    VALUE,
    EventType,
)
from shelfwise.sample import ShopSummary, generate_shop
from shelfwise.sample.generator import WINDOW_DAYS, window_end

SIZE = {"users": 300, "items": 200, "events": 6000}
CJK = re.compile(r"[\u4e00-\u9fff]")
# A raw event file carries no split assignment (that column is optional input).
RAW_EVENT_SCHEMA = {name: dtype for name, dtype in EVENT_SCHEMA.items() if name != SPLIT}
SCHEMAS = {"catalog": CATALOG_SCHEMA, "events": RAW_EVENT_SCHEMA, "queries": QUERY_SCHEMA}


def _read(summary: ShopSummary) -> dict[str, pl.DataFrame]:
    paths = {
        "catalog": summary.catalog_path,
        "events": summary.events_path,
        "queries": summary.queries_path,
    }
    frames = {}
    for name, path in paths.items():
        schema = SCHEMAS[name]
        if path.suffix == ".parquet":
            frames[name] = pl.read_parquet(path)
        elif path.suffix == ".csv":
            frames[name] = pl.read_csv(path, schema=schema)
        else:
            frames[name] = pl.read_ndjson(path, schema=schema)
    return frames


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> ShopSummary:
    return generate_shop(tmp_path_factory.mktemp("shop"), seed=7, **SIZE)


@pytest.fixture(scope="module")
def frames(shop: ShopSummary) -> dict[str, pl.DataFrame]:
    return _read(shop)


def test_public_names_match_all() -> None:
    public = {
        name
        for name, value in vars(shelfwise.sample).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    public -= {"annotations"}
    assert sorted(shelfwise.sample.__all__) == sorted(public)
    assert shelfwise.sample.__all__ == sorted(shelfwise.sample.__all__)


def test_same_seed_writes_identical_files(tmp_path: Path, shop: ShopSummary) -> None:
    again = generate_shop(tmp_path, seed=7, **SIZE)
    for first, second in (
        (shop.catalog_path, again.catalog_path),
        (shop.events_path, again.events_path),
        (shop.queries_path, again.queries_path),
    ):
        assert first.read_bytes() == second.read_bytes()
    for field in vars(shop):
        if not field.endswith("_path"):
            assert getattr(again, field) == getattr(shop, field), field


def test_different_seed_differs(tmp_path: Path, frames: dict[str, pl.DataFrame]) -> None:
    other = _read(generate_shop(tmp_path, seed=8, **SIZE))
    for name in ("catalog", "events", "queries"):
        assert not other[name].equals(frames[name])


def test_catalog_does_not_depend_on_users_or_events(
    tmp_path: Path, frames: dict[str, pl.DataFrame]
) -> None:
    other = _read(generate_shop(tmp_path, seed=7, users=50, items=200, events=500))
    assert other["catalog"].equals(frames["catalog"])


@pytest.mark.parametrize("name", ["catalog", "events", "queries"])
def test_schema_matches_contracts(frames: dict[str, pl.DataFrame], name: str) -> None:
    assert frames[name].schema == pl.Schema(SCHEMAS[name])


def test_catalog_values(frames: dict[str, pl.DataFrame]) -> None:
    catalog = frames["catalog"]
    assert catalog.height == SIZE["items"]
    assert catalog[RAW_ITEM_ID].is_unique().all()
    assert catalog[RAW_ITEM_ID].str.contains(r"^SKU\d{5}$").all()
    assert (catalog[PRICE] > 0).all()
    assert catalog.null_count().sum_horizontal().item() == 0
    for text in catalog[ATTRIBUTES]:
        assert isinstance(json.loads(text), dict)
    assert catalog[CATEGORY].n_unique() >= 20


def test_catalog_is_bilingual(frames: dict[str, pl.DataFrame]) -> None:
    titles = frames["catalog"][TITLE].to_list()
    has_cjk = [bool(CJK.search(t)) for t in titles]
    has_latin = [bool(re.search("[A-Za-z]", t)) for t in titles]
    assert sum(has_cjk) > 0.3 * len(titles)
    assert sum(not c for c in has_cjk) > 0.05 * len(titles)  # English-only titles
    assert sum(c and latin for c, latin in zip(has_cjk, has_latin, strict=True)) > 0


def test_event_values(frames: dict[str, pl.DataFrame], shop: ShopSummary) -> None:
    events = frames["events"]
    kinds = set(events[EVENT_TYPE].unique())
    assert kinds <= {e.value for e in EventType}
    assert EventType.SEARCH.value not in kinds
    assert events[RAW_USER_ID].str.contains(r"^U\d{6}$").all()
    assert events[SESSION_ID].str.contains(r"^S\d{7}$").all()
    assert events[RAW_ITEM_ID].null_count() == 0
    end = window_end(7)
    assert events[TIMESTAMP].min() >= end - WINDOW_DAYS * 86_400
    assert events[TIMESTAMP].max() <= end + 86_400
    by_kind = {k: events.filter(pl.col(EVENT_TYPE) == k) for k in kinds}
    assert by_kind[EventType.VIEW.value][QUERY].null_count() == by_kind[EventType.VIEW.value].height
    assert by_kind[EventType.CLICK.value][QUERY].null_count() == 0
    purchases = by_kind[EventType.PURCHASE.value]
    assert purchases[VALUE].null_count() == 0
    assert (purchases[VALUE] > 0).all()
    assert shop.n_users == events[RAW_USER_ID].n_unique()


@pytest.mark.parametrize("events", [1000, 6000, 25_000])
def test_event_count_within_five_percent(tmp_path: Path, events: int) -> None:
    summary = generate_shop(tmp_path, users=200, items=150, events=events, seed=3)
    height = pl.read_parquet(summary.events_path).height
    assert summary.n_events == height
    assert abs(height - events) <= 0.05 * events


def test_referential_integrity(frames: dict[str, pl.DataFrame]) -> None:
    items = set(frames["catalog"][RAW_ITEM_ID])
    assert set(frames["events"][RAW_ITEM_ID]) <= items
    assert set(frames["queries"][RAW_ITEM_ID]) <= items


def test_timestamps_ordered_within_sessions(frames: dict[str, pl.DataFrame]) -> None:
    events = frames["events"]
    steps = events.select(pl.col(TIMESTAMP).diff().over(SESSION_ID).alias("step"))["step"]
    assert (steps.drop_nulls() >= 0).all()
    one_user = events.group_by(SESSION_ID).agg(pl.col(RAW_USER_ID).n_unique().alias("users"))
    assert (one_user["users"] == 1).all()


def test_funnel(frames: dict[str, pl.DataFrame]) -> None:
    counts = dict(frames["events"][EVENT_TYPE].value_counts().iter_rows())
    views, carts, purchases = (counts[k] for k in ("view", "cart", "purchase"))
    assert purchases < carts < views
    engaged = views + counts["click"]
    assert 0.05 < carts / engaged < 0.2
    assert 0.15 < purchases / carts < 0.5


def test_labelled_queries(frames: dict[str, pl.DataFrame], shop: ShopSummary) -> None:
    queries = frames["queries"]
    assert shop.n_queries == queries[QUERY].n_unique()
    assert 100 <= shop.n_queries <= 300
    assert set(queries[RELEVANCE].unique()) == {0.0, 1.0, 2.0, 3.0}
    judged = queries.group_by(QUERY).len()["len"]
    assert judged.min() >= 20
    assert judged.max() <= 40
    assert queries.select(pl.struct(QUERY, RAW_ITEM_ID).is_unique().all()).item()
    # Every item graded 2 or 3 for a query lies in one category.
    relevant = queries.filter(pl.col(RELEVANCE) >= 2).join(
        frames["catalog"].select(RAW_ITEM_ID, CATEGORY), on=RAW_ITEM_ID
    )
    assert (relevant.group_by(QUERY).agg(pl.col(CATEGORY).n_unique())[CATEGORY] == 1).all()
    texts = queries[QUERY].unique().to_list()
    assert any(CJK.search(t) for t in texts)
    assert any(t.isascii() for t in texts)


def test_search_clicks_follow_relevance(frames: dict[str, pl.DataFrame]) -> None:
    clicks = frames["events"].filter(pl.col(QUERY).is_not_null())
    clicks = clicks.join(frames["catalog"].select(RAW_ITEM_ID, CATEGORY), on=RAW_ITEM_ID)
    per_query = clicks.group_by(QUERY, CATEGORY).len().sort("len", descending=True)
    top = per_query.group_by(QUERY, maintain_order=True).first()["len"].sum()
    assert top / clicks.height > 0.8


def test_users_have_concentrated_tastes(frames: dict[str, pl.DataFrame]) -> None:
    events = frames["events"].join(frames["catalog"].select(RAW_ITEM_ID, CATEGORY), on=RAW_ITEM_ID)
    shares = (
        events.group_by(RAW_USER_ID, CATEGORY)
        .len()
        .with_columns((pl.col("len") / pl.col("len").sum().over(RAW_USER_ID)).alias("share"))
        .group_by(RAW_USER_ID)
        .agg(pl.col("share").max())
    )
    assert shares["share"].mean() > 0.35


def test_examples(frames: dict[str, pl.DataFrame], shop: ShopSummary) -> None:
    assert shop.example_user_id in set(frames["events"][RAW_USER_ID])
    labelled = set(frames["queries"][QUERY])
    assert shop.example_query_en in labelled
    assert shop.example_query_en.isascii()
    assert shop.example_query_zh in labelled
    assert CJK.search(shop.example_query_zh)


@pytest.mark.parametrize("file_format", ["csv", "jsonl"])
def test_text_formats_hold_the_same_data(
    tmp_path: Path, frames: dict[str, pl.DataFrame], file_format: str
) -> None:
    summary = generate_shop(tmp_path, seed=7, file_format=file_format, **SIZE)  # type: ignore[arg-type]
    assert summary.events_path.name == f"events.{file_format}"
    for name, frame in _read(summary).items():
        assert frame.equals(frames[name]), name


def test_creates_missing_folder(tmp_path: Path) -> None:
    summary = generate_shop(tmp_path / "a" / "b", users=5, items=10, events=100)
    assert summary.catalog_path.parent == tmp_path / "a" / "b"
    assert summary.catalog_path.exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"users": 0}, "users must be at least 1"),
        ({"events": 0}, "events must be at least 1"),
        ({"seed": -1}, "seed must be >= 0"),
        ({"file_format": "xlsx"}, "file_format must be"),
    ],
)
def test_invalid_arguments(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_shop(tmp_path, **kwargs)  # type: ignore[arg-type]


@pytest.mark.slow
def test_one_million_events(tmp_path: Path) -> None:
    # Speed is measured in benchmarks/pipeline.py (shop-1m), never asserted here.
    summary = generate_shop(tmp_path, users=20_000, items=10_000, events=1_000_000)
    assert abs(summary.n_events - 1_000_000) <= 50_000


# --- large shops: simulated and written in pieces (issue 13, "the generator streams") --


@pytest.fixture(scope="module")
def pieces(tmp_path_factory: pytest.TempPathFactory) -> ShopSummary:
    # 400 sessions a piece: 5 pieces for this shop (30M events take ~24 by default)
    return generate_shop(tmp_path_factory.mktemp("pieces"), seed=7, sessions_per_chunk=400, **SIZE)


def test_pieces_write_exactly_the_events_asked_for_in_time_order(pieces: ShopSummary) -> None:
    events = pl.read_parquet(pieces.events_path)
    assert pieces.n_events == events.height == SIZE["events"]
    assert events.schema == pl.Schema(RAW_EVENT_SCHEMA)
    assert events[TIMESTAMP].is_sorted()
    assert events[SESSION_ID].str.contains(r"^S\d{7}$").all()
    assert pieces.n_users == events[RAW_USER_ID].n_unique()
    assert pieces.example_user_id in set(events[RAW_USER_ID])
    assert not list(pieces.events_path.parent.glob("shelfwise-shop-*"))  # spill removed


def test_pieces_keep_the_shop_realistic(
    pieces: ShopSummary, frames: dict[str, pl.DataFrame]
) -> None:
    events = pl.read_parquet(pieces.events_path)
    counts = dict(events[EVENT_TYPE].value_counts().iter_rows())
    assert counts["purchase"] < counts["cart"] < counts["view"]
    assert pl.read_parquet(pieces.catalog_path).equals(frames["catalog"])
    steps = events.select(pl.col(TIMESTAMP).diff().over(SESSION_ID).alias("step"))["step"]
    assert (steps.drop_nulls() >= 0).all()


@pytest.mark.parametrize("file_format", ["csv", "jsonl"])
def test_pieces_are_deterministic_and_alike_in_every_format(
    tmp_path: Path, pieces: ShopSummary, file_format: str
) -> None:
    again = generate_shop(
        tmp_path,
        seed=7,
        sessions_per_chunk=400,
        file_format=file_format,
        **SIZE,  # type: ignore[arg-type]
    )
    assert _read(again)["events"].equals(pl.read_parquet(pieces.events_path))
    assert again.example_user_id == pieces.example_user_id
