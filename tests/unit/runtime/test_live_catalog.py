"""The live catalog over an engine: stock, hiding, deletes and new items, no retraining.

Each test loads its own engine (the session's engine is shared and must stay as built).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from shelfwise.errors import UnknownItemError
from shelfwise.runtime import Engine, load_engine
from shelfwise.runtime.catalog import Filters
from shelfwise.runtime.live_catalog import LiveCatalog
from shelfwise.stores.catalog_log import CatalogChange

EARBUDS = {
    "title": "小米 无线蓝牙耳机",
    "category": "electronics",
    "brand": "Xiaomi",
    "price": 199.0,
    "in_stock": True,
}


@pytest.fixture
def live_engine(bundle_path: Path) -> tuple[Engine, LiveCatalog]:
    engine = load_engine(bundle_path, verify=False)
    live = LiveCatalog()
    engine.attach_live(live)
    return engine, live


def _ids(items: list) -> list[str]:  # type: ignore[type-arg]
    return [item.raw_item_id for item in items]


def _upsert(raw: str, version: int, **fields: object) -> CatalogChange:
    return CatalogChange("upsert", raw, fields, version, "test")


def test_a_sold_out_item_leaves_in_stock_lists_at_once(
    live_engine: tuple[Engine, LiveCatalog],
) -> None:
    engine, live = live_engine
    in_stock = Filters(in_stock=True)
    assert "sku-headphones" in _ids(engine.search("耳机", 5, in_stock).items)
    assert "sku-phone" in _ids(engine.recommend(None, 8, filters=in_stock).items)
    live.apply([_upsert("sku-headphones", 1, in_stock=False), _upsert("sku-phone", 1, price=1.0)])
    assert "sku-headphones" not in _ids(engine.search("耳机", 5, in_stock).items)
    listed = {i.raw_item_id: i for i in engine.recommend(None, 8, filters=in_stock).items}
    assert "sku-headphones" not in listed
    assert listed["sku-phone"].price == 1.0  # display fields follow the update
    assert "sku-phone" in _ids(engine.recommend(None, 8, filters=Filters(price_max=2.0)).items)


def test_hidden_and_deleted_items_leave_every_endpoint(
    live_engine: tuple[Engine, LiveCatalog],
) -> None:
    engine, live = live_engine
    live.apply([_upsert("sku-mouse", 1, hidden=True), CatalogChange("delete", "sku-phone", {}, 2)])
    for gone in ("sku-mouse", "sku-phone"):
        assert gone not in _ids(engine.recommend("u2", 8).items)
        assert gone not in _ids(engine.recommend(None, 8).items)
        assert gone not in _ids(engine.similar("sku-laptop", 7).items)
        with pytest.raises(UnknownItemError, match=gone):
            engine.similar(gone, 3)
    assert "sku-mouse" not in _ids(engine.search("Wireless Mouse", 5).items)
    live.apply([_upsert("sku-mouse", 3, hidden=False)])
    assert "sku-mouse" in _ids(engine.search("Wireless Mouse", 5).items)


def test_a_new_chinese_product_is_searchable_similar_and_recommended(
    live_engine: tuple[Engine, LiveCatalog],
) -> None:
    engine, live = live_engine
    live.apply([_upsert("sku-earbuds", 1, **EARBUDS)])
    assert "sku-earbuds" in _ids(engine.search("蓝牙", 5).items)
    assert "sku-earbuds" in _ids(engine.search("耳机", 5).items)
    assert "sku-earbuds" not in _ids(engine.search("耳机", 5, Filters(category="grocery")).items)
    assert "sku-earbuds" in _ids(engine.similar("sku-headphones", 5).items)
    own = engine.similar("sku-earbuds", 3)
    # the bundle's BM25 over the new title: 耳机 (headphones), 无线 (wireless mouse)
    assert set(_ids(own.items)[:2]) == {"sku-headphones", "sku-mouse"}
    assert {item.category for item in own.items} == {"electronics"}
    assert "sku-earbuds" not in _ids(own.items)
    # u1 bought headphones and a wireless mouse: the content model lists the earbuds
    assert "sku-earbuds" in _ids(engine.recommend("u1", 5).items)
    # u3 and u4 bought tea, coffee and a book: nothing like earbuds
    assert "sku-earbuds" not in _ids(engine.recommend("u3", 5).items)


def test_changes_merge_the_same_in_any_order(bundle_path: Path) -> None:
    changes = [
        _upsert("sku-tea", 3, price=10.0),
        _upsert("sku-tea", 1, price=99.0, title="Old tea"),
        CatalogChange("delete", "sku-new", {}, 5),
        _upsert("sku-new", 4, **EARBUDS),
    ]
    answers = []
    for order in (changes, changes[::-1], changes + changes):
        engine = load_engine(bundle_path, verify=False)
        live = LiveCatalog()
        engine.attach_live(live)
        for change in order:
            live.apply([change])
        tea = next(i for i in engine.recommend(None, 8).items if i.raw_item_id == "sku-tea")
        answers.append((tea.title, tea.price, _ids(engine.search("耳机", 5).items)))
    assert answers[0] == answers[1] == answers[2] == ("Old tea", 10.0, ["sku-headphones"])


def test_a_bundle_newer_than_a_change_keeps_its_own_data(
    live_engine: tuple[Engine, LiveCatalog], bundle_path: Path
) -> None:
    _, live = live_engine
    live.apply([_upsert("sku-tea", 1_000_000_000, price=1.0), _upsert("sku-new", 1, **EARBUDS)])
    newer = load_engine(bundle_path, verify=False)
    newer.catalog.overrides = None
    live.attach(newer.catalog, search_index=None, cutoff_s=2.0)  # cutoff after both changes
    tea = next(i for i in newer.recommend(None, 8).items if i.raw_item_id == "sku-tea")
    assert tea.price == 128.0  # the bundle's own price: it was trained after the change
    assert "sku-new" in _ids(newer.search("耳机", 5).items)  # still unknown to it
    live.detach()
    assert newer.catalog.overrides is None


def test_attaching_a_chinese_catalog_loads_its_tokenizer_before_any_update(
    bundle_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the first Chinese text loads jieba's dictionary (seconds, holding the GIL): the
    # first update then stalled the server (benchmarks/RESULTS.md, "sold-out items")
    tokenizer = importlib.import_module("shelfwise.text.tokenize")  # the module, not the function

    monkeypatch.setattr(tokenizer, "_jieba", None)
    engine = load_engine(bundle_path, verify=False)
    engine.attach_live(LiveCatalog(hide_out_of_stock=True))
    assert tokenizer._jieba is not None
    assert engine.catalog.hide_out_of_stock is True
