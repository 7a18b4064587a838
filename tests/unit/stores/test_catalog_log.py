"""The catalog log: durable item changes, read back in order and folded for retraining."""

from __future__ import annotations

import stat
from pathlib import Path

import polars as pl

from shelfwise.config import ShelfwiseConfig
from shelfwise.stores.catalog_log import (
    CatalogChange,
    ChangeClock,
    append_changes,
    catalog_log_dir,
    catalog_overrides,
    merge_catalog_overrides,
    open_catalog_log,
    read_catalog_changes,
)


def _change(op: str, raw: str, version: int, **fields: object) -> CatalogChange:
    return CatalogChange(op, raw, fields, version, "test")  # type: ignore[arg-type]


def test_changes_are_written_owner_only_and_read_back_in_order(tmp_path: Path) -> None:
    log = open_catalog_log(tmp_path / "catalog")
    first = [_change("upsert", "sku-1", 1, title="小米 耳机", price=199.0)]
    second = [_change("delete", "sku-2", 2), _change("upsert", "sku-3", 3, hidden=True)]
    assert append_changes(log, first) == 1
    assert append_changes(log, second) == 2
    log.close()
    files = list((tmp_path / "catalog").rglob("catalog-*.jsonl"))
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert list(read_catalog_changes(tmp_path / "catalog")) == first + second


def test_lines_that_are_not_changes_are_skipped(tmp_path: Path) -> None:
    log = open_catalog_log(tmp_path)
    append_changes(log, [_change("upsert", "sku-1", 1, in_stock=False)])
    log.close()
    path = next(tmp_path.rglob("*.jsonl"))
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"op": "drop-table", "raw_item_id": "x", "version": 1}\n{"torn')
    assert [c.raw_item_id for c in read_catalog_changes(tmp_path)] == ["sku-1"]


def test_overrides_keep_the_latest_value_of_each_field(tmp_path: Path) -> None:
    log = open_catalog_log(tmp_path)
    append_changes(log, [_change("upsert", "sku-1", 5, price=10.0)])
    # an older change arriving later (another replica's) loses field by field
    append_changes(log, [_change("upsert", "sku-1", 3, price=99.0, title="Old title")])
    append_changes(log, [_change("delete", "sku-2", 4), _change("upsert", "sku-2", 2, title="x")])
    log.close()
    rows = {row["raw_item_id"]: row for row in catalog_overrides(tmp_path).to_dicts()}
    assert rows["sku-1"]["price"] == 10.0
    assert rows["sku-1"]["title"] == "Old title"
    assert rows["sku-1"]["deleted"] is False
    assert rows["sku-2"]["deleted"] is True


def test_the_clock_never_repeats_a_version() -> None:
    clock = ChangeClock()
    versions = [clock.next() for _ in range(1000)]
    assert versions == sorted(set(versions))


def test_the_log_lives_in_the_state_folder_unless_configured(tmp_path: Path) -> None:
    assert catalog_log_dir(ShelfwiseConfig(home=tmp_path)) == tmp_path / "catalog"
    config = ShelfwiseConfig.model_validate({"serve": {"catalog_log_dir": str(tmp_path / "x")}})
    assert catalog_log_dir(config) == tmp_path / "x"


def test_a_retrain_sees_the_catalog_the_server_served(tmp_path: Path) -> None:
    log = open_catalog_log(tmp_path)
    append_changes(
        log,
        [
            _change("upsert", "sku-a", 1, price=1.0),
            _change("upsert", "sku-new", 2, title="小米 耳机", category="electronics"),
            _change("delete", "sku-b", 3),
            _change("upsert", "sku-c", 4, hidden=True),
        ],
    )
    log.close()
    catalog = pl.DataFrame(
        {
            "raw_item_id": ["sku-a", "sku-b", "sku-c", "sku-d"],
            "title": ["A", "B", "C", "D"],
            "price": [10.0, 20.0, 30.0, 40.0],
        }
    )
    merged = merge_catalog_overrides(catalog, catalog_overrides(tmp_path))
    assert merged["raw_item_id"].to_list() == ["sku-a", "sku-d", "sku-new"]
    assert merged["price"].to_list() == [1.0, 40.0, None]
    assert merged["title"].to_list() == ["A", "D", "小米 耳机"]
    assert merged["category"].to_list() == [None, None, "electronics"]
