"""The whole validation over batched sources (`validate_sources`) and over DataFrames
(`validate_frames`, the same logic with in-memory inputs and outputs)."""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import polars as pl

from shelfwise.compute import Executor
from shelfwise.config import ShelfwiseConfig
from shelfwise.contracts import (
    CATALOG_SCHEMA,
    EVENT_SCHEMA,
    QUARANTINE_SCHEMA,
    QUERY_SCHEMA,
    RAW_ITEM_ID,
    REASON,
    ROW_NUMBER,
    SOURCE,
    SOURCE_FILE,
    TIMESTAMP,
    QuarantineReason,
)
from shelfwise.errors import PipelineError
from shelfwise.validate._bots import FAKE_TRAFFIC_REASONS, FakeTrafficCheck
from shelfwise.validate._casts import TimestampUnit, timestamp_kinds
from shelfwise.validate._checks import (
    CATALOG_CONTENT,
    CATALOG_KEYS,
    EVENT_KEYS,
    QUERY_KEYS,
    DerivedCatalog,
    EventRules,
    catalog_duplicate_detail,
    catalog_output,
    catalog_rows,
    event_duplicate_detail,
    event_rows,
    events_output,
    queries_output,
    query_duplicate_detail,
    query_rows,
)
from shelfwise.validate._engine import (
    HEAVY_EVENT_COLUMNS,
    PartSource,
    Sink,
    SourcePlan,
    SourceTally,
    bucket_count,
    check_source,
)
from shelfwise.validate._notes import NO_TIME_COLUMN, dominant_id_warnings, time_note
from shelfwise.validate._parts import part_blocks
from shelfwise.validate._report import fake_traffic_report
from shelfwise.validate._stages import typed

SOURCE_ORDER: Final = ("catalog", "events", "queries")


@dataclass(frozen=True)
class ValidationResult:
    """Validated tables, every rejected row, and the report.

    `report` holds, per source, rows_in, accepted, quarantined, merged, by_reason and
    rejected_share, plus catalog_derived, catalog_items, over_threshold, warnings and
    notes. For every source rows_in == accepted + quarantined + merged.
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


@dataclass
class ListSink:
    """A sink that keeps every batch in memory."""

    frames: list[pl.DataFrame] = field(default_factory=list)

    def write(self, frame: pl.DataFrame) -> None:
        """Keep `frame`."""
        self.frames.append(frame)

    def frame(self, schema: dict[str, pl.DataType]) -> pl.DataFrame:
        """Everything written, in order."""
        return pl.concat([pl.DataFrame(schema=schema), *self.frames])


class _CountingSink:
    """Passes quarantine rows on and counts them per source and reason."""

    def __init__(self, inner: Sink) -> None:
        self.inner = inner
        self.counts: Counter[tuple[str, str]] = Counter()

    def write(self, frame: pl.DataFrame) -> None:
        if frame.is_empty():
            return
        self.inner.write(frame)
        for source, reason, count in frame.group_by(SOURCE, REASON).len().iter_rows():
            self.counts[(source, reason)] += count


@dataclass(frozen=True)
class Sinks:
    """Where validate's outputs go."""

    catalog: Sink
    events: Sink
    queries: Sink
    quarantine: Sink  # unsorted: see `quarantine_order`


@dataclass(frozen=True)
class Sources:
    """validate's inputs.

    Every source comes as batches (the catalog too: its accepted ids, not its rows,
    stay in memory for the unknown-item check). `parse_quarantine` yields the rows
    ingest could not parse (QUARANTINE_SCHEMA);
    `expected_rows` sizes the buckets; `time_column` is the events' column ingest took
    the timestamp from (for the report). `part_files` names the part files behind
    each source (ingest's folders), which an executor reads where it runs.
    """

    catalog: PartSource | None = None
    events: PartSource | None = None
    queries: PartSource | None = None
    parse_quarantine: PartSource | None = None
    expected_rows: dict[str, int] = field(default_factory=dict)
    time_column: str | None = None
    time_chosen_by: str = ""  # e.g. "its name looks like a time", for the report
    part_files: dict[str, list[Path]] = field(default_factory=dict)


def quarantine_order(frame: pl.LazyFrame) -> pl.LazyFrame:
    """The quarantine sorted by source (catalog, events, queries), file and row."""
    order = {kind: rank for rank, kind in enumerate(SOURCE_ORDER)}
    return frame.sort(
        pl.col(SOURCE).replace_strict(order, default=len(order), return_dtype=pl.Int64),
        SOURCE_FILE,
        ROW_NUMBER,
        nulls_last=True,
        maintain_order=True,
    )


