"""The durable catalog log: item updates made online, kept so a retrain sees them too.

`PUT /v1/items` and `DELETE /v1/items/{id}` write each request's changes here, as one
all-or-nothing fsync'd batch, before they answer 2xx; a server that starts replays the
log (`read_catalog_changes`) before it answers, and the next batch run reads it as
catalog overrides (`catalog_overrides`, see README "Catalog updates").

It is the event log's machinery (`EventLog`: 0600 files, Hive-style hour partitions,
truncation of a failed batch) with its own columns and file names::

    <root>/date=2025-05-01/hour=13/catalog-20250501T130502-<pid>-<token>-0000.jsonl

`catalog_log_dir(config)` finds it: `serve.catalog_log_dir`, else `<state dir>/catalog`.

Each line is one `CatalogChange`: `op` (upsert or delete), `raw_item_id`, `fields`
(only the fields the request set), `version` (nanoseconds since the epoch on the
server that received it) and `origin` (that server's token). Changes merge field by
field, the highest (version, origin) winning (`shelfwise.runtime.live_catalog`), so
replaying the log and a Redis stream in any order, or twice, gives the same catalog.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from shelfwise.contracts import RAW_ITEM_ID
from shelfwise.stores.event_log import EventLog, iter_event_records

if TYPE_CHECKING:
    import polars as pl

    from shelfwise.config import ShelfwiseConfig

CATALOG_FOLDER: Final = "catalog"
CATALOG_LOG_COLUMNS: Final = ("op", RAW_ITEM_ID, "fields", "version", "origin")
UPSERT: Final = "upsert"
DELETE: Final = "delete"
# The fields an upsert may set; `attributes` is a flat JSON object of the shop's own.
ITEM_FIELDS: Final = (
    "title",
    "description",
    "category",
    "brand",
    "price",
    "in_stock",
    "attributes",
    "hidden",
)

Operation = Literal["upsert", "delete"]


@dataclass(frozen=True)
class CatalogChange:
    """One item's change as a server received it.

    Attributes:
        op: "upsert" (set `fields`) or "delete" (the item leaves every endpoint).
        raw_item_id: the shop's item id.
        fields: the fields the request set (a subset of `ITEM_FIELDS`).
        version: nanoseconds since the epoch when the receiving server accepted it.
        origin: the receiving server's token (ties between equal versions).
    """

    op: Operation
    raw_item_id: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    version: int = 0
    origin: str = ""

    @property
    def stamp(self) -> tuple[int, str]:
        """The order of changes: a later stamp wins, field by field."""
        return (self.version, self.origin)

    def record(self) -> dict[str, Any]:
        """The change as one log line's JSON object."""
        return {
            "op": self.op,
            RAW_ITEM_ID: self.raw_item_id,
            "fields": dict(self.fields),
            "version": self.version,
            "origin": self.origin,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> CatalogChange | None:
        """A change from a log line or stream entry; None for a line that is not one."""
        op = record.get("op")
        raw = record.get(RAW_ITEM_ID)
        fields = record.get("fields") or {}
        version = record.get("version")
        if op not in (UPSERT, DELETE) or not isinstance(raw, str) or not raw:
            return None
        if not isinstance(fields, dict) or not isinstance(version, int):
            return None
        known = {name: value for name, value in fields.items() if name in ITEM_FIELDS}
        return cls(op, raw, known, version, str(record.get("origin") or ""))


class ChangeClock:
    """Versions for the changes one server accepts: strictly increasing nanoseconds.

    Two batches in the same nanosecond (or a clock stepping back) still get increasing
    versions, so a later request on one server always wins over an earlier one.
    """

    def __init__(self) -> None:
        """Start from now, with a random origin token for this process."""
        self.origin = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        """A version above every one this clock gave before."""
        with self._lock:
            self._last = max(self._last + 1, time.time_ns())
            return self._last


def catalog_log_dir(config: ShelfwiseConfig) -> Path:
    """The catalog log's folder: `serve.catalog_log_dir`, else `<state dir>/catalog`."""
    if config.serve.catalog_log_dir is not None:
        return config.serve.catalog_log_dir
    return config.state_dir() / CATALOG_FOLDER


def open_catalog_log(root: Path, *, fsync: bool = True) -> EventLog:
    """The writer of the catalog log under `root` (created on the first write)."""
    return EventLog(root, fsync=fsync, columns=CATALOG_LOG_COLUMNS, file_prefix="catalog")


def append_changes(log: EventLog, changes: Sequence[CatalogChange]) -> int:
    """Write changes as one durable, all-or-nothing batch.

    Raises:
        EventLogError: nothing of the batch was written (the disk is full, ...).
    """
    return log.append([change.record() for change in changes])


def read_catalog_changes(root: Path) -> Iterator[CatalogChange]:
    """Every change under `root`, file by file (lines that are not changes skipped)."""
    for record in iter_event_records(root):
        change = CatalogChange.from_record(record)
        if change is not None:
            yield change


def catalog_overrides(root: Path) -> pl.DataFrame:
    """The log folded into one row per item, for the batch side to merge as overrides.

    Columns: raw_item_id, deleted, version and every `ITEM_FIELDS` column (null where
    no change set it; `attributes` as JSON text). An item's fields are the latest value
    each was set to; `deleted` is true when its latest upsert-or-delete is a delete.
    """
    import json

    import polars as pl  # here so that `import shelfwise.stores` stays light

    latest: dict[str, dict[str, tuple[tuple[int, str], Any]]] = {}
    for change in read_catalog_changes(root):
        entry = latest.setdefault(change.raw_item_id, {})
        values = {"deleted": change.op == DELETE, **change.fields}
        for name, value in values.items():
            if name not in entry or entry[name][0] < change.stamp:
                entry[name] = (change.stamp, value)
    rows = []
    for raw, entry in latest.items():
        row: dict[str, Any] = {RAW_ITEM_ID: raw}
        row["deleted"] = bool(entry["deleted"][1]) if "deleted" in entry else False
        row["version"] = max(stamp[0] for stamp, _ in entry.values())
        for name in ITEM_FIELDS:
            value = entry[name][1] if name in entry else None
            row[name] = (
                json.dumps(value, ensure_ascii=False)
                if name == "attributes" and value is not None
                else value
            )
        rows.append(row)
    schema = {
        RAW_ITEM_ID: pl.String(),
        "deleted": pl.Boolean(),
        "version": pl.Int64(),
        "title": pl.String(),
        "description": pl.String(),
        "category": pl.String(),
        "brand": pl.String(),
        "price": pl.Float64(),
        "in_stock": pl.Boolean(),
        "attributes": pl.String(),
        "hidden": pl.Boolean(),
    }
    return pl.DataFrame(rows, schema=schema, strict=False)


def merge_catalog_overrides(catalog: pl.DataFrame, overrides: pl.DataFrame) -> pl.DataFrame:
    """The catalog as the server served it: `catalog_overrides` applied to a catalog frame.

    Set fields replace the catalog's values (a column the catalog lacks is added);
    items the catalog lacks are appended; deleted and hidden items are dropped, as the
    server stopped serving them. `attributes` replace the item's whole attributes text.

    Args:
        catalog: the catalog with `raw_item_id` and any of the `ITEM_FIELDS` columns.
        overrides: `catalog_overrides(<log dir>)`.

    Returns:
        One row per item, catalog order first, then new items in log order.
    """
    import polars as pl

    fields = [name for name in ITEM_FIELDS if name != "hidden"]
    base = catalog.with_columns(pl.col(RAW_ITEM_ID).cast(pl.String()))
    for name in fields:
        if name not in base.columns:
            base = base.with_columns(pl.lit(None, dtype=overrides.schema[name]).alias(name))
    updates = overrides.select(
        RAW_ITEM_ID, "deleted", "hidden", *[pl.col(n).alias(f"{n}__new") for n in fields]
    )
    # a null in the overrides means "not set by any change" unless the field was set to
    # null; the log folds both to null, so null keeps the catalog's value (documented)
    merged = base.join(updates, on=RAW_ITEM_ID, how="full", coalesce=True, maintain_order="left")
    merged = merged.with_columns(
        [
            pl.coalesce(pl.col(f"{n}__new"), pl.col(n).cast(overrides.schema[n])).alias(n)
            for n in fields
        ]
    )
    keep = ~(pl.col("deleted").fill_null(False) | pl.col("hidden").fill_null(False))
    columns = list(dict.fromkeys([*catalog.columns, *fields]))
    return merged.filter(keep).select(columns)
