"""LocalRegistry specifics, and which store `open_registry` picks for a config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pytest

from shelfwise.config import load_config
from shelfwise.errors import RegistryError
from shelfwise.registry import (
    CHAMPION,
    BundleStore,
    LocalRegistry,
    ModelRegistry,
    open_registry,
)
from shelfwise.registry.local import LOCK_FILE, REGISTRY_FILE

if TYPE_CHECKING:
    from tests.unit.package.conftest import BundleFactory


def _users(name: str) -> pl.DataFrame:
    return pl.DataFrame({"raw_user_id": [f"{name}-{i}" for i in range(3)]})


def test_metrics_are_named_like_mlflow_run_metrics(
    tmp_path: Path, make_bundle: BundleFactory
) -> None:
    registry = LocalRegistry(tmp_path / "home")
    metrics = {"headline": {"ndcg@10": 0.4, "recall@20": 0.5}, "selected": {"x": "item_knn"}}
    version, _ = registry.publish(make_bundle(metrics=metrics))
    assert version.metrics == {"headline/ndcg_at_10": 0.4, "headline/recall_at_20": 0.5}
    assert version.mlflow_run_id is None
    assert version.folder == tmp_path / "home" / "bundles" / "1"


def test_a_store_from_before_aliases_serves_its_latest_version(
    tmp_path: Path, make_bundle: BundleFactory
) -> None:
    # What `registry.enabled: false` wrote before aliases: numbered folders only.
    store = BundleStore(tmp_path / "home")
    store.publish(make_bundle("one", users=_users("one")))
    store.publish(make_bundle("two", users=_users("two")))
    registry = LocalRegistry(tmp_path / "home")
    assert registry.by_alias(CHAMPION).version == "2"  # type: ignore[union-attr]
    assert not (store.root / REGISTRY_FILE).exists()  # reading writes nothing

    three, new = registry.publish(make_bundle("three", users=_users("three")))
    assert new
    registry.promote(three.version, "newest")
    assert registry.champion_stack() == ["2", "3"]
    assert registry.rollback().new == "2"


def test_a_new_store_has_no_champion_after_its_first_publish(
    tmp_path: Path, make_bundle: BundleFactory
) -> None:
    # the gate must see "no champion yet", not the version it is judging
    registry = LocalRegistry(tmp_path / "home")
    registry.publish(make_bundle())
    assert registry.by_alias(CHAMPION) is None
    assert json.loads((registry.store.root / REGISTRY_FILE).read_text())["aliases"] == {}


def test_moves_leave_no_temporary_files(tmp_path: Path, make_bundle: BundleFactory) -> None:
    registry = LocalRegistry(tmp_path / "home")
    version, _ = registry.publish(make_bundle())
    registry.promote(version.version, "first")
    names = sorted(p.name for p in registry.store.root.iterdir())
    assert names == [LOCK_FILE, "1", REGISTRY_FILE]  # the lock file stays: it is empty


def test_a_damaged_registry_file_is_named(tmp_path: Path, make_bundle: BundleFactory) -> None:
    registry = LocalRegistry(tmp_path / "home")
    registry.publish(make_bundle())
    (registry.store.root / REGISTRY_FILE).write_text("{not json")
    with pytest.raises(RegistryError, match=r"cannot read .*registry\.json.*delete it"):
        registry.by_alias(CHAMPION)


def test_a_missing_version_folder_is_not_a_version(
    tmp_path: Path, make_bundle: BundleFactory
) -> None:
    registry = LocalRegistry(tmp_path / "home")
    version, _ = registry.publish(make_bundle())
    (registry.local_path(version.version) / "manifest.json").unlink()
    with pytest.raises(RegistryError, match="no version 1 .*versions: none"):
        registry.local_path(1)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"registry.enabled": False}, "state"),
        ({"registry.tracking_uri": "file://{tmp}/shared"}, "shared"),
        ({"registry.tracking_uri": "{tmp}/plain"}, "plain"),
        (
            {
                "registry.tracking_uri": "http://mlflow.invalid:5000",
                "registry.registry_uri": "file:{tmp}/versions",
            },
            "versions",
        ),
    ],
)
def test_open_registry_picks_the_local_store(
    tmp_path: Path, settings: dict[str, object], expected: str
) -> None:
    values = {k: str(v).replace("{tmp}", str(tmp_path)) for k, v in settings.items()}
    overrides: dict[str, object] = {"home": str(tmp_path / "state"), "project": "shop", **values}
    if "registry.enabled" in values:
        overrides["registry.enabled"] = False
    registry = open_registry(load_config(None, environ={}, overrides=overrides))
    assert isinstance(registry, LocalRegistry)
    assert registry.store.root == tmp_path / expected / "bundles"
    assert registry.model_name == "shop"


@pytest.mark.parametrize("uri", [None, "sqlite:///{tmp}/mlflow.db", "https://mlflow.invalid"])
def test_open_registry_picks_mlflow(tmp_path: Path, uri: str | None) -> None:
    overrides: dict[str, object] = {"home": str(tmp_path / "state"), "project": "shop"}
    if uri is not None:
        overrides["registry.tracking_uri"] = uri.replace("{tmp}", str(tmp_path))
    registry = open_registry(load_config(None, environ={}, overrides=overrides))
    assert isinstance(registry, ModelRegistry)
    assert registry.model_name == "shop"
