"""The audit page's data: recent catalog updates and merchandising-rules versions.

Catalog updates are the lines of the server's catalog log (`stores/catalog_log.py`,
written by `PUT /v1/items` and `DELETE /v1/items/{id}` before they answer); rules
versions are the rules log's (`stores/rules_log.py`), each with who, when, where from
and the rules' digest.
"""

from __future__ import annotations

import heapq
import json
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from shelfwise.serve.rules_book import RulesBook
from shelfwise.stores.catalog_log import CatalogChange
from shelfwise.stores.event_log import EVENT_LOG_SUFFIX as CATALOG_SUFFIX

MAX_ROWS: Final = 50


@dataclass(frozen=True)
class CatalogRow:
    """One item change."""

    at: str
    op: str
    raw_item_id: str
    fields: str
    origin: str


@dataclass(frozen=True)
class RulesRow:
    """One rules version."""

    version: int
    at: str
    by: str
    source: str
    comment: str
    sha256: str
    rules: list[dict[str, Any]]


def catalog_changes(log_root: Path) -> list[CatalogRow]:
    """The newest `MAX_ROWS` catalog changes, newest first.

    Reads the log's hour partitions newest first (`date=*/hour=*`, the layout of
    `stores/catalog_log.py`) until `MAX_ROWS` changes are in hand, plus one partition
    more for replicas' clocks that disagree across an hour's edge. Reading the whole
    log took 2.2 s per page at 100,000 changes (benchmarks/RESULTS.md, "Operator
    console"); now only the last lines of the newest partitions' files are parsed.
    """
    partitions = sorted(log_root.glob("date=*/hour=*"), reverse=True) if log_root.is_dir() else []
    changes: list[CatalogChange] = []
    spare = 1
    for partition in partitions:
        if len(changes) >= MAX_ROWS:
            if spare == 0:
                break
            spare -= 1
        for path in sorted(partition.glob(f"*{CATALOG_SUFFIX}")):
            changes.extend(_changes(path))
    ordered = heapq.nlargest(MAX_ROWS, changes, key=lambda change: change.stamp)
    return [
        CatalogRow(
            at=datetime.fromtimestamp(change.version / 1e9, tz=UTC).strftime(
                "%Y-%m-%d %H:%M:%S UTC"
            ),
            op=change.op,
            raw_item_id=change.raw_item_id,
            fields=", ".join(f"{name}={value!r}" for name, value in change.fields.items()),
            origin=change.origin,
        )
        for change in ordered
    ]


def _changes(path: Path) -> Iterator[CatalogChange]:
    """The newest `MAX_ROWS` changes of one log file.

    One file is written by one server process, whose versions only increase, so its
    newest changes are its last lines: only those are parsed (JSON parsing is what
    costs; a torn last line, or a line that is not a change, is skipped).
    """
    with path.open("rb") as handle:
        tail = deque(handle, maxlen=MAX_ROWS + 1)  # + a torn last line a crash left
    for raw in tail:
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        change = CatalogChange.from_record(record) if isinstance(record, dict) else None
        if change is not None:
            yield change


def rules_versions(book: RulesBook | None) -> list[RulesRow]:
    """The newest `MAX_ROWS` rules versions, newest first."""
    if book is None:
        return []
    book.current()  # picks up a version another worker wrote
    return [
        RulesRow(
            version=entry.version,
            at=entry.at,
            by=entry.by,
            source=entry.source,
            comment=entry.comment,
            sha256=entry.sha256[:12],
            rules=[
                rule.model_dump(mode="json", include={"id", "action", "endpoints"})
                for rule in entry.rules.rules
            ],
        )
        for entry in reversed(book.log.versions()[-MAX_ROWS:])
    ]
