"""The durable event log: every accepted event, in files the pipeline's ingest reads.

Layout (Hive-style partitions by the hour the server received the batch, UTC)::

    <root>/date=2025-05-01/hour=13/events-20250501T130502-<pid>-<token>-0000.jsonl

Each line is one JSON object with the columns of the pipeline's events input
(`EVENT_LOG_COLUMNS`: raw_user_id, raw_item_id, event_type, timestamp in unix
seconds, query, position, request_id; absent values are null). Point `data.events.path`
at `<root>` and ingest reads every partition (`format: jsonl`); it ignores
`request_id`, which is kept for attribution analyses.

Durability: `append` writes a whole batch, flushes and fsyncs it (and the folder entry
of a new file) under one lock before returning, so the route answers 202 only for
events that are on disk. Each `EventLog` writes its own files (the process id and a
random token are in the name), so several workers or replicas can share a folder. A
file is closed and a new one started when the hour changes or the file would pass
`max_file_bytes`, and after a failed write (a torn last line stays alone in its file;
ingest quarantines it as malformed).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

from shelfwise._internal.artifacts import fsync_path
from shelfwise.contracts import (
    EVENT_TYPE,
    POSITION,
    QUERY,
    RAW_ITEM_ID,
    RAW_USER_ID,
    REQUEST_ID,
    TIMESTAMP,
)
from shelfwise.errors import EventLogError

logger = logging.getLogger("shelfwise.serve")

EVENT_LOG_COLUMNS: Final = (
    RAW_USER_ID,
    RAW_ITEM_ID,
    EVENT_TYPE,
    TIMESTAMP,
    QUERY,
    POSITION,
    REQUEST_ID,
)
EVENT_LOG_SUFFIX: Final = ".jsonl"
MAX_FILE_BYTES: Final = 64 * 1024 * 1024


def default_event_log_dir() -> Path:
    """`$SHELFWISE_HOME/events` (`./.shelfwise/events` without the variable)."""
    return Path(os.environ.get("SHELFWISE_HOME", ".shelfwise")) / "events"


def partition_of(seconds: float) -> Path:
    """`date=YYYY-MM-DD/hour=HH` of a unix time, in UTC."""
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return Path(f"date={moment:%Y-%m-%d}") / f"hour={moment:%H}"


class EventLog:
    """Append-only, partitioned, fsync'd JSON-lines files under `root`.

    Args:
        root: the log folder (created on the first write, not before).
        max_file_bytes: start a new file before one would grow past this size.
        fsync: fsync every batch (turn off only in benchmarks of the rest).
        clock: unix seconds, for partitions and file names (tests pass a fake).
    """

    def __init__(
        self,
        root: Path,
        *,
        max_file_bytes: int = MAX_FILE_BYTES,
        fsync: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Prepare the writer; no file is opened until `append`."""
        self.root = root
        self.max_file_bytes = max_file_bytes
        self.fsync = fsync
        self._clock = clock
        self._lock = threading.Lock()
        self._token = f"{os.getpid()}-{secrets.token_hex(3)}"
        self._file: IO[bytes] | None = None
        self._partition: Path | None = None
        self._size = 0
        self._sequence = 0
        self.lines_written = 0

    def append(self, records: Sequence[Mapping[str, Any]]) -> int:
        """Write records as one durable batch; return the number of lines written.

        Raises:
            EventLogError: the batch could not be written (disk full, read-only folder,
                ...); none of it counts as accepted. The server log has the cause.
        """
        if not records:
            return 0
        data = b"".join(_line(record) for record in records)
        with self._lock:
            try:
                handle = self._writable(len(data))
                handle.write(data)
                handle.flush()
                if self.fsync:
                    os.fsync(handle.fileno())
            except OSError as exc:
                logger.error("event log: cannot write to %s: %s", self.root, exc)
                self._close_file()  # the next batch starts a fresh file
                raise EventLogError(
                    "the event log cannot be written right now, so no event of this batch "
                    "was accepted; retry later"
                ) from None
            self._size += len(data)
            self.lines_written += len(records)
        return len(records)

    def close(self) -> None:
        """Close the current file."""
        with self._lock:
            self._close_file()

    def _writable(self, incoming: int) -> IO[bytes]:
        now = self._clock()
        partition = partition_of(now)
        if (
            self._file is not None
            and partition == self._partition
            and (self._size == 0 or self._size + incoming <= self.max_file_bytes)
        ):
            return self._file
        self._close_file()
        folder = self.root / partition
        created = not folder.is_dir()
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.fromtimestamp(now, tz=UTC).strftime("%Y%m%dT%H%M%S")
        path = folder / f"events-{stamp}-{self._token}-{self._sequence:04d}{EVENT_LOG_SUFFIX}"
        self._sequence += 1
        self._file = path.open("xb")
        self._partition, self._size = partition, 0
        if self.fsync:  # make the new names themselves durable
            fsync_path(folder)
            if created:
                fsync_path(folder.parent)
                fsync_path(self.root)
        return self._file

    def _close_file(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError as exc:
                logger.error("event log: closing a file failed: %s", exc)
            self._file, self._partition, self._size = None, None, 0


def read_event_log(root: Path) -> Iterator[dict[str, Any]]:
    """Every record under `root`, partition by partition, file by file, in order.

    Lines that are not JSON objects (a torn last line after a crash) are skipped.
    """
    if not root.is_dir():
        return
    for path in sorted(root.glob(f"date=*/hour=*/*{EVENT_LOG_SUFFIX}")):
        with path.open("rb") as handle:
            for raw in handle:
                try:
                    record = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    yield record


def _line(record: Mapping[str, Any]) -> bytes:
    values = {column: record.get(column) for column in EVENT_LOG_COLUMNS}
    return json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
