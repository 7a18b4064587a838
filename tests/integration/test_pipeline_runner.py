"""The runner: stage folders with manifests, caching, --from-stage, kill -9 and --resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shelfwise._internal.artifacts import read_manifest
from shelfwise.config import ShelfwiseConfig
from shelfwise.errors import ResumeError
from shelfwise.pipeline import STAGE_NAMES, STAGES, StageEvent, _cache_key, run_pipeline
from shelfwise.report._collect import RunInfo, collect_run


def collect(events: list[StageEvent]) -> dict[str, str]:
    return {event.stage: event.status for event in events if event.status != "started"}


def test_full_run_writes_manifests_and_publishes(
    tiny_config: ShelfwiseConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shelfwise.report

    # what the report reads when it is written (issue 12: it said "running", "–")
    at_report: list[RunInfo] = []
    write = shelfwise.report.write_report

    def watched(run_dir: Path) -> Path:
        at_report.append(collect_run(run_dir))
        return write(run_dir)

    monkeypatch.setattr(shelfwise.report, "write_report", watched)
    outcome = run_pipeline(tiny_config)
    assert outcome.bundle_version == 1
    (info,) = at_report
    assert (info.status, info.bundle_version) == ("complete", 1)
    assert info.started_at is not None
    assert info.updated_at is not None
    assert info.updated_at - info.started_at > 1.0  # the whole run, not one record write
    assert outcome.report_path is not None
    assert "status complete · model version 1" in outcome.report_path.read_text()
    assert outcome.warnings == []
    for stage in STAGE_NAMES:
        manifest = read_manifest(outcome.run_dir / stage)
        assert manifest.stage == stage
        assert manifest.files, stage
        assert manifest.timings_s["total"] >= 0
        assert manifest.library_versions["numpy"]
    record = json.loads((outcome.run_dir / "run.json").read_text())
    assert record["status"] == "complete"
    assert not list(outcome.run_dir.glob(".*tmp*"))


def test_rerun_reuses_every_stage_and_version(tiny_config: ShelfwiseConfig) -> None:
    first = run_pipeline(tiny_config)
    events: list[StageEvent] = []
    second = run_pipeline(tiny_config, on_event=events.append)
    assert second.run_id != first.run_id
    assert set(collect(events).values()) == {"cached"}
    assert second.bundle_version == first.bundle_version  # same content, same version
    assert read_manifest(second.run_dir / "features").reused_from == first.run_id


def test_config_change_recomputes_only_downstream(tiny_config: ShelfwiseConfig) -> None:
    run_pipeline(tiny_config)
    changed = tiny_config.model_copy(
        update={"evaluate": tiny_config.evaluate.model_copy(update={"k_values": [5, 10]})}
    )
    events: list[StageEvent] = []
    run_pipeline(changed, on_event=events.append)
    statuses = collect(events)
    assert statuses["retrieval"] == "cached"
    assert statuses["evaluate"] == "done"


# slow: two whole runs (~55 s on 2 cores); test_config_change_recomputes_only_downstream
# covers recomputing a stage and everything after it in the default run
@pytest.mark.slow
def test_from_stage_recomputes_that_stage_and_later(tiny_config: ShelfwiseConfig) -> None:
    run_pipeline(tiny_config)
    events: list[StageEvent] = []
    run_pipeline(tiny_config, from_stage="retrieval", on_event=events.append)
    statuses = collect(events)
    assert [statuses[s] for s in ("ingest", "validate", "features", "tune")] == ["cached"] * 4
    after = ("retrieval", "evaluate", "ranking", "package")
    assert [statuses[s] for s in after] == ["done"] * len(after)


def test_from_stage_without_earlier_run_is_explained(tiny_config: ShelfwiseConfig) -> None:
    with pytest.raises(ResumeError, match="run the whole pipeline once first"):
        run_pipeline(tiny_config, from_stage="evaluate")


def test_unknown_stage_name(tiny_config: ShelfwiseConfig) -> None:
    with pytest.raises(ResumeError, match="unknown stage 'train'"):
        run_pipeline(tiny_config, from_stage="train")


def test_resume_needs_an_existing_run(tiny_config: ShelfwiseConfig) -> None:
    with pytest.raises(ResumeError, match="no run to resume"):
        run_pipeline(tiny_config, resume="latest")


# A child process that runs the pipeline with a retrieval stage that writes half of
# its output and then hangs, so the test can kill -9 it mid-stage.
_CHILD = """
import sys, time
from pathlib import Path
import shelfwise.retrieval.stage as train
from shelfwise.config import ShelfwiseConfig
from shelfwise.pipeline import run_pipeline

