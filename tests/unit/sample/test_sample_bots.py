"""`generate_shop(bots=...)`: labelled fake users on top of the shop (issue 15)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from shelfwise.contracts import EVENT_TYPE, RAW_USER_ID, TIMESTAMP
from shelfwise.sample import generate_shop
from shelfwise.sample._bots import BOT_KIND, RING

SIZE = {"users": 200, "items": 100, "events": 4000}


def test_bots_are_labelled_and_hold_their_share(tmp_path: Path) -> None:
    shop = generate_shop(tmp_path, bots=0.1, **SIZE)
    events = pl.read_parquet(shop.events_path)
    assert shop.bots_path is not None
    truth = pl.read_parquet(shop.bots_path)
    assert set(truth[BOT_KIND].unique()) == {"scraper", "click-farm", "fake-order-ring"}
    assert shop.n_bot_users == truth.height
    fake = events.filter(pl.col(RAW_USER_ID).is_in(truth[RAW_USER_ID].implode()))
    assert fake.height / events.height == pytest.approx(0.1, abs=0.01)
    assert events[TIMESTAMP].is_sorted()
    # Every labelled user has events; ring members buy, and share the ring's product.
    assert set(fake[RAW_USER_ID].unique()) == set(truth[RAW_USER_ID])
    rings = fake.join(truth, on=RAW_USER_ID).filter(pl.col(RING).is_not_null())
    assert (
        rings.filter(pl.col(EVENT_TYPE) == "purchase")
        .group_by(RING)
        .agg(pl.col("raw_item_id").n_unique())["raw_item_id"]
        .max()
        == 1
    )


def test_no_bots_writes_the_same_shop(tmp_path: Path) -> None:
    plain = generate_shop(tmp_path / "a", **SIZE)
    zero = generate_shop(tmp_path / "b", bots=0.0, **SIZE)
    assert zero.bots_path is None
    assert not (tmp_path / "b" / "bots.parquet").exists()
    assert pl.read_parquet(plain.events_path).equals(pl.read_parquet(zero.events_path))


def test_a_bad_share_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"bots must be a share in \[0, 1\), got 1.5"):
        generate_shop(tmp_path, bots=1.5, **SIZE)


@pytest.mark.parametrize("file_format", ["parquet", "csv"])
def test_bots_reach_a_shop_written_day_by_day(tmp_path: Path, file_format: str) -> None:
    # a large shop is simulated in pieces and written a day at a time (issue 13); its
    # fake users' events are merged into their days, in time order, with the truth file
    shop = generate_shop(
        tmp_path,
        bots=0.1,
        sessions_per_chunk=100,
        file_format=file_format,  # type: ignore[arg-type]
        **SIZE,  # type: ignore[arg-type]
    )
    read = pl.read_parquet if file_format == "parquet" else pl.read_csv
    events = read(shop.events_path)
    assert shop.bots_path is not None
    truth = read(shop.bots_path)
    assert shop.n_events == events.height
    assert shop.n_bot_users == truth.height
    assert events[TIMESTAMP].is_sorted()
    fake = events.filter(pl.col(RAW_USER_ID).is_in(truth[RAW_USER_ID].implode()))
    assert set(fake[RAW_USER_ID].unique()) == set(truth[RAW_USER_ID])
    assert fake.height / events.height == pytest.approx(0.1, abs=0.01)
    assert set(truth[BOT_KIND].unique()) == {"scraper", "click-farm", "fake-order-ring"}
