"""The grocery domain: orders of 5-30 items, staples bought again on their own cycles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from shelfwise.contracts import EVENT_TYPE, RAW_ITEM_ID, RAW_USER_ID, SESSION_ID, TIMESTAMP
from shelfwise.sample.grocery import generate_grocery

DAY = 86_400


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    folder = tmp_path_factory.mktemp("grocery")
    summary = generate_grocery(folder, users=60, items=120, seed=3)
    events = pl.read_parquet(summary.events_path)
    assert summary.n_events == events.height
    assert pl.read_parquet(summary.catalog_path).height == 120
    return events


def test_orders_are_purchases_of_5_to_30_distinct_items(shop: pl.DataFrame) -> None:
    assert shop[EVENT_TYPE].unique().to_list() == ["purchase"]
    orders = shop.group_by(SESSION_ID).agg(
        pl.len().alias("size"),
        pl.col(RAW_ITEM_ID).n_unique().alias("distinct"),
        pl.col(RAW_USER_ID).n_unique().alias("users"),
        (pl.col(TIMESTAMP).max() - pl.col(TIMESTAMP).min()).alias("span"),
    )
    assert orders["size"].min() >= 5
    assert orders["size"].max() <= 30
    assert (orders["size"] == orders["distinct"]).all()
    assert (orders["users"] == 1).all()
    assert orders["span"].max() < 3600  # one trip


def test_most_of_a_basket_was_bought_before(shop: pl.DataFrame) -> None:
    ordered = shop.sort(TIMESTAMP)
    first = ordered.group_by(RAW_USER_ID, RAW_ITEM_ID).agg(pl.col(SESSION_ID).first())
    repeat = ordered.join(first, on=[RAW_USER_ID, RAW_ITEM_ID], suffix="_first").with_columns(
        (pl.col(SESSION_ID) != pl.col(f"{SESSION_ID}_first")).alias("repeat")
    )
    late = repeat.filter(pl.col(TIMESTAMP) > pl.col(TIMESTAMP).min() + 60 * DAY)
    assert 0.5 < late["repeat"].mean() < 0.95  # mostly repeats, some exploration


def test_staples_come_back_on_item_specific_cycles(shop: pl.DataFrame) -> None:
    gaps = (
        shop.sort(TIMESTAMP)
        .group_by(RAW_USER_ID, RAW_ITEM_ID)
        .agg(pl.col(TIMESTAMP).diff().drop_nulls().alias("gap"))
        .explode("gap")
        .drop_nulls()
    )
    days = gaps["gap"].to_numpy() / DAY
    assert np.median(days) > 5  # bought again after days, not within an order
    assert np.median(days) < 40  # weekly to monthly
    per_item = gaps.group_by(RAW_ITEM_ID).agg(pl.col("gap").median() / DAY).drop_nulls()
    assert per_item["gap"].std() > 2  # cycles differ by item


def test_same_seed_same_shop(tmp_path: Path) -> None:
    one = generate_grocery(tmp_path / "a", users=5, items=40, seed=9)
    two = generate_grocery(tmp_path / "b", users=5, items=40, seed=9)
    assert pl.read_parquet(one.events_path).equals(pl.read_parquet(two.events_path))
    with pytest.raises(ValueError, match="items"):
        generate_grocery(tmp_path / "c", users=5, items=3)
