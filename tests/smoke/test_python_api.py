"""The README's Python example: `shelfwise.run`, then `shelfwise.load_bundle(...).recommend`."""

from __future__ import annotations

import polars as pl
import pytest

import shelfwise
from shelfwise.config import ShelfwiseConfig
from shelfwise.errors import BundleNotFoundError
from shelfwise.sample import ShopSummary


def test_run_then_load_bundle_then_recommend(
    tiny_shop: ShopSummary, tiny_config: ShelfwiseConfig
) -> None:
    outcome = shelfwise.run(tiny_config)
    assert outcome.bundle_version == 1
    assert outcome.bundle_path is not None

    engine = shelfwise.load_bundle(outcome.bundle_path)
    user = pl.read_parquet(tiny_shop.events_path)["raw_user_id"][0]
    items = engine.recommend(user, k=5).items
    assert len(items) == 5
    assert engine.search("laptop", k=3).items
    assert engine.similar(items[0].raw_item_id, k=3).items

    # the same version, by number and by alias, through the registry the config names
    for label in (1, "1", "champion"):
        by_label = shelfwise.load_bundle(label, config=tiny_config)
        assert by_label.manifest.fingerprint == engine.manifest.fingerprint
        assert [i.raw_item_id for i in by_label.recommend(user, k=5).items] == [
            i.raw_item_id for i in items
        ]
    with pytest.raises(BundleNotFoundError, match="no challenger"):
        shelfwise.load_bundle("challenger", config=tiny_config)
