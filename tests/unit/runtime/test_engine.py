"""The engine over the tiny bundle: answers worked out by hand in conftest.py."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from shelfwise.errors import IntegrityError, RequestError, UnknownItemError
from shelfwise.registry.local import BundleStore
from shelfwise.runtime import Engine, Filters, ScoredItem, load_engine

if TYPE_CHECKING:
    from tests.unit.conftest import ShopFacts


def ids(items: list[ScoredItem]) -> list[str]:
    return [item.raw_item_id for item in items]


def test_id_maps_and_version(engine: Engine) -> None:
    assert engine.catalog.index["sku-tea"] == 3
    assert engine.user_index["u-empty"] == 5
    assert engine.version == engine.manifest.fingerprint[:12]


def test_known_user_gets_unseen_items_first_from_the_recommender(
    facts: ShopFacts, engine: Engine
) -> None:
    result = engine.recommend("u1", 5)
    assert len(result.items) == 5
    assert not set(ids(result.items)) & set(facts.history["u1"])
    assert ids(result.items)[0] == "sku-phone"  # co-occurs with all of u1's items
    assert result.fallback is None


def test_short_personal_list_is_filled_from_popular_without_duplicates(engine: Engine) -> None:
    result = engine.recommend("u1", 5)
    # Only sku-phone scores > 0; the rest are popular items u1 has not seen.
    assert ids(result.items) == ["sku-phone", "sku-tea", "sku-book", "sku-coffee", "sku-lamp"]
    assert result.fallback_reason == "partial-fill"
    assert len(set(ids(result.items))) == 5


def test_exclude_seen_can_be_turned_off(facts: ShopFacts, engine: Engine) -> None:
    result = engine.recommend("u1", 3, exclude_seen=False)
    assert set(ids(result.items)) & set(facts.history["u1"])


@pytest.mark.parametrize(
    ("user", "reason"),
    [("nobody", "unknown-user"), (None, "anonymous-user"), ("u-empty", "no-history")],
)
def test_users_without_history_get_popular(
    facts: ShopFacts, engine: Engine, user: str | None, reason: str
) -> None:
    result = engine.recommend(user, 3)
    assert ids(result.items) == facts.popular_order[:3]
    assert (result.fallback, result.fallback_reason) == ("popular", reason)


def test_exclude_and_filters(engine: Engine) -> None:
    result = engine.recommend("nobody", 10, exclude=["sku-phone", "not-an-item"])
    assert "sku-phone" not in ids(result.items)
    grocery = engine.recommend("nobody", 10, filters=Filters(category=["Grocery", "books"]))
    assert ids(grocery.items) == ["sku-tea", "sku-book", "sku-coffee"]
    cheap = engine.recommend("nobody", 10, filters=Filters(price_max=200, in_stock=True))
    # coffee is out of stock; the lamp's stock is unknown and counts as available.
    assert ids(cheap.items) == ["sku-mouse", "sku-tea", "sku-book", "sku-lamp"]
    ranged = engine.recommend("u1", 10, filters=Filters(price_min=1000, brand="apple"))
    assert ids(ranged.items) == ["sku-phone"]


def test_k_is_respected_and_checked(facts: ShopFacts, engine: Engine) -> None:
    for k in (1, 2, 8, 50):
        assert len(engine.recommend("u2", k).items) == min(k, 8 - len(facts.history["u2"]))
    with pytest.raises(RequestError, match="k must be at least 1"):
        engine.recommend("u1", 0)


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("笔记本电脑", "sku-laptop"),
        ("laptop thinkpad", "sku-laptop"),
        ("coffee", "sku-coffee"),
        ("降噪耳机", "sku-headphones"),
        ("green tea", "sku-tea"),
    ],
)
def test_search_ranks_the_right_item_first(engine: Engine, query: str, first: str) -> None:
    result = engine.search(query, 3)
    assert ids(result.items)[0] == first
    assert all(item.score > 0 for item in result.items)
    assert result.hint is None


def test_search_without_match_gives_a_hint(engine: Engine) -> None:
    result = engine.search("xyzzy", 5)
    assert result.items == []
    assert result.hint is not None
    assert "xyzzy" in result.hint
    filtered = engine.search("coffee", 5, filters=Filters(in_stock=True))
    assert filtered.items == []
    assert filtered.hint is not None
    assert "filters" in filtered.hint
    assert engine.search("   ", 5).hint is not None


def test_similar_items(engine: Engine) -> None:
    result = engine.similar("sku-laptop", 3)
    assert ids(result.items) == ["sku-mouse", "sku-headphones", "sku-phone"]
    assert result.fallback is None


def test_similar_without_neighbours_falls_back_to_popular(facts: ShopFacts, engine: Engine) -> None:
    result = engine.similar("sku-lamp", 2)
    assert ids(result.items) == facts.popular_order[:2]
    assert (result.fallback, result.fallback_reason) == ("popular", "no-neighbours")


def test_similar_unknown_item(engine: Engine) -> None:
    with pytest.raises(UnknownItemError, match="sku-nope"):
        engine.similar("sku-nope", 3)


def test_bundle_without_similar_or_search(facts: ShopFacts, tmp_path: Path) -> None:
    engine = load_engine(facts.build_bundle(tmp_path, with_similar=False, with_search=False))
    result = engine.similar("sku-tea", 2)
    # Same category first (grocery: tea, coffee), the item itself left out.
    assert ids(result.items) == ["sku-coffee", "sku-phone"]
    assert (result.fallback, result.fallback_reason) == ("popular", "no-similar")
    assert not engine.has_search
    assert engine.search("tea", 3).hint is not None


def test_load_refuses_a_tampered_bundle(bundle_path: Path, tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(bundle_path, copy)
    (copy / "items.parquet").write_bytes(b"not parquet")
    with pytest.raises(IntegrityError, match=r"items\.parquet"):
        load_engine(copy)


def test_load_from_a_store_serves_the_latest_version(bundle_path: Path, tmp_path: Path) -> None:
    info = BundleStore(tmp_path).publish(bundle_path)
    engine = load_engine(tmp_path)
    assert engine.version == str(info.version)
    assert engine.path == info.path


def test_recommend_from_history_scores_like_the_user_and_honours_exclusions(
    engine: Engine, facts: ShopFacts
) -> None:
    history = list(facts.history["u1"])
    stored = [item.raw_item_id for item in engine.recommend("u1", 3).items]
    given = engine.recommend_from_history(
        history, 3, weights=list(facts.history["u1"].values()), raw_user_id="u1"
    )
    assert [item.raw_item_id for item in given.items] == stored
    assert not set(history) & {item.raw_item_id for item in given.items}
    without = engine.recommend_from_history(history, 3, exclude=[stored[0]])
    assert stored[0] not in {item.raw_item_id for item in without.items}
    with pytest.raises(RequestError, match="weights"):
        engine.recommend_from_history(history, 3, weights=[1.0])
