"""ingest, validate and features with `compute.engine: ray` equal the local engine's (issue 13).

On the two-node loopback cluster, ingest parses each events file and validate checks
each of ingest's parts as a Ray Data dataset; the test compares every file the three
stages write (Parquet rows, the quarantine's rows and reasons, the reports' counts, the
matrices) with the local run's, on a small shop with bad rows in every source, events
in two files and parts of a few rows (several blocks, slices and buckets).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from tests.unit.compute.conftest import LoopbackCluster

from shelfwise import ingest, validate
from shelfwise._internal.artifacts import read_csr
from shelfwise._internal.stage import StageContext
from shelfwise.compute import Executor, LocalExecutor, open_executor
from shelfwise.compute.ray_executor import RayExecutor
from shelfwise.config import ComputeConfig, ShelfwiseConfig, load_config
from shelfwise.errors import DamagedFileError
from shelfwise.features.stage import build_features

pytest.importorskip("ray.data", reason="Ray is not installed: `pip install -e '.[cluster]'`")

CATALOG = (
    "item_id,title,price\n"
    + "".join(f"i{n},Item {n},{n}.5\n" for n in range(12))
    + "i2,Item 2,2.5\n"  # exact repeat: merged
    + "i3,Other,9\n"  # duplicate-item
    + "i20,Bad,abc\n"  # bad-type
    + ',"open quote,1\n'  # malformed: an unclosed quote
)


def _events(first_user: int, rows: int) -> str:
    lines = ["user_id,item_id,event,timestamp"]
    for n in range(rows):
        user, item = first_user + n % 7, n % 14  # items 12, 13: unknown-item
        lines.append(f"u{user},i{item},view,{1_600_000_000 + 60 * n}")
    lines += [
        f"u{first_user},i0,view,1600000000",  # duplicate-event of the first row
        f"u{first_user},i1,teleport,1600000100",  # bad-event-type
        f"u{first_user},i1,view,not-a-time",  # bad-type
        f"u{first_user},i1,view,1,2,3",  # malformed-row
    ]
    return "\n".join(lines) + "\n"


def _config(folder: Path, compute: ComputeConfig) -> ShelfwiseConfig:
    events = folder / "events"
    if not events.is_dir():
        events.mkdir()
        (events / "day-1.csv").write_text(_events(0, 40))
        (events / "day-2.csv").write_text(_events(5, 30))
        (folder / "catalog.csv").write_text(CATALOG)
    return load_config(
        overrides={
            "data.catalog": {"path": str(folder / "catalog.csv")},
            "data.events": {"path": str(events)},
            "data.batch_rows": 20,  # parts of a few rows: several blocks a source
            "data.max_rejected_share": 1.0,
            "compute": compute.model_dump(),
        },
        environ={},
    )


def _run(config: ShelfwiseConfig, run_dir: Path) -> dict[str, Any]:
    ingested = ingest.run(StageContext(config, run_dir, {}, run_dir / "ingest"))
    validated = validate.run(
        StageContext(config, run_dir, {"ingest": run_dir / "ingest"}, run_dir / "validate")
    )
    build_features(config, run_dir / "validate", run_dir / "features")
    return {"ingest": ingested.row_counts, "validate": validated.row_counts}


def _files(run_dir: Path) -> Iterator[tuple[str, Any]]:
    for path in sorted(run_dir.rglob("*")):
        name = str(path.relative_to(run_dir))
        if path.suffix == ".parquet":
            frame = pl.read_parquet(path)
            yield name, frame.with_columns(pl.col(pl.Categorical).cast(pl.String)).rows()
        elif path.suffix == ".npz" and path.stem.endswith(("train", "targets", "full")):
            yield name, read_csr(path).toarray().tolist()
        elif name in ("ingest/ingest.json", "validate/report.json"):
            yield name, json.loads(path.read_text().replace(str(run_dir), "RUN"))


@pytest.fixture(scope="module")
def on_ray(ray_cluster: LoopbackCluster) -> ComputeConfig:
    return ComputeConfig(engine="ray", address=ray_cluster.address)


def test_ingest_validate_features_on_ray_data_equal_local(
    on_ray: ComputeConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    local = _run(_config(data, ComputeConfig()), tmp_path / "local")
    streamed: list[str] = []
    ray_stream = RayExecutor.stream

    def spy(self: RayExecutor, function: Any, blocks: Any, shared: Any, *, what: str) -> Any:
        streamed.append(what)
        return ray_stream(self, function, blocks, shared, what=what)

    monkeypatch.setattr(RayExecutor, "stream", spy)
    remote = _run(_config(data, on_ray), tmp_path / "ray")
    # ingest's files and validate's parts (two passes a source) went through Ray Data
    assert streamed == ["catalog file", "events file"] + ["catalog part"] * 2 + ["events part"] * 2
    assert remote == local
    counts = local["validate"]
    assert counts["events_quarantined"] > 10
    assert counts["catalog_merged"] == 1
    assert counts["events_rows_in"] == (
        counts["events_accepted"] + counts["events_quarantined"] + counts["events_merged"]
    )
    assert len(list((tmp_path / "local" / "ingest" / "events").glob("part-*"))) > 3
    local_files, ray_files = dict(_files(tmp_path / "local")), dict(_files(tmp_path / "ray"))
    assert ray_files.keys() == local_files.keys()
    assert "validate/quarantine.parquet" in local_files
    assert "features/train.npz" in local_files
    for name, content in local_files.items():
        assert ray_files[name] == content, name
    reasons = {row[3] for row in local_files["validate/quarantine.parquet"]}
    assert {"unknown-item", "duplicate-event", "malformed-row", "duplicate-item"} <= reasons


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_stream_yields_every_result_in_block_order(engine: str, on_ray: ComputeConfig) -> None:
    def _parts(block: tuple[int, int], shared: int) -> Iterator[int]:  # sent by value
        start, stop = block
        for value in range(start, stop):
            if value == 99:
                raise DamagedFileError(f"value {value}")
            yield value * shared

    executor: Executor = LocalExecutor() if engine == "local" else open_executor(on_ray)
    blocks = [(0, 3), (3, 3), (3, 8), (8, 10)]  # an empty block too
    assert list(executor.stream(_parts, blocks, 10, what="file")) == [
        value * 10 for value in range(10)
    ]
    with pytest.raises(DamagedFileError, match="value 99") as failed:
        list(executor.stream(_parts, [(0, 2), (98, 100)], 1, what="file"))
    assert any("file 2 of 2" in note for note in failed.value.__notes__)
