"""`validate_frames`: the whole validation as a pure function of DataFrames."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import polars as pl

from shelfwise.config import ShelfwiseConfig
from shelfwise.contracts import (
    EVENT_SCHEMA,
    QUARANTINE_SCHEMA,
    QUERY_SCHEMA,
    RAW_ITEM_ID,
    REASON,
    ROW_NUMBER,
    SOURCE,
    SOURCE_FILE,
    TIMESTAMP,
)
from shelfwise.errors import PipelineError
from shelfwise.validate._casts import TimestampUnit
from shelfwise.validate._checks import (
    EventRules,
    catalog_output,
    check_catalog,
    check_events,
    check_queries,
    derived_catalog,
    events_output,
    queries_output,
)
from shelfwise.validate._stages import Checked, raw_columns, to_quarantine, with_provenance

SOURCE_ORDER: Final = ("catalog", "events", "queries")


@dataclass(frozen=True)
class ValidationResult:
    """Validated tables, every rejected row, and the report.

    `report` holds, per source, rows_in, accepted, quarantined, merged, by_reason and
    rejected_share, plus catalog_derived, catalog_items, over_threshold and warnings.
    For every source rows_in == accepted + quarantined + merged.
    """

    catalog: pl.DataFrame  # CATALOG_SCHEMA
    events: pl.DataFrame  # EVENT_SCHEMA
    queries: pl.DataFrame  # QUERY_SCHEMA
    quarantine: pl.DataFrame  # QUARANTINE_SCHEMA
    report: dict[str, Any]

    @property
    def catalog_derived(self) -> bool:
        """True when the catalog was built from the events' items."""
        return bool(self.report["catalog_derived"])


def validate_frames(
    config: ShelfwiseConfig,
    *,
    catalog: pl.DataFrame | None = None,
    events: pl.DataFrame | None = None,
    queries: pl.DataFrame | None = None,
    parse_quarantine: pl.DataFrame | None = None,
    warnings: Sequence[str] = (),
    timestamp_unit: TimestampUnit | None = None,
    now: float | None = None,
) -> ValidationResult:
    """Type-cast, check and de-duplicate the ingested sources. No IO.

    Args:
        config: thresholds and event settings come from `config.data`.
        catalog: ingested catalog rows (shelfwise column names, values as read), or
            None when no catalog is configured: one is then derived from the events.
        events: ingested event rows, or None.
        queries: ingested labelled query rows, or None.
        parse_quarantine: rows ingest could not parse (QUARANTINE_SCHEMA); they count
            toward each source's rows_in and quarantine.
        warnings: warnings from ingest, carried into the report.
        timestamp_unit: overrides `data.events.timestamp_unit` (ingest resolves
            "auto" to "ordinal" for sequence files).
        now: the current unix time for the future-timestamp check (default: now).

    Raises:
        PipelineError: the row counts do not add up (a bug, never bad data).
    """
    data = config.data
    now = time.time() if now is None else now
    notes = list(warnings)
    inputs = {"catalog": catalog, "events": events, "queries": queries}
    checked: dict[str, Checked] = {}
    catalog_ids: pl.Series | None = None
    catalog_out: pl.DataFrame | None = None
    if catalog is not None:
        checked["catalog"] = check_catalog(catalog)
        catalog_out = catalog_output(checked["catalog"])
        catalog_ids = catalog_out[RAW_ITEM_ID]
    if events is not None:
        if TIMESTAMP not in events.columns:
            notes.append(
                "events have no timestamp column: file order is used as an ordinal time, "
                "so time-based splits follow the order of the rows"
            )
        rules = EventRules.from_config(data, unit=timestamp_unit, now=now)
        checked["events"] = check_events(events, rules, catalog_ids)
    if queries is not None:
        checked["queries"] = check_queries(queries, catalog_ids)
    if catalog_out is None:
        catalog_out = derived_catalog(checked.get("events"), checked.get("queries"))
        notes.append(
            f"no catalog configured: {catalog_out.height:,} items taken from the events"
            + (" and queries" if "queries" in checked else "")
            + " (no titles unless the events carry them; search needs a catalog)"
        )
    events_out = events_output(checked["events"]) if "events" in checked else _empty(EVENT_SCHEMA)
    queries_out = (
        queries_output(checked["queries"]) if "queries" in checked else _empty(QUERY_SCHEMA)
    )
    quarantine = _all_quarantine(parse_quarantine, checked, inputs)
    outputs = {"catalog": catalog_out, "events": events_out, "queries": queries_out}
    parse_rejected = _parse_rejected_counts(parse_quarantine)
    sources = {
        kind: _source_counts(
            kind,
            rows_read=_height(inputs[kind]) + parse_rejected.get(kind, 0),
            accepted=outputs[kind].height,
            merged=checked[kind].merged,
            quarantine=quarantine,
        )
        for kind in SOURCE_ORDER
        if kind in checked
    }
    over = [k for k, s in sources.items() if s["rejected_share"] > data.max_rejected_share]
    report: dict[str, Any] = {
        "sources": sources,
        "catalog_derived": catalog is None,
        "catalog_items": catalog_out.height,
        "events": events_out.height,
        "queries": queries_out.height,
        "max_rejected_share": data.max_rejected_share,
        "over_threshold": over,
        "warnings": notes,
    }
    return ValidationResult(catalog_out, events_out, queries_out, quarantine, report)


