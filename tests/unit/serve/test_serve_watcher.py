"""The server follows the registry's aliases (real embedded MLflow store, the local store)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from shelfwise.package.bundle import read_bundle_manifest
from shelfwise.registry import LocalRegistry, ModelRegistry
from shelfwise.registry.tracking import RunLogger
from shelfwise.serve import ServeSettings
from shelfwise.serve.holder import ModelHolder
from shelfwise.serve.loader import BundleLoader
from shelfwise.serve.metrics import ServeMetrics
from shelfwise.serve.watcher import RegistryWatcher, file_marker, registry_files

if TYPE_CHECKING:
    from tests.unit.conftest import ShopFacts


def _publish(registry: ModelRegistry, bundle: Path) -> str:
    logger = RunLogger(registry, bundle.parent.name)
    logger.log_bundle(bundle)
    logger.finish()
    version, _ = registry.register(
        logger.mlflow_run_id, read_bundle_manifest(bundle).fingerprint, {}
    )
    return version.version


def _loader(uri: str, root: Path, **settings: object) -> BundleLoader:
    served = ServeSettings(
        bundle_path=None,
        registry_uri=uri,
        registry_model="tiny",
        bundle_root=root,
        omp_threads=0,  # a test process: leave OMP_NUM_THREADS alone
        freeze_heap=False,
        **settings,  # type: ignore[arg-type]
    )
    return BundleLoader(ModelHolder(), ServeMetrics(), served)


def _eventually(condition: Callable[[], bool], seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_watcher_loads_what_the_aliases_point_at(facts: ShopFacts, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    registry = ModelRegistry(
        tracking_uri=uri,
        model_name="tiny",
        experiment="tiny",
        artifact_location=(tmp_path / "artifacts").as_uri(),
        cache_dir=tmp_path / "downloads",
    )
    one = _publish(registry, facts.build_bundle(tmp_path / "one"))
    two = _publish(registry, facts.build_bundle(tmp_path / "two", with_similar=False))
    loader = _loader(uri, tmp_path)
    holder = loader.holder
    watcher = RegistryWatcher(loader)
    assert watcher.poll_once() == []  # no aliases yet: nothing to serve
    assert not holder.ready

    registry.promote(one, "first")
    registry.mark_challenger(two, "canary")
    swapped = watcher.poll_once()
    assert [(s.role, s.model_version) for s in swapped] == [("champion", one), ("challenger", two)]
    assert watcher.poll_once() == []  # unchanged aliases: no reload

    registry.promote(two, "better")  # the challenger alias goes with it
    swapped = watcher.poll_once()
    assert [(s.role, s.model_version, s.previous_version) for s in swapped] == [
        ("champion", two, one)
    ]
    assert holder.models.challenger is None
    registry.rollback("bad")
    assert [s.model_version for s in watcher.poll_once()] == [one]
    assert holder.models.champion is not None
    assert holder.models.champion.version == one


def test_an_admin_pin_holds_against_the_watcher_until_released(
    facts: ShopFacts, tmp_path: Path
) -> None:
    # issue 14: with registry watching on, an admin reload answered 200 and was undone
    # within one poll
    registry = LocalRegistry(tmp_path / "store", model_name="tiny")
    one, _ = registry.publish(facts.build_bundle(tmp_path / "one"))
    two, _ = registry.publish(facts.build_bundle(tmp_path / "two", with_similar=False))
    registry.promote(two.version, "latest")
    loader = _loader(str(tmp_path / "store"), tmp_path)
    watcher = RegistryWatcher(loader)
    assert [s.model_version for s in watcher.poll_once()] == [two.version]

    pinned = loader.load(
        lambda: registry.local_path(one.version),
        "champion",
        version=one.version,
        source="admin",
        pin=True,
    )
    assert (pinned.model_version, pinned.previous_version) == (one.version, two.version)
    assert watcher.poll_once() == []  # the alias says two; the pin keeps one
    assert loader.holder.models.champion is not None
    assert loader.holder.models.champion.version == one.version
    assert loader.pins == {"champion": one.version}

    assert loader.release_pins() == {"champion": one.version}
    assert [s.model_version for s in watcher.poll_once()] == [two.version]


def test_a_promotion_on_a_local_registry_is_seen_at_the_next_file_check(
    facts: ShopFacts, tmp_path: Path
) -> None:
    registry = LocalRegistry(tmp_path / "store", model_name="tiny")
    one, _ = registry.publish(facts.build_bundle(tmp_path / "one"))
    two, _ = registry.publish(facts.build_bundle(tmp_path / "two", with_similar=False))
    registry.promote(one.version, "first")
    # a poll interval far longer than the test: only the file check can see the move
    loader = _loader(str(tmp_path / "store"), tmp_path, watch_interval_s=3600, watch_check_s=0.05)
    watcher = RegistryWatcher(loader)
    watcher.poll_once()
    watcher.start()
    try:
        registry.promote(two.version, "better")
        champion = lambda: loader.holder.models.champion  # noqa: E731
        assert _eventually(lambda: getattr(champion(), "version", None) == two.version)
    finally:
        watcher.stop()


def test_registry_files_name_what_changes_on_a_move(tmp_path: Path) -> None:
    database = tmp_path / "mlflow.db"
    assert registry_files(f"sqlite:///{database}") == [
        database,
        tmp_path / "mlflow.db-wal",
        tmp_path / "mlflow.db-journal",
    ]
    assert registry_files("https://mlflow.example.com") is None
    files = registry_files(str(tmp_path))
    assert files is not None
    before = file_marker(files)
    (tmp_path / "bundles").mkdir()
    assert file_marker(files) != before
