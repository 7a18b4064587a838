"""The durable event log: where it lives, how it is laid out, its writer and its readers.

This module is the one owner of the log: serve writes it (`EventLog`), monitor and
retrain read it (`read_event_log`), and all of them find it with `event_log_dir(config)`:
`serve.event_log_dir` (`SHELFWISE_SERVE_EVENT_LOG_DIR`), else `<state dir>/events`.

Layout (Hive-style partitions by the hour the server received the batch, UTC)::

    <root>/date=2025-05-01/hour=13/events-20250501T130502-<pid>-<token>-0000.jsonl

Each line is one JSON object with the columns of the pipeline's events input
(`EVENT_LOG_COLUMNS`: raw_user_id, raw_item_id, event_type, timestamp in unix
seconds, query, position, request_id, session_id; absent values are null). Point `data.events.path`
at `<root>` and ingest reads every partition (`format: jsonl`); it ignores
`request_id`, which is kept for attribution analyses.

Durability: `append` writes a whole batch, fsyncs it (and the folder entry of a new
file) under one lock before returning, so the route answers 202 only for events that
are on disk. A batch is all or nothing: it goes to the end of the current file in one
positioned write, and when any write or fsync fails (ENOSPC, EIO, ...) the file is
truncated back to its size before the batch and fsync'd, so neither a partial batch
nor a torn line stays for a client's retry to duplicate. Truncating keeps an append
one write and one fsync; writing each batch to its own file and renaming it would
cost two more fsyncs (file and folder) and a file per batch.

Privacy: the log holds raw user ids and search queries, so files are created with
mode 0600 and the folders this writer creates with 0700 (owner only; the monitor and
retrain jobs run as the same user).

Each `EventLog` writes its own files (the process id and a random token are in the
name), so several workers or replicas can share a folder. A file is closed and a new
one started when the hour changes or the file would pass `max_file_bytes`, and after
a failed write whose truncation failed too (then the torn tail stays alone in its
file, and ingest quarantines it as malformed).
"""

from __future__ import annotations

import calendar
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from shelfwise._internal.artifacts import fsync_path
from shelfwise.contracts import (
    EVENT_TYPE,
    POSITION,
    QUERY,
    RAW_ITEM_ID,
    RAW_USER_ID,
    REQUEST_ID,
    SESSION_ID,
    TIMESTAMP,
)
from shelfwise.errors import EventLogError

if TYPE_CHECKING:
    import polars as pl

    from shelfwise.config import ShelfwiseConfig

logger = logging.getLogger("shelfwise.serve")

EVENT_LOG_COLUMNS: Final = (
    RAW_USER_ID,
    RAW_ITEM_ID,
    EVENT_TYPE,
    TIMESTAMP,
    QUERY,
    POSITION,
    REQUEST_ID,
    SESSION_ID,  # the visit (`/v1/events`' session_id): the session split reads it
)
EVENT_LOG_SUFFIX: Final = ".jsonl"
MAX_FILE_BYTES: Final = 64 * 1024 * 1024


FILE_MODE: Final = 0o600  # raw user ids and queries: owner only
FOLDER_MODE: Final = 0o700

EVENTS_FOLDER: Final = "events"
# Every file of the log, relative to its root (see the layout in the module docstring).
_FILES_GLOB: Final = f"date=*/hour=*/*{EVENT_LOG_SUFFIX}"


def event_log_dir(config: ShelfwiseConfig) -> Path:
    """The event log's folder: `serve.event_log_dir`, else `<state dir>/events`.

    The state folder is the config's `home`, else $SHELFWISE_HOME, else ./.shelfwise.
    """
    if config.serve.event_log_dir is not None:
        return config.serve.event_log_dir
    return config.state_dir() / EVENTS_FOLDER


def partition_of(seconds: float) -> Path:
    """`date=YYYY-MM-DD/hour=HH` of a unix time, in UTC."""
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return Path(f"date={moment:%Y-%m-%d}") / f"hour={moment:%H}"


def _partition_start(path: Path) -> int | None:
    """Unix time of a log file's `date=…/hour=…` partition, or None when unnamed."""
    try:
        date = path.parent.parent.name.removeprefix("date=")
        hour = int(path.parent.name.removeprefix("hour="))
        struct = time.strptime(date, "%Y-%m-%d")
    except ValueError:
        return None
    return calendar.timegm(struct) + hour * 3600