def _empty(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


def _all_quarantine(
    parse_quarantine: pl.DataFrame | None,
    checked: dict[str, Checked],
    inputs: dict[str, pl.DataFrame | None],
) -> pl.DataFrame:
    parts = [] if parse_quarantine is None else [parse_quarantine.cast(QUARANTINE_SCHEMA)]  # type: ignore[arg-type]
    for kind, result in checked.items():
        frame = inputs[kind]
        columns = raw_columns(with_provenance(frame)) if frame is not None else []
        parts.append(to_quarantine(result, kind, columns))
    if not parts:
        return _empty(QUARANTINE_SCHEMA)
    order = {kind: rank for rank, kind in enumerate(SOURCE_ORDER)}
    combined = pl.concat(parts)
    return combined.sort(
        pl.col(SOURCE).replace_strict(order, default=len(order), return_dtype=pl.Int64),
        SOURCE_FILE,
        ROW_NUMBER,
        nulls_last=True,
        maintain_order=True,
    )


def _height(frame: pl.DataFrame | None) -> int:
    return 0 if frame is None else frame.height


def _parse_rejected_counts(parse_quarantine: pl.DataFrame | None) -> dict[str, int]:
    if parse_quarantine is None or parse_quarantine.is_empty():
        return {}
    counts = parse_quarantine.group_by(SOURCE).len()
    return dict(zip(counts[SOURCE].to_list(), counts["len"].to_list(), strict=True))


def _source_counts(
    kind: str, *, rows_read: int, accepted: int, merged: int, quarantine: pl.DataFrame
) -> dict[str, Any]:
    """Counts for one source; raises PipelineError when they do not add up."""
    rows_in = rows_read
    mine = quarantine.filter(pl.col(SOURCE) == kind)
    counts = mine.group_by(REASON).len().sort(REASON)
    by_reason = dict(zip(counts[REASON].to_list(), counts["len"].to_list(), strict=True))
    if rows_in != accepted + mine.height + merged:
        raise PipelineError(
            f"validate lost track of {kind} rows: {rows_in:,} in, but {accepted:,} accepted "
            f"+ {mine.height:,} quarantined + {merged:,} merged; this is a bug in "
            f"shelfwise, please report it with the data's shape"
        )
    return {
        "rows_in": rows_in,
        "accepted": accepted,
        "quarantined": mine.height,
        "merged": merged,
        "by_reason": by_reason,
        "rejected_share": round(mine.height / rows_in, 6) if rows_in else 0.0,
    }
