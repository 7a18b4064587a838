"""The embedded MLflow store survives interrupted setups; killed runs end FAILED (issue 14)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import event

from shelfwise.errors import RegistryError
from shelfwise.registry import ModelRegistry, mlflow_setup
from shelfwise.registry.mlflow_setup import (
    TAG_ENDED_BY,
    TAG_HOST,
    TAG_PID,
    TAG_PROCESS_STARTED,
    prepare_sqlite_store,
    process_alive,
    process_tags,
)

# interrupted inside the setup itself; the others start from a copied complete store
REAL_MLFLOW_SETUP = ("test_an_interrupted_setup_leaves_no_database",)


class _Interrupted(BaseException):
    """Stands in for a kill: nothing below catches a BaseException that is not ours."""


@pytest.fixture(autouse=True)
def _fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # each test plays a new process: nothing prepared yet
    monkeypatch.setattr(mlflow_setup, "_prepared", set())


@pytest.fixture
def interrupt_after() -> Iterator[list[str]]:
    """`interrupt_after.append(sql)`: raise _Interrupted right after a statement containing it."""
    armed: list[str] = []

    def listener(conn: object, cursor: object, statement: str, *args: object) -> None:
        if armed and armed[0] in statement:
            armed.clear()
            raise _Interrupted

    event.listen(sqlalchemy.engine.Engine, "after_cursor_execute", listener)
    try:
        yield armed
    finally:
        event.remove(sqlalchemy.engine.Engine, "after_cursor_execute", listener)


def _registry(path: Path) -> ModelRegistry:
    return ModelRegistry(
        tracking_uri=f"sqlite:///{path}",
        model_name="shop",
        experiment="shop",
        artifact_location=(path.parent / "artifacts").as_uri(),
        cache_dir=path.parent / "downloads",
    )


def test_a_half_migrated_database_is_rebuilt(tmp_path: Path, interrupt_after: list[str]) -> None:
    # What a kill during MLflow's own first setup left (issue 14): the migration that
    # creates registered_models ran its DDL (autocommitted) but never recorded itself.
    from mlflow.store.db.utils import _initialize_tables, create_sqlalchemy_engine

    path = tmp_path / "mlflow.db"
    engine = create_sqlalchemy_engine(f"sqlite:///{path}")
    interrupt_after.append("CREATE TABLE model_versions")
    with pytest.raises(_Interrupted):
        _initialize_tables(engine)
    engine.dispose()
    with sqlite3.connect(path) as db:
        assert ("registered_models",) in db.execute("SELECT name FROM sqlite_master").fetchall()

    registry = _registry(path)
    assert registry.versions() == []  # used to fail for good: table ... already exists
    assert registry.experiment_id()
    assert len(list(tmp_path.glob("mlflow.db.incomplete-*"))) == 1  # kept, out of the way


def test_an_interrupted_setup_leaves_no_database(
    tmp_path: Path, interrupt_after: list[str]
) -> None:
    path = tmp_path / "mlflow.db"
    interrupt_after.append("CREATE TABLE registered_models")
    with pytest.raises(_Interrupted):
        prepare_sqlite_store(f"sqlite:///{path}")
    assert not path.exists()  # only a temporary, which the next setup removes
    assert list(tmp_path.glob(".mlflow.db.tmp-*"))
    registry = _registry(path)
    assert registry.versions() == []
    assert not list(tmp_path.glob(".mlflow.db.tmp-*"))


def test_a_database_with_data_at_another_schema_is_not_touched(tmp_path: Path) -> None:
    path = tmp_path / "mlflow.db"
    registry = _registry(path)
    registry.start_run("run-1")
    with sqlite3.connect(path) as db:
        db.execute("UPDATE alembic_version SET version_num = 'older'")
    mlflow_setup._prepared.clear()
    with pytest.raises(RegistryError, match=r"holds data \(1 experiments, 1 runs\); back it up"):
        prepare_sqlite_store(f"sqlite:///{path}")
    assert path.exists()


def test_runs_of_killed_processes_are_marked_failed(tmp_path: Path) -> None:
    registry = _registry(tmp_path / "mlflow.db")
    alive = registry.start_run("still-running")
    dead_pid = str(_pid_of_finished_process())
    tags = process_tags()
    dead = registry.client.create_run(
        registry.experiment_id(), run_name="killed", tags={**tags, TAG_PID: dead_pid}
    ).info.run_id
    reused = registry.client.create_run(  # the pid now runs another, newer process
        registry.experiment_id(),
        run_name="pid-reused",
        tags={**tags, TAG_PROCESS_STARTED: str(float(tags[TAG_PROCESS_STARTED]) - 3600)},
    ).info.run_id
    elsewhere = registry.client.create_run(
        registry.experiment_id(), run_name="other-host", tags={**tags, TAG_HOST: "another-host"}
    ).info.run_id

    assert sorted(registry.fail_orphaned_runs()) == sorted([dead, reused])
    status = {
        run_id: registry.client.get_run(run_id).info.status
        for run_id in (alive, dead, reused, elsewhere)
    }
    assert status == {alive: "RUNNING", dead: "FAILED", reused: "FAILED", elsewhere: "RUNNING"}
    assert "ended without finishing" in registry.client.get_run(dead).data.tags[TAG_ENDED_BY]
    # a new run (what `shelfwise run` starts) does the same on its way
    registry.start_run("next")
    assert registry.fail_orphaned_runs() == []


def _pid_of_finished_process() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_process_alive() -> None:
    tags = process_tags()
    started = float(tags[TAG_PROCESS_STARTED])
    assert process_alive(int(tags[TAG_PID]), started)
    assert not process_alive(int(tags[TAG_PID]), started - 3600)
    assert not process_alive(_pid_of_finished_process(), started)
