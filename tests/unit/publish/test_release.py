"""publish_run on the local store: version, alias, run record before the report, warnings."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from shelfwise.config import ShelfwiseConfig, load_config
from shelfwise.publish import GateResult, Published, publish_run, release
from shelfwise.registry import CHAMPION, LocalRegistry
from shelfwise.registry.base import TAG_RUN
from shelfwise.report._collect import collect_run

if TYPE_CHECKING:
    from tests.unit.package.conftest import BundleFactory


@pytest.fixture
def config(tmp_path: Path) -> ShelfwiseConfig:
    # registry.enabled: false: the local store, no MLflow run and no gate
    overrides = {"home": str(tmp_path / "state"), "project": "shop", "registry.enabled": False}
    return load_config(None, environ={}, overrides=overrides)


@pytest.fixture
def run_dir(config: ShelfwiseConfig, make_bundle: BundleFactory) -> Path:
    """A run folder as the pipeline leaves it before publishing: running, with a bundle."""
    run = config.state_dir() / "runs" / "20260101-000000-abcdef"
    (run / "package").mkdir(parents=True)
    make_bundle("bundle").rename(run / "package" / "bundle")
    started = time.time() - 42.0
    record = {"run_id": run.name, "status": "running", "started_at": started}
    (run / "run.json").write_text(json.dumps({**record, "updated_at": started}))
    return run


def _finish(run_dir: Path, seen: list[bool]) -> Callable[[Published], None]:
    """What the pipeline does in `before_report`: record the run complete."""

    def finished(published: Published) -> None:
        seen.append((run_dir / "report.html").exists())
        path = run_dir / "run.json"
        record = json.loads(path.read_text())
        record.update(
            status="complete",
            bundle_version=int(published.version.version),
            updated_at=time.time(),
        )
        path.write_text(json.dumps(record))

    return finished


def test_the_report_shows_the_finished_run(config: ShelfwiseConfig, run_dir: Path) -> None:
    seen: list[bool] = []
    published = publish_run(
        config,
        run_dir,
        run_dir / "package" / "bundle",
        before_report=_finish(run_dir, seen),
    )
    assert seen == [False]  # the run was recorded finished before the report was written
    assert (published.version.version, published.new, published.gate) == ("1", True, None)
    assert published.mlflow_run_id is None
    assert published.warnings == ()
    assert published.bundle_path == config.state_dir() / "bundles" / "1"
    assert published.report == run_dir / "report.html"

    info = collect_run(run_dir)
    assert (info.status, info.bundle_version) == ("complete", 1)
    assert info.started_at is not None
    assert info.updated_at is not None
    assert info.updated_at - info.started_at >= 42.0
    page = published.report.read_text(encoding="utf-8")
    assert "status complete · model version 1" in page
    assert "running" not in re.sub(r"<style.*?</style>", "", page, flags=re.S)


def test_without_the_gate_each_new_version_becomes_champion(
    config: ShelfwiseConfig, run_dir: Path
) -> None:
    bundle = run_dir / "package" / "bundle"
    publish_run(config, run_dir, bundle)
    again = publish_run(config, run_dir, bundle)
    assert (again.version.version, again.new) == ("1", False)
    registry = LocalRegistry(config.state_dir())
    assert registry.by_alias(CHAMPION).version == "1"  # type: ignore[union-attr]
    assert len(registry.alias_log()) == 1  # the unchanged rerun moved nothing


def test_a_failing_report_warns_and_keeps_the_version(
    config: ShelfwiseConfig,
    run_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(run: Path) -> Path:
        raise ValueError("plot exploded")

    monkeypatch.setattr("shelfwise.report.write_report", broken)
    with caplog.at_level(logging.WARNING, logger="shelfwise.publish.release"):
        published = publish_run(config, run_dir, run_dir / "package" / "bundle")
    assert published.report is None
    assert published.warnings == ("report not written: ValueError: plot exploded",)
    assert "plot exploded" in caplog.text
    assert published.version.version == "1"


def test_a_version_stored_before_a_kill_is_promoted_by_the_rerun(
    config: ShelfwiseConfig, run_dir: Path
) -> None:
    # killed between storing the version and moving the alias (issue 14): the rerun
    # finds the version by its fingerprint and must still make it champion
    bundle = run_dir / "package" / "bundle"
    registry = LocalRegistry(config.state_dir())
    registry.publish(bundle, tags={TAG_RUN: run_dir.name})
    assert registry.by_alias(CHAMPION) is None
    published = publish_run(config, run_dir, bundle)
    assert (published.version.version, published.new) == ("1", False)
    assert registry.by_alias(CHAMPION).version == "1"  # type: ignore[union-attr]


def test_a_recorded_gate_decision_is_applied_once(
    tmp_path: Path, run_dir: Path, make_bundle: BundleFactory
) -> None:
    # killed after gate.json was written, before the alias moved: the rerun applies the
    # recorded decision instead of scoring again (this run folder has nothing to score)
    config = load_config(
        None,
        environ={},
        overrides={"home": str(tmp_path / "state"), "registry.tracking_uri": str(tmp_path / "reg")},
    )
    registry = LocalRegistry(tmp_path / "reg")
    version, _ = registry.publish(run_dir / "package" / "bundle", tags={TAG_RUN: run_dir.name})
    ident = {"version": "1", "run_id": run_dir.name}
    recorded = GateResult("first-champion", ident, None, [], {}, {}, [10], {}, ["recorded"])
    recorded.write(run_dir)
    for _ in range(2):
        result = release.gate(config, run_dir, registry, version, run_dir / "package" / "bundle")
        assert result == recorded
        release._move_aliases(registry, version, result)
    assert registry.by_alias(CHAMPION).version == "1"  # type: ignore[union-attr]
    assert len(registry.alias_log()) == 1
    # a champion that moved since the decision: the recorded one no longer applies
    registry.publish(make_bundle("other", project="other"))
    registry.promote("2", "by hand")
    with pytest.raises(FileNotFoundError, match="features"):
        release.gate(config, run_dir, registry, version, run_dir / "package" / "bundle")