def validate_sources(
    config: ShelfwiseConfig,
    sources: Sources,
    sinks: Sinks,
    *,
    work: Path,
    warnings: Sequence[str] = (),
    timestamp_unit: TimestampUnit | None = None,
    now: float | None = None,
    executor: Executor | None = None,
) -> dict[str, Any]:
    """Type-cast, check and de-duplicate the sources into `sinks`; return the report.

    `executor` (with `sources.part_files`) runs each source's row checks where it says
    (`compute.engine: ray`: Ray Data over the part files); the cross-row checks, the
    outputs and the counts stay here, so the result is the same on every engine.

    Raises:
        PipelineError: the row counts do not add up (a bug, never bad data).
    """
    data = config.data
    now = time.time() if now is None else now
    notes = list(warnings)
    quarantine = _CountingSink(sinks.quarantine)
    parse_rejected: Counter[str] = Counter()
    for frame in sources.parse_quarantine() if sources.parse_quarantine else iter(()):
        quarantine.write(frame.cast(QUARANTINE_SCHEMA))  # type: ignore[arg-type]
        parse_rejected.update(dict(frame.group_by(SOURCE).len().iter_rows()))
    rows_checked: dict[str, int] = {}
    accepted: dict[str, int] = {}
    catalog_ids: pl.Series | None = None
    derived = DerivedCatalog() if sources.catalog is None else None
    tallies: dict[str, SourceTally] = {}
    rules = EventRules.from_config(data, unit=timestamp_unit, now=now)
    # Without real time (ordinal or file order) no rate or gap means anything.
    real_time = rules.unit != "ordinal" and sources.time_column is not None
    traffic = (
        FakeTrafficCheck(data.fake_traffic) if data.fake_traffic.enabled and real_time else None
    )
    plans = {
        "catalog": _catalog_plan(config),
        "events": _event_plan(rules, traffic),
        "queries": _query_plan(config),
    }
    parts = {"catalog": sources.catalog, "events": sources.events, "queries": sources.queries}
    sinks_of = {"catalog": sinks.catalog, "events": sinks.events, "queries": sinks.queries}
    for kind in SOURCE_ORDER:
        source = parts[kind]
        if source is None:
            continue
        ids: list[pl.Series] = []
        on_accepted: Callable[[pl.DataFrame], None]
        if kind == "catalog":
            on_accepted = _collect_ids(ids)
        elif derived is not None:
            on_accepted = derived.add
        else:
            on_accepted = _ignore
        files = sources.part_files.get(kind)
        blocks = part_blocks(files) if executor is not None and files is not None else None
        with tempfile.TemporaryDirectory(dir=work) as folder:
            tallies[kind] = check_source(
                plans[kind],
                source,
                catalog_ids=catalog_ids if kind != "catalog" else None,
                work=Path(folder),
                buckets=bucket_count(sources.expected_rows.get(kind, 0)),
                quarantine=quarantine,
                output=sinks_of[kind],
                on_accepted=on_accepted,
                blocks=blocks,
                executor=executor,
            )
        if kind == "catalog":  # the accepted ids: the unknown-item check of the others
            catalog_ids = pl.concat([pl.Series(dtype=pl.String), *ids])
        rows_checked[kind] = tallies[kind].rows
        accepted[kind] = tallies[kind].accepted
    if "events" in tallies:
        notes.extend(_event_notes(tallies["events"], sources, rules, data.dominant_id_share))
    if derived is not None:
        sinks.catalog.write(derived.frame())
        notes.append(
            f"no catalog configured: {derived.height:,} items taken from the events"
            + (" and queries" if "queries" in tallies else "")
            + " (no titles unless the events carry them; search needs a catalog)"
        )
    catalog_items = accepted.get("catalog", derived.height if derived is not None else 0)
    counts = {
        kind: _source_counts(
            kind,
            rows_in=rows_checked[kind] + parse_rejected[kind],
            accepted=accepted[kind],
            merged=tallies[kind].merged,
            quarantined=quarantine.counts,
        )
        for kind in SOURCE_ORDER
        if kind in rows_checked
    }
    over = [k for k, s in counts.items() if s["rejected_share"] > data.max_rejected_share]
    time_line = _time_line(tallies.get("events"), sources, rules)
    fake = fake_traffic_report(traffic, counts.get("events"), data.fake_traffic)
    if fake.get("warning"):
        notes.append(fake["warning"])
    return {
        "sources": counts,
        "catalog_derived": sources.catalog is None,
        "catalog_items": catalog_items,
        "events": accepted.get("events", 0),
        "queries": accepted.get("queries", 0),
        "max_rejected_share": data.max_rejected_share,
        "over_threshold": over,
        "warnings": notes,
        "notes": [time_line] if time_line else [],
        "fake_traffic": fake,
    }


def _collect_ids(ids: list[pl.Series]) -> Callable[[pl.DataFrame], None]:
    def collect(accepted: pl.DataFrame) -> None:
        ids.append(accepted[typed(RAW_ITEM_ID)])

    return collect


def _ignore(accepted: pl.DataFrame) -> None:
    return None


