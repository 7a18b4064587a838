"""Live events weigh what the bundle's training weighed them (training/serving skew:
`runtime.realtime` used to hard-code the config's default weights).

Over the tiny bundle of tests/unit/conftest.py: a session of a laptop view, then a tea
purchase, is led by tea's neighbour (coffee) when a purchase weighs 5 (the default)
and by the laptop's neighbour (mouse) when it weighs 0.2.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl
import pytest

from shelfwise._internal.artifacts import read_csr
from shelfwise.config import ModelsConfig
from shelfwise.contracts import EventType
from shelfwise.package.bundle import BundleSpec, read_bundle_manifest, write_bundle
from shelfwise.runtime import Engine, live_recommend, load_engine
from shelfwise.stores import RecentEvent, UserState

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

LIGHT_PURCHASE = {
    EventType.VIEW: 1.0,
    EventType.CLICK: 1.0,
    EventType.CART: 3.0,
    EventType.PURCHASE: 0.2,
    EventType.RATING: 1.0,
    EventType.SEARCH: 0.0,
}
# newest first, as the online store lists them
VIEW_THEN_PURCHASE = UserState(
    recent=[
        RecentEvent("sku-tea", EventType.PURCHASE, 200),
        RecentEvent("sku-laptop", EventType.VIEW, 100),
    ],
    purchased=frozenset({"sku-tea"}),
)


def rebundle(source: Path, out: Path, event_weights: Mapping[EventType, float]) -> Path:
    """The source bundle's content and models, written again with `event_weights`."""
    manifest = read_bundle_manifest(source)
    write_bundle(
        BundleSpec(
            items=pl.read_parquet(source / "items.parquet"),
            users=pl.read_parquet(source / "users.parquet"),
            histories=read_csr(source / "histories.npz"),
            components={
                role: (name, source / "models" / name) for role, name in manifest.components.items()
            },
            project=manifest.project,
            event_weights=event_weights,
        ),
        out,
    )
    return out


@pytest.fixture(scope="module")
def light_purchase(bundle_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """The tiny bundle, trained (as its weights say) with a purchase weighing 0.2."""
    out = tmp_path_factory.mktemp("light-purchase") / "bundle"
    return load_engine(rebundle(bundle_path, out, LIGHT_PURCHASE))


def test_the_engine_serves_the_bundles_weights(light_purchase: Engine) -> None:
    assert light_purchase.event_weights == LIGHT_PURCHASE


def test_a_bundle_without_weights_gets_the_config_defaults(engine: Engine) -> None:
    assert not (engine.path / "event_weights.json").exists()
    assert engine.event_weights == ModelsConfig().event_weights


def test_types_the_bundle_leaves_out_weigh_nothing(bundle_path: Path, tmp_path: Path) -> None:
    only = {EventType.PURCHASE: 2.0, EventType.VIEW: 0.5}
    engine = load_engine(rebundle(bundle_path, tmp_path / "bundle", only))
    assert engine.event_weights == {kind: only.get(kind, 0.0) for kind in EventType}


def test_a_session_is_weighed_with_the_bundles_weights(
    engine: Engine, light_purchase: Engine
) -> None:
    default = live_recommend(engine, VIEW_THEN_PURCHASE, "newcomer", 3)
    light = live_recommend(light_purchase, VIEW_THEN_PURCHASE, "newcomer", 3)
    assert default.personalisation == light.personalisation == "session"
    assert default.items[0].raw_item_id == "sku-coffee"  # the purchase weighs 5
    assert light.items[0].raw_item_id == "sku-mouse"  # the purchase weighs 0.2
    # the same as the engine's own scoring of that history with the bundle's weights
    scored = light_purchase.recommend_from_history(
        ["sku-laptop", "sku-tea"], 3, weights=[1.0, 0.2], raw_user_id="newcomer"
    )
    assert [item.raw_item_id for item in light.items] == [item.raw_item_id for item in scored.items]


def test_an_event_type_weighing_zero_does_not_personalise(
    bundle_path: Path, tmp_path: Path, engine: Engine
) -> None:
    no_purchase = load_engine(
        rebundle(bundle_path, tmp_path / "bundle", {**LIGHT_PURCHASE, EventType.PURCHASE: 0.0})
    )
    purchased = UserState(
        recent=[RecentEvent("sku-tea", EventType.PURCHASE, 100)],
        purchased=frozenset({"sku-tea"}),
    )
    assert live_recommend(engine, purchased, "u1", 3).personalisation == "realtime"
    assert live_recommend(no_purchase, purchased, "u1", 3).personalisation == "history"
    assert live_recommend(no_purchase, purchased, "newcomer", 3).fallback == "popular"