def hanging_stage(ctx):
    (ctx.out / "popularity").mkdir()
    (ctx.out / "popularity" / "scores.npy").write_bytes(b"half-written")
    (ctx.run_dir / "MARKER").write_text("in retrieval")
    time.sleep(120)

train.run = hanging_stage
config = ShelfwiseConfig.model_validate_json(Path(sys.argv[1]).read_text())
run_pipeline(config)
"""


def test_kill_mid_stage_then_resume(tiny_config: ShelfwiseConfig, tmp_path: Path) -> None:
    config_file = tmp_path / "config.json"
    config_file.write_text(tiny_config.model_dump_json())
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(config_file)])
    runs = tiny_config.state_dir() / "runs"
    deadline = time.monotonic() + 120
    try:
        while not list(runs.glob("*/MARKER")):
            assert child.poll() is None, "the child run ended before reaching retrieval"
            assert time.monotonic() < deadline, "the child run never reached retrieval"
            time.sleep(0.05)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()

    run_dir = next(runs.glob("*/MARKER")).parent
    assert not (run_dir / "retrieval").exists()  # nothing that looks complete
    assert list(run_dir.glob(".retrieval.tmp-*"))  # the half-written temporary
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "running"  # it died without a chance to say so

    events: list[StageEvent] = []
    outcome = run_pipeline(tiny_config, resume="latest", on_event=events.append)
    statuses = collect(events)
    assert outcome.run_id == run_dir.name
    before = ("ingest", "validate", "features", "tune")
    assert [statuses[s] for s in before] == ["resumed"] * len(before)
    after = ("retrieval", "evaluate", "ranking", "package")
    assert [statuses[s] for s in after] == ["done"] * len(after)
    assert not list(run_dir.glob(".*tmp*"))
    assert outcome.bundle_version == 1
    scores = run_dir / "retrieval" / "popularity"
    assert read_manifest(run_dir / "retrieval").files  # rewritten fully
    assert all(p.read_bytes() != b"half-written" for p in scores.iterdir())


def test_resume_refuses_a_changed_config(tiny_config: ShelfwiseConfig) -> None:
    run_pipeline(tiny_config, until="features")
    changed = tiny_config.model_copy(update={"seed": 1})
    with pytest.raises(ResumeError, match="different configuration"):
        run_pipeline(changed, resume="latest")


def test_the_signing_key_is_part_of_the_package_stage_key(
    tiny_config: ShelfwiseConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a bundle packaged unsigned (or with another key) is never reused once a key is set
    package = next(stage for stage in STAGES if stage.name == "package")
    upstream = dict.fromkeys(package.needs, "k")
    monkeypatch.delenv("SHELFWISE_BUNDLE_SIGNING_KEY", raising=False)
    unsigned = _cache_key(package, tiny_config, upstream)
    monkeypatch.setenv("SHELFWISE_BUNDLE_SIGNING_KEY", "a-signing-key-of-at-least-32-bytes")
    signed = _cache_key(package, tiny_config, upstream)
    monkeypatch.setenv("SHELFWISE_BUNDLE_SIGNING_KEY", "another-key-of-at-least-32-bytes!")
    other = _cache_key(package, tiny_config, upstream)
    assert len({unsigned, signed, other}) == 3
