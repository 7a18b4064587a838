"""Every `Registry` store passes the same tests: the local store and MLflow (embedded).

The promotion gate and the CLI only see the protocol, so versions, aliases and their
history must behave alike whichever store `open_registry` picks.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pytest

from shelfwise.errors import RegistryError
from shelfwise.registry import CHALLENGER, CHAMPION, LocalRegistry, ModelRegistry, Registry
from shelfwise.registry.base import TAG_DATA_FINGERPRINT, TAG_GATE, TAG_RUN

if TYPE_CHECKING:
    from tests.unit.package.conftest import BundleFactory

Publish = Callable[[str], str]


def _local(tmp_path: Path) -> Registry:
    return LocalRegistry(tmp_path / "home", model_name="shop")


def _mlflow(tmp_path: Path) -> Registry:
    return ModelRegistry(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        model_name="shop",
        experiment="shop",
        artifact_location=(tmp_path / "artifacts").as_uri(),
        cache_dir=tmp_path / "downloads",
    )


@pytest.fixture(params=[_local, _mlflow], ids=["local", "mlflow"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Registry:
    factory: Callable[[Path], Registry] = request.param
    return factory(tmp_path)


@pytest.fixture
def publish(registry: Registry, make_bundle: BundleFactory) -> Publish:
    """`publish(name)`: a bundle with its own content, published; returns the version."""

    def run(name: str) -> str:
        users = pl.DataFrame({"raw_user_id": [f"{name}-{i}" for i in range(3)]})
        version, new = registry.publish(make_bundle(name, users=users), tags={TAG_RUN: name})
        assert new
        return version.version

    return run


def test_publish_registers_once_per_content(registry: Registry, make_bundle: BundleFactory) -> None:
    assert registry.versions() == []
    first, new = registry.publish(make_bundle("one"), tags={TAG_RUN: "run-a"})
    assert (first.version, new) == ("1", True)
    again, new = registry.publish(make_bundle("rerun"), tags={TAG_RUN: "run-b"})
    assert (again.version, new) == ("1", False)
    (listed,) = registry.versions()
    assert listed.version == "1"
    assert listed.run_id == "run-a"  # the run that published it, not the rerun
    assert listed.fingerprint == first.fingerprint != ""
    assert listed.tags[TAG_DATA_FINGERPRINT] == "f" * 64
    assert listed.aliases == ()
    assert (registry.local_path("1") / "manifest.json").is_file()


def test_promote_challenger_and_rollback_keep_the_history(
    registry: Registry, publish: Publish
) -> None:
    one, two, three = (publish(name) for name in "abc")
    assert registry.by_alias(CHAMPION) is None
    registry.promote(one, "first")
    registry.mark_challenger(two, "canary")
    assert registry.by_alias(CHALLENGER).version == two  # type: ignore[union-attr]
    registry.promote(two, "better")
    assert registry.by_alias(CHALLENGER) is None  # a promoted challenger is champion now
    registry.promote(three, "best")
    assert registry.champion_stack() == [one, two, three]
    assert registry.get(three).aliases == (CHAMPION,)

    move = registry.rollback("bad canary")
    assert (move.alias, move.old, move.new) == (CHAMPION, three, two)
    assert registry.by_alias(CHAMPION).version == two  # type: ignore[union-attr]
    assert registry.rollback().new == one
    with pytest.raises(RegistryError, match="no earlier one"):
        registry.rollback()
    assert [v.version for v in registry.versions()] == [one, two, three]  # nothing deleted
    log = registry.alias_log()
    assert [(e["alias"], e["old"], e["new"]) for e in log][-2:] == [
        (CHAMPION, three, two),
        (CHAMPION, two, one),
    ]
    assert log[-2]["reason"] == "bad canary"


def test_drop_challenger_keeps_the_version(registry: Registry, publish: Publish) -> None:
    one, two = publish("a"), publish("b")
    registry.promote(one, "first")
    registry.mark_challenger(two, "canary")
    move = registry.drop_challenger("canary rolled back")
    assert (move.old, move.new) == (two, None)
    assert registry.by_alias(CHALLENGER) is None
    assert registry.by_alias(CHAMPION).version == one  # type: ignore[union-attr]
    assert registry.get(two).version == two


def test_rollback_without_a_champion_says_so(registry: Registry, publish: Publish) -> None:
    publish("a")
    with pytest.raises(RegistryError, match="no champion"):
        registry.rollback()


def test_tags_are_kept_on_the_version(registry: Registry, publish: Publish) -> None:
    version = publish("a")
    registry.set_tag(version, TAG_GATE, "refused")
    assert registry.get(version).tags[TAG_GATE] == "refused"
    assert registry.versions()[0].tags[TAG_GATE] == "refused"


def test_unknown_version_lists_the_known_ones(registry: Registry, publish: Publish) -> None:
    publish("a")
    with pytest.raises(RegistryError, match="no version 7.*versions: 1"):
        registry.get(7)
    with pytest.raises(RegistryError, match="not a model version"):
        registry.promote("../1", "path tricks")
