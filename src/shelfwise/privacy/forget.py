"""The forget list and the audit trail, under `<home>/privacy/`, and forgetting in files.

* `forget.jsonl`: one line per forgotten user, `{"pseudonym", "at", "via"}`. The next
  run's ingest drops their events (counted as `forgotten-user`), whichever input holds
  them: the shop's files, the event log, a retrain's merged events.
* `audit.jsonl`: one line per privacy action, `{"at", "actor", "action", "pseudonym",
  "detail"}`: who forgot whom, when, and what was removed at once.

Both hold pseudonyms only, never a raw id: an entry is HMAC(key, raw id), which needs
`SHELFWISE_PRIVACY_KEY` whether pseudonymisation is on or off (with it off, ingest hashes
each raw id only to compare it with the list). Lines are appended with one `write` on an
`O_APPEND` descriptor and fsync'd, so the server's replicas and the CLI can append to
the same file; files are 0600 and the folder 0700, as the event log.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import polars as pl

from shelfwise._internal.artifacts import fsync_path
from shelfwise.privacy.keys import Pseudonymizer, is_pseudonym

PRIVACY_DIR: Final = "privacy"
FORGET_FILE: Final = "forget.jsonl"
AUDIT_FILE: Final = "audit.jsonl"
FORGOTTEN_USER: Final = "forgotten-user"  # the validation report's reason code


def privacy_dir(state_dir: Path) -> Path:
    """Where the forget list and the audit trail live: `<home>/privacy`."""
    return state_dir / PRIVACY_DIR


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _append_lines(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Append JSON lines in one write, then fsync (and the folder entry of a new file)."""
    data = "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows).encode("utf-8")
    if not data:
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        fsync_path(path.parent)


def _read_lines(path: Path) -> Iterator[dict[str, Any]]:
    if not path.is_file():
        return
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # a torn last line of a crashed writer
                continue
            if isinstance(row, dict):
                yield row


class ForgetList:
    """The users to forget (by pseudonym) and the audit trail, in one folder.

    Args:
        folder: `privacy_dir(state_dir)`.
    """

    def __init__(self, folder: Path) -> None:
        """Point at `folder` (created on the first write)."""
        self.folder = folder

    @property
    def path(self) -> Path:
        """The forget list file."""
        return self.folder / FORGET_FILE

    @property
    def audit_path(self) -> Path:
        """The audit trail file."""
        return self.folder / AUDIT_FILE

    def add(self, pseudonyms: Iterable[str], *, via: str) -> list[str]:
        """Record users to forget; return those not listed before (in order)."""
        known = self.pseudonyms()
        new = list(dict.fromkeys(p for p in pseudonyms if p not in known))
        at = _now()
        _append_lines(self.path, ({"pseudonym": p, "at": at, "via": via} for p in new))
        return new

    def pseudonyms(self) -> frozenset[str]:
        """Every forgotten user's pseudonym."""
        return frozenset(
            str(row["pseudonym"]) for row in _read_lines(self.path) if "pseudonym" in row
        )

    def digest(self) -> str:
        """sha256 of the sorted list: a run's ingest cache key changes with the list."""
        return hashlib.sha256("\n".join(sorted(self.pseudonyms())).encode()).hexdigest()

    def audit(self, *, actor: str, action: str, pseudonym: str, detail: dict[str, Any]) -> None:
        """Append one audit record (never a raw id: callers pass the pseudonym)."""
        row = {"at": _now(), "actor": actor, "action": action, "pseudonym": pseudonym}
        _append_lines(self.audit_path, [{**row, "detail": detail}])

    def audit_records(self) -> list[dict[str, Any]]:
        """Every audit record, oldest first."""
        return list(_read_lines(self.audit_path))


def forgotten_values(
    values: Iterable[str], forgotten: frozenset[str], pseudonymizer: Pseudonymizer | None
) -> list[str]:
    """The values (raw ids or pseudonyms) that belong to forgotten users."""
    hits: list[str] = []
    for value in values:
        if value in forgotten:
            hits.append(value)
        elif pseudonymizer is not None and not is_pseudonym(value):
            if pseudonymizer(value) in forgotten:
                hits.append(value)
    return hits


def pseudonymize_column(
    frame: pl.DataFrame, column: str, pseudonymizer: Pseudonymizer
) -> pl.DataFrame:
    """`frame` with `column`'s values as pseudonyms (text; values that are pseudonyms
    already are kept). Each distinct id is hashed once: ~1 us per id."""
    if column not in frame.columns:
        return frame
    text = frame[column].cast(pl.String)
    old = text.drop_nulls().unique().to_list()
    new = [pseudonymizer.keep_or_hash(value) for value in old]
    return frame.with_columns(text.replace(old, new).alias(column))


def drop_forgotten(
    frame: pl.DataFrame,
    column: str,
    forgotten: frozenset[str],
    pseudonymizer: Pseudonymizer | None,
) -> tuple[pl.DataFrame, int]:
    """`frame` without the rows of forgotten users, and how many rows were dropped."""
    if not forgotten or column not in frame.columns or frame.is_empty():
        return frame, 0
    text = frame[column].cast(pl.String)
    hits = forgotten_values(text.drop_nulls().unique().to_list(), forgotten, pseudonymizer)
    if not hits:
        return frame, 0
    mask = text.is_in(hits).fill_null(value=False)
    return frame.filter(~mask), int(mask.sum())


def forget_in_parquet(
    path: Path, column: str, forgotten: frozenset[str], pseudonymizer: Pseudonymizer | None
) -> int:
    """Rewrite a Parquet file without forgotten users' rows (atomically); rows removed."""
    frame = pl.read_parquet(path)
    kept, dropped = drop_forgotten(frame, column, forgotten, pseudonymizer)
    if dropped:
        tmp = path.with_name(f".{path.name}.forget-{os.getpid()}")
        kept.write_parquet(tmp)
        os.replace(tmp, path)
    return dropped


def forget_in_jsonl(
    path: Path, column: str, forgotten: frozenset[str], pseudonymizer: Pseudonymizer | None
) -> int:
    """Rewrite a JSON-lines file without forgotten users' lines (atomically, mode kept);
    lines that do not parse are kept as they are. Returns the lines removed."""
    kept: list[str] = []
    dropped = 0
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                kept.append(line)
                continue
            value = row.get(column) if isinstance(row, dict) else None
            if isinstance(value, str) and forgotten_values([value], forgotten, pseudonymizer):
                dropped += 1
            else:
                kept.append(line)
    if dropped:
        tmp = path.with_name(f".{path.name}.forget-{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, path.stat().st_mode & 0o777)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.writelines(kept)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    return dropped
