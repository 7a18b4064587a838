"""The server follows the registry's aliases (real embedded MLflow store)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from shelfwise.package.bundle import read_bundle_manifest
from shelfwise.registry import ModelRegistry
from shelfwise.registry.tracking import RunLogger
from shelfwise.serve import ServeSettings
from shelfwise.serve.holder import ModelHolder
from shelfwise.serve.lifecycle import RegistryWatcher
from shelfwise.serve.metrics import ServeMetrics

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
    holder, metrics = ModelHolder(), ServeMetrics()
    settings = ServeSettings(
        bundle_path=None,
        registry_uri=uri,
        registry_model="tiny",
        bundle_root=tmp_path,
        omp_threads=0,  # a test process: leave OMP_NUM_THREADS alone
    )
    watcher = RegistryWatcher(holder, metrics, settings)
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