def _catalog_plan(config: ShelfwiseConfig) -> SourcePlan:
    limits = config.data.limits
    return SourcePlan(
        kind="catalog",
        rows=lambda raw, first: catalog_rows(raw, limits),
        keys=CATALOG_KEYS,
        duplicate_reason=QuarantineReason.DUPLICATE_ITEM,
        duplicate_detail=catalog_duplicate_detail(),
        output=catalog_output,
        content=CATALOG_CONTENT,
    )


def _event_plan(rules: EventRules, traffic: FakeTrafficCheck | None) -> SourcePlan:
    return SourcePlan(
        kind="events",
        rows=lambda raw, first: event_rows(raw, rules, first_seq=first),
        keys=EVENT_KEYS,
        duplicate_reason=QuarantineReason.DUPLICATE_EVENT,
        duplicate_detail=event_duplicate_detail(),
        output=events_output,
        heavy_columns=HEAVY_EVENT_COLUMNS,
        profile=lambda raw: (
            timestamp_kinds(raw, TIMESTAMP, rules.unit)
            if TIMESTAMP in raw.columns
            else {"missing": raw.height}
        ),
        user_check=traffic,
    )


def _query_plan(config: ShelfwiseConfig) -> SourcePlan:
    limits = config.data.limits
    return SourcePlan(
        kind="queries",
        rows=lambda raw, first: query_rows(raw, limits),
        keys=QUERY_KEYS,
        duplicate_reason=QuarantineReason.DUPLICATE_QUERY_LABEL,
        duplicate_detail=query_duplicate_detail(),
        output=queries_output,
    )


def _event_notes(
    tally: SourceTally, sources: Sources, rules: EventRules, share: float
) -> list[str]:
    """Warnings about the events: dominant ids, no time column, a guessed time column."""
    notes = dominant_id_warnings(tally.heavy, tally.accepted, share)
    line = _time_line(tally, sources, rules)
    guessed = sources.time_column is not None and sources.time_column.lower() != TIMESTAMP
    if line == NO_TIME_COLUMN or (line and guessed):
        notes.append(line)
    return notes


def _time_line(tally: SourceTally | None, sources: Sources, rules: EventRules) -> str:
    if tally is None or not tally.rows:
        return ""
    return time_note(
        sources.time_column, sources.time_chosen_by, tally.profile, rules.unit, tally.rows
    )


def _source_counts(
    kind: str,
    *,
    rows_in: int,
    accepted: int,
    merged: int,
    quarantined: Counter[tuple[str, str]],
) -> dict[str, Any]:
    """Counts for one source; raises PipelineError when they do not add up."""
    by_reason = {
        reason: count for (source, reason), count in sorted(quarantined.items()) if source == kind
    }
    rejected = sum(by_reason.values())
    flagged = sum(by_reason.get(reason.value, 0) for reason in FAKE_TRAFFIC_REASONS)
    if rows_in != accepted + rejected + merged:
        raise PipelineError(
            f"validate lost track of {kind} rows: {rows_in:,} in, but {accepted:,} accepted "
            f"+ {rejected:,} quarantined + {merged:,} merged; this is a bug in "
            f"shelfwise, please report it with the data's shape"
        )
    return {
        "rows_in": rows_in,
        "accepted": accepted,
        "quarantined": rejected,
        "merged": merged,
        "by_reason": by_reason,
        # Suspected fake traffic is not broken data: it does not count toward
        # data.max_rejected_share (data.fake_traffic.warn_share warns instead).
        "rejected_share": round((rejected - flagged) / rows_in, 6) if rows_in else 0.0,
    }


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
    """Type-cast, check and de-duplicate sources held in memory.

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
    outputs = {name: ListSink() for name in ("catalog", "events", "queries", "quarantine")}
    sources = Sources(
        catalog=_once(catalog),
        events=_once(events),
        queries=_once(queries),
        parse_quarantine=_once(parse_quarantine),
        expected_rows={
            "catalog": _height(catalog),
            "events": _height(events),
            "queries": _height(queries),
        },
        time_column=TIMESTAMP if events is not None and TIMESTAMP in events.columns else None,
    )
    with tempfile.TemporaryDirectory() as work:
        report = validate_sources(
            config,
            sources,
            Sinks(**outputs),
            work=Path(work),
            warnings=warnings,
            timestamp_unit=timestamp_unit,
            now=now,
        )
    quarantine = quarantine_order(outputs["quarantine"].frame(QUARANTINE_SCHEMA).lazy())
    return ValidationResult(
        outputs["catalog"].frame(CATALOG_SCHEMA),
        outputs["events"].frame(EVENT_SCHEMA),
        outputs["queries"].frame(QUERY_SCHEMA),
        quarantine.collect(),
        report,
    )


def _once(frame: pl.DataFrame | None) -> PartSource | None:
    if frame is None:
        return None

    def parts() -> Iterator[pl.DataFrame]:
        yield frame

    return parts


def _height(frame: pl.DataFrame | None) -> int:
    return 0 if frame is None else frame.height
