"""The durable, versioned log of merchandising rules, with its audit trail.

Every rules version is one JSON line of `<root>/rules.jsonl`: the version number, when
(UTC), who (the admin token's holder names themself in the request, else "admin"; the
rules file is "rules_file"), where from ("api" or "file"), a comment, the sha256 of
the rules and the rules themselves. The last line is the current version; the lines
before it are the history (`GET /v1/admin/rules/history`), so a retrain or an audit
sees exactly which rules the server applied when. The folder sits next to the event
log (`rules_log_dir`), created 0700, the file 0600 (rules can name campaigns before
they are public).

Appends take an exclusive `flock` on the file, re-read the last version under it and
fsync before returning, so two workers sharing the folder never write the same
version number and a 2xx means the version is on disk. `RulesLog.refresh` re-reads the
file when its size or mtime changed (one `stat`), which is how the other workers of a
host, or replicas sharing the folder, pick up a new version.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from shelfwise.config import ShelfwiseConfig, hash_jsonable
from shelfwise.config.rules import RulesConfig
from shelfwise.errors import EventLogError
from shelfwise.stores.event_log import event_log_dir

RULES_FOLDER: Final = "rules"
RULES_FILE: Final = "rules.jsonl"
Source = Literal["api", "file"]


@dataclass(frozen=True)
class RulesVersion:
    """One version of the rules and its audit record."""

    version: int
    rules: RulesConfig
    at: str
    by: str
    source: Source
    comment: str
    sha256: str

    def record(self) -> dict[str, Any]:
        """The log line's object."""
        return {
            "version": self.version,
            "at": self.at,
            "by": self.by,
            "source": self.source,
            "comment": self.comment,
            "sha256": self.sha256,
            "rules": self.rules.model_dump(mode="json"),
        }


def rules_log_dir(config: ShelfwiseConfig) -> Path:
    """The rules log's folder: `rules/` next to the event log's folder."""
    return event_log_dir(config).parent / RULES_FOLDER


def rules_digest(rules: RulesConfig) -> str:
    """sha256 of the rules in canonical JSON (what tells a changed rules file)."""
    return hash_jsonable(rules.model_dump(mode="json"))


class RulesLog:
    """Append and read rules versions in one folder (see the module doc).

    Args:
        root: the folder (created on the first append).
    """

    def __init__(self, root: Path) -> None:
        """Point at the folder; nothing is read before `refresh`."""
        self.root = root
        self.path = root / RULES_FILE
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._versions: list[RulesVersion] = []

    def versions(self) -> list[RulesVersion]:
        """Every version, oldest first (as of the last `refresh` or `append`)."""
        return list(self._versions)

    def current(self) -> RulesVersion | None:
        """The latest version, or None when no rules were ever set."""
        return self._versions[-1] if self._versions else None

    def refresh(self) -> bool:
        """Re-read the file when it changed; True when it did."""
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return False
        stamp = (info.st_size, info.st_mtime_ns)
        if stamp == self._stamp:
            return False
        with self._lock:
            self._versions = _read(self.path)
            self._stamp = stamp
        return True

    def append(
        self,
        rules: RulesConfig,
        *,
        by: str,
        source: Source,
        comment: str = "",
        version: int | None = None,
        at: str | None = None,
    ) -> RulesVersion:
        """Write `rules` as the next version and return it (on disk when this returns).

        `version` (a replica-wide number from `RedisRulesBus`) is taken when it is above
        the log's last one; `at` keeps another replica's timestamp.

        Raises:
            EventLogError: the folder or file cannot be written (nothing was kept).
        """
        with self._lock:
            try:
                self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
                created = not self.path.exists()
                descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
                if created:  # the folder entry of a new file must survive a crash too
                    _fsync_folder(self.root)
            except OSError as exc:
                raise EventLogError(
                    f"cannot write the rules log {self.path}: {exc.strerror}; check the "
                    "folder's permissions and free space, then send the rules again"
                ) from exc
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX)
                text = _text(self.path)
                known = _parse(text)  # another worker may have appended
                last = known[-1].version if known else 0
                entry = RulesVersion(
                    version=max(last + 1, version or 0),
                    rules=rules,
                    at=at or datetime.now(tz=UTC).isoformat(timespec="seconds"),
                    by=by,
                    source=source,
                    comment=comment,
                    sha256=rules_digest(rules),
                )
                # ASCII escapes: a lone surrogate from a client's JSON cannot be UTF-8
                line = json.dumps(entry.record(), sort_keys=True) + "\n"
                if text and not text.endswith("\n"):  # a torn line: start a line of our own
                    line = "\n" + line
                os.write(descriptor, line.encode())
                os.fsync(descriptor)
            except OSError as exc:
                raise EventLogError(
                    f"cannot write the rules log {self.path}: {exc.strerror}; check free "
                    "space, then send the rules again"
                ) from exc
            finally:
                os.close(descriptor)  # closing releases the flock
            self._versions = [*known, entry]
            info = self.path.stat()
            self._stamp = (info.st_size, info.st_mtime_ns)
            return entry


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _read(path: Path) -> list[RulesVersion]:
    """Every well-formed version line of the file."""
    return _parse(_text(path))


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


