"""State of an MLflow store that survives kill -9: first-time setup and orphaned runs.

**Setup.** On first use MLflow creates its sqlite tables and then runs its alembic
migrations (66 in MLflow 3.17, ~1,700 SQL statements), each committed on its own, and
Python's sqlite3 runs DDL outside the migration's transaction, so a `CREATE TABLE`
stays when the version bump after it never happens. A process killed in between
leaves a database that every later start tries to migrate again, failing for good with
`table registered_models already exists` (issue 14: kill `shelfwise models` in a fresh
home). So `prepare_sqlite_store` builds the database in a temporary file next to it,
under a file lock, with MLflow's own routine (`_initialize_tables`: what its stores
call on an empty database), and renames it into place: `mlflow.db` is either absent or
complete. A half-made database left by an older shelfwise is set aside and rebuilt
when it holds no runs, experiments or models (it cannot: a kill during setup happens
before any); one that does is reported with the command that upgrades it.

**Orphaned runs.** A pipeline run killed while publishing leaves its MLflow run in
RUNNING for ever. Each run we start records its process (`process_tags`: pid, host,
process start time); `fail_orphaned_runs` marks FAILED the RUNNING runs of this host
whose process is gone (or whose pid now belongs to a newer process). Runs started on
another host are left alone: their processes cannot be seen from here.

MLflow is imported lazily, as everywhere in `registry`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sqlite3
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import unquote

import psutil

from shelfwise._internal.artifacts import crash_point, file_lock, fsync_path
from shelfwise.errors import RegistryError

if TYPE_CHECKING:
    from mlflow import MlflowClient

_log = logging.getLogger(__name__)

TAG_PID: Final = "shelfwise.pid"
TAG_HOST: Final = "shelfwise.host"
TAG_PROCESS_STARTED: Final = "shelfwise.process_started"
TAG_ENDED_BY: Final = "shelfwise.ended_by"
# tables whose rows are user data (experiment 0 is the default MLflow makes itself)
_DATA_QUERIES: Final = {
    "runs": "SELECT COUNT(*) FROM runs",
    "registered_models": "SELECT COUNT(*) FROM registered_models",
    "model_versions": "SELECT COUNT(*) FROM model_versions",
    "experiments": "SELECT COUNT(*) FROM experiments WHERE experiment_id != 0",
}
_prepared: set[Path] = set()


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI; None for other stores and `:memory:`."""
    if not uri.startswith("sqlite:///"):
        return None
    raw = unquote(uri.removeprefix("sqlite:///").split("?", 1)[0])
    if not raw or raw == ":memory:":
        return None
    return Path(raw)


def prepare_sqlite_store(uri: str) -> None:
    """Make sure a `sqlite:///` store is either absent or complete before MLflow opens it.

    A no-op for other URIs and for a database this process already prepared.

    Raises:
        RegistryError: a database with data is at an older or half-made schema.
    """
    path = sqlite_path(uri)
    if path is None:
        return
    path = path.resolve()
    if path in _prepared:
        return
    if path.exists() and _complete(path):  # the common case, read-only: no lock needed
        _prepared.add(path)
        return
    with file_lock(path.with_name(f".{path.name}.lock")):
        _remove_temporaries(path)  # the lock is ours: any temporary is a killed setup's
        if path.exists() and not _complete(path):
            _set_aside(path)
        if not path.exists():
            _create(path)
    _prepared.add(path)


def _create(path: Path) -> None:
    """Create and migrate the database in a temporary file, then rename it into place."""
    from mlflow.store.db.utils import _initialize_tables, create_sqlalchemy_engine

    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    started = time.perf_counter()
    engine = create_sqlalchemy_engine(f"sqlite:///{tmp}")  # type: ignore[no-untyped-call]
    try:
        _initialize_tables(engine)  # type: ignore[no-untyped-call]
    finally:
        engine.dispose()
    fsync_path(tmp)
    crash_point("mlflow-setup:migrated")
    os.replace(tmp, path)
    fsync_path(path.parent)
    crash_point("mlflow-setup:renamed")
    _log.info("created the MLflow store %s in %.1f s", path, time.perf_counter() - started)


def _complete(path: Path) -> bool:
    """True when the database is at MLflow's latest schema revision."""
    from mlflow.store.db.utils import _get_latest_schema_revision

    try:
        # read-only: a server may follow a store on a volume it cannot write
        with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
            row = db.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:  # no alembic_version table yet, or not a database
        return False
    head: str = _get_latest_schema_revision()  # type: ignore[no-untyped-call]
    return row is not None and row[0] == head


def _set_aside(path: Path) -> None:
    """Move a half-made database out of the way, unless it holds data."""
    try:
        with contextlib.closing(sqlite3.connect(path)) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            rows = {
                table: int(db.execute(query).fetchone()[0])
                for table, query in _DATA_QUERIES.items()
                if table in tables
            }
    except sqlite3.DatabaseError as exc:
        raise RegistryError(
            f"{path} is not a readable MLflow database ({exc}); move it away and run again "
            "to create a new one"
        ) from None
    holding = {table: count for table, count in rows.items() if count}
    if holding:
        raise RegistryError(
            f"the MLflow database {path} is not at the schema this MLflow expects and holds "
            f"data ({', '.join(f'{n} {t}' for t, n in sorted(holding.items()))}); back it "
            f"up, then run `mlflow db upgrade sqlite:///{path}`"
        )
    aside = path.with_name(f"{path.name}.incomplete-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(path, aside)
    _log.warning("set aside the half-created MLflow database %s as %s", path, aside.name)


def _remove_temporaries(path: Path) -> None:
    for leftover in path.parent.glob(f".{path.name}.tmp-*"):
        leftover.unlink(missing_ok=True)


# --- orphaned runs ---------------------------------------------------------------------


def process_tags() -> dict[str, str]:
    """Tags that let a later process tell whether this one is still alive."""
    return {
        TAG_PID: str(os.getpid()),
        TAG_HOST: socket.gethostname(),
        TAG_PROCESS_STARTED: f"{psutil.Process().create_time():.3f}",
    }


def process_alive(pid: int, started: float) -> bool:
    """True when `pid` runs and is the process that started at `started` (not a reuse)."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        # create_time is rounded differently by the two calls: allow a second
        return bool(abs(process.create_time() - started) < 1.0)
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # someone else's live process
        return True


def fail_orphaned_runs(client: MlflowClient, experiment_id: str) -> list[str]:
    """Mark FAILED the RUNNING runs of this host whose process is gone.

    Returns:
        The ids of the runs marked.
    """
    host = socket.gethostname()
    running = client.search_runs(
        [experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=1000
    )
    marked: list[str] = []
    for run in running:
        tags = run.data.tags
        if tags.get(TAG_HOST) != host:
            continue
        try:
            pid, started = int(tags[TAG_PID]), float(tags[TAG_PROCESS_STARTED])
        except (KeyError, ValueError):
            continue
        if process_alive(pid, started):
            continue
        client.set_tag(
            run.info.run_id,
            TAG_ENDED_BY,
            f"process {pid} on {host} ended without finishing the run; marked FAILED by "
            f"process {os.getpid()}",
        )
        client.set_terminated(run.info.run_id, status="FAILED")
        marked.append(run.info.run_id)
    if marked:
        _log.warning("marked %d run(s) of killed processes FAILED: %s", len(marked), marked)
    return marked