class EventLog:
    """Append-only, partitioned, fsync'd JSON-lines files under `root`.

    Args:
        root: the log folder (created on the first write, not before).
        max_file_bytes: start a new file before one would grow past this size.
        fsync: fsync every batch (turn off only in benchmarks of the rest).
        clock: unix seconds, for partitions and file names (tests pass a fake).
        columns: the keys each line holds (the catalog log, `catalog_log.py`, has its own).
        file_prefix: the start of each file's name.
    """

    def __init__(
        self,
        root: Path,
        *,
        max_file_bytes: int = MAX_FILE_BYTES,
        fsync: bool = True,
        clock: Callable[[], float] = time.time,
        columns: Sequence[str] = EVENT_LOG_COLUMNS,
        file_prefix: str = "events",
    ) -> None:
        """Prepare the writer; no file is opened until `append`."""
        self.root = root
        self.columns = tuple(columns)
        self.file_prefix = file_prefix
        self.max_file_bytes = max_file_bytes
        self.fsync = fsync
        self._clock = clock
        self._lock = threading.Lock()
        self._token = f"{os.getpid()}-{secrets.token_hex(3)}"
        self._fd: int | None = None
        self._partition: Path | None = None
        self._size = 0
        self._sequence = 0
        self.lines_written = 0

    def append(self, records: Sequence[Mapping[str, Any]]) -> int:
        """Write records as one durable batch; return the number of lines written.

        Raises:
            EventLogError: the batch could not be written (disk full, read-only folder,
                ...); none of it is in the log and none counts as accepted, so the
                client may send the same batch again. The server log has the cause.
        """
        if not records:
            return 0
        data = b"".join(_line(record, self.columns) for record in records)
        with self._lock:
            fd: int | None = None
            try:
                fd = self._writable(len(data))
                _write_at(fd, data, self._size)
                if self.fsync:
                    os.fsync(fd)
            except OSError as exc:
                logger.error("event log: cannot write to %s: %s", self.root, exc)
                if fd is not None:
                    self._take_back(fd)
                raise EventLogError(
                    "the event log cannot be written right now (the server log says why), "
                    "so no event of this batch was accepted or kept; send the same batch "
                    "again later"
                ) from None
            self._size += len(data)
            self.lines_written += len(records)
        return len(records)

    def close(self) -> None:
        """Close the current file."""
        with self._lock:
            self._close_file()

    def _take_back(self, fd: int) -> None:
        """Truncate the file to its size before the failed batch (all or nothing)."""
        try:
            os.ftruncate(fd, self._size)
            if self.fsync:
                os.fsync(fd)
        except OSError as exc:  # the torn tail stays, alone: the next batch starts a file
            logger.error("event log: cannot truncate a failed batch away: %s", exc)
            self._close_file()

    def _writable(self, incoming: int) -> int:
        now = self._clock()
        partition = partition_of(now)
        if (
            self._fd is not None
            and partition == self._partition
            and (self._size == 0 or self._size + incoming <= self.max_file_bytes)
        ):
            return self._fd
        self._close_file()
        folder = self.root / partition
        created = [p for p in (self.root, folder.parent, folder) if not p.is_dir()]
        for path in created:
            path.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        stamp = datetime.fromtimestamp(now, tz=UTC).strftime("%Y%m%dT%H%M%S")
        name = f"{self.file_prefix}-{stamp}-{self._token}-{self._sequence:04d}"
        path = folder / f"{name}{EVENT_LOG_SUFFIX}"
        self._sequence += 1
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        self._fd = os.open(path, flags, FILE_MODE)
        self._partition, self._size = partition, 0
        if self.fsync:  # make the new names themselves durable
            for parent in {folder, *(p.parent for p in created)}:
                fsync_path(parent)
        return self._fd

    def _close_file(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError as exc:
                logger.error("event log: closing a file failed: %s", exc)
            self._fd, self._partition, self._size = None, None, 0


def _write_at(fd: int, data: bytes, offset: int) -> None:
    """Write all of `data` at `offset` (a short write continues; errors raise OSError)."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def read_event_log(root: Path, *, since: int, until: int | None = None) -> pl.DataFrame:
    """Events of the log under `root` with since <= timestamp < until.

    Columns: raw_user_id, raw_item_id, event_type, timestamp, query (what drift and
    retraining use). Partitions are the hour the server received a batch; events carry
    the shopper's own timestamps, so partitions are pruned with an hour of slack on each
    side. Lines that do not parse are skipped.
    """
    import polars as pl  # imported here so that `import shelfwise.stores` stays light

    columns = {RAW_USER_ID: pl.String(), RAW_ITEM_ID: pl.String(), EVENT_TYPE: pl.String(),
               TIMESTAMP: pl.Int64(), QUERY: pl.String()}  # fmt: skip
    frames = [pl.DataFrame(schema=columns)]
    for path in _log_files(root):
        start = _partition_start(path)
        if start is not None and (
            start + 2 * 3600 <= since or (until is not None and start - 3600 >= until)
        ):
            continue
        try:
            frames.append(pl.read_ndjson(path, schema=columns, ignore_errors=True))
        except pl.exceptions.ComputeError:
            # A torn last line (a crash mid-write) stops polars' reader: read the file's
            # whole lines instead, as ingest does.
            rows = [{name: record.get(name) for name in columns} for record in _records(path)]
            frames.append(pl.DataFrame(rows, schema=columns, strict=False))
    events = pl.concat(frames).filter(pl.col(TIMESTAMP) >= since)
    if until is not None:
        events = events.filter(pl.col(TIMESTAMP) < until)
    return events


def iter_event_records(root: Path) -> Iterator[dict[str, Any]]:
    """Every record under `root` with all its columns, partition by partition, file by
    file, in order.

    Lines that are not JSON objects (a torn last line after a crash) are skipped.
    """
    for path in _log_files(root):
        yield from _records(path)


def _records(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON objects of one log file; other lines (a torn last line) are skipped."""
    with path.open("rb") as handle:
        for raw in handle:
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if isinstance(record, dict):
                yield record


def _log_files(root: Path) -> list[Path]:
    """The log's files in partition order (none when the folder does not exist)."""
    return sorted(root.glob(_FILES_GLOB)) if root.is_dir() else []


def _line(record: Mapping[str, Any], columns: Sequence[str] = EVENT_LOG_COLUMNS) -> bytes:
    values = {column: record.get(column) for column in columns}
    return json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