def parse_record(record: dict[str, Any]) -> RulesVersion:
    """A log line's object as a version.

    Raises:
        ValueError, KeyError, TypeError: not a rules version record.
    """
    source = record["source"]
    if source not in ("api", "file"):
        raise ValueError(f"unknown rules source {source!r}")
    return RulesVersion(
        version=int(record["version"]),
        rules=RulesConfig.model_validate(record["rules"]),
        at=str(record["at"]),
        by=str(record["by"]),
        source=source,
        comment=str(record.get("comment", "")),
        sha256=str(record["sha256"]),
    )


def _parse(text: str) -> list[RulesVersion]:
    """Every well-formed version line; a torn or invalid line is skipped."""
    found: list[RulesVersion] = []
    for line in text.splitlines():
        try:
            found.append(parse_record(json.loads(line)))
        except (ValueError, KeyError, TypeError):
            continue  # a line cut by a crash mid-write; the versions before it stand
    return found


class RedisRulesBus:
    """The latest rules version shared by replicas through Redis.

    `<prefix>:rules:version` is the counter every replica numbers versions with (INCR),
    `<prefix>:rules` the latest version's log record (JSON). A replica writes its PUT to
    its own log, then publishes it; the others adopt it into their logs when they next
    look (`RulesBook`, at most once per second). redis-py is imported only here.

    Args:
        url: `redis://host:port/db` (optionally `?prefix=<project>`), as the online store.
        timeout: seconds a call may take.
    """

    def __init__(self, url: str, *, timeout: float = 0.5) -> None:
        """Connect lazily (redis-py connects on the first command)."""
        import redis

        from shelfwise.stores.redis_store import split_prefix

        address, prefix = split_prefix(url)
        self.key, self.counter = f"{prefix}:rules", f"{prefix}:rules:version"
        self._client: Any = redis.Redis.from_url(
            address, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        # what a call may raise: Redis down or slow, or a record that is not one
        self.errors: tuple[type[Exception], ...] = (
            redis.RedisError,
            OSError,
            ValueError,
            KeyError,
            TypeError,
        )

    def next_version(self, floor: int) -> int:
        """The next replica-wide version number, above `floor` (the local log's last)."""
        version = int(self._client.incr(self.counter))
        if version <= floor:  # Redis lost its counter (a flush): go on after the log
            version = floor + 1
            self._client.set(self.counter, version)
        return version

    def publish(self, entry: RulesVersion) -> None:
        """Make `entry` the latest version every replica adopts."""
        self._client.set(self.key, json.dumps(entry.record(), sort_keys=True))

    def latest(self) -> RulesVersion | None:
        """The latest published version; None when none was published."""
        raw = self._client.get(self.key)
        return None if raw is None else parse_record(json.loads(raw))

    def close(self) -> None:
        """Drop the connections."""
        self._client.close()


def rules_bus(url: str, *, timeout: float) -> RedisRulesBus | None:
    """The Redis bus when the online store is Redis (`redis://`, `rediss://`), else None."""
    if url.startswith(("redis://", "rediss://")):
        return RedisRulesBus(url, timeout=timeout)
    return None
