"""The validate stage: stream ingest's parts through the checks into the contract tables."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final, cast

import polars as pl
import pyarrow.parquet as pq

from shelfwise._internal.artifacts import atomic_write_json
from shelfwise._internal.stage import StageContext, StageResult
from shelfwise.compute import Executor, open_executor
from shelfwise.contracts import CATALOG_SCHEMA, EVENT_SCHEMA, QUARANTINE_SCHEMA, QUERY_SCHEMA
from shelfwise.errors import EmptyDataError, PipelineError, RejectedShareError
from shelfwise.ingest.parts import ParquetAppender
from shelfwise.privacy import FORGOTTEN_USER
from shelfwise.validate._casts import TimestampUnit
from shelfwise.validate._core import SOURCE_ORDER, Sinks, Sources, quarantine_order
from shelfwise.validate._core import validate_sources as _validate_sources
from shelfwise.validate._history import check_row_drop
from shelfwise.validate._parts import part_files, read_slices
from shelfwise.validate._report import threshold_message

REPORT_FILE: Final = "report.json"
QUARANTINE_FILE: Final = "quarantine.parquet"
REJECTED_DIR: Final = "rejected"
_INGEST_META: Final = "ingest.json"  # written by ingest; read as plain JSON
_WORK: Final = "_work"  # bucket and spool files, removed before the stage ends


def run(ctx: StageContext) -> StageResult:
    """Validate ingest's parts into `ctx.out`, batch by batch.

    Writes `catalog.parquet`, `events.parquet`, `queries.parquet` (contract schemas,
    one row group per batch), `quarantine.parquet` (every rejected row, parse rejects
    included) and `report.json`.

    Raises:
        RejectedShareError: a source rejected more than `data.max_rejected_share` of
            its rows; the report and quarantine are then written to
            `<run_dir>/rejected/` for inspection.
        RowDropError: a source's accepted rows fell by more than
            `data.max_row_drop_share` against the last complete run on the same path.
        EmptyDataError: no event and no labelled query was accepted.
        PipelineError: ingest's folder is missing or lacks a configured source.
    """
    folder = _ingest_folder(ctx)
    meta = _read_meta(folder / _INGEST_META)
    described = meta.get("sources", {})
    configured = _configured(ctx)
    for kind in SOURCE_ORDER:
        if configured[kind] is not None and kind not in described:
            raise PipelineError(
                f"data.{kind} is configured but ingest wrote no {kind} parts in {folder}; "
                f"rerun from the ingest stage"
            )
    work = ctx.out / _WORK
    work.mkdir(parents=True, exist_ok=True)
    try:
        report = _validate(ctx, folder, meta, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report["partial_files"] = meta.get("partial_files", [])
    atomic_write_json(ctx.out / REPORT_FILE, report)
    summary = _summary(report)
    if report["partial_files"]:
        summary += f"; WARNING: {len(report['partial_files'])} damaged input file(s) kept partially"
    return StageResult(
        row_counts=_row_counts(report),
        extra={
            "catalog_derived": report["catalog_derived"],
            "warnings": report["warnings"],
            "notes": report["notes"],
            "partial_files": report["partial_files"],
            "by_reason": {k: v["by_reason"] for k, v in report["sources"].items()},
            "fake_traffic": report.get("fake_traffic", {}),
        },
        summary=summary,
    )


def _validate(ctx: StageContext, folder: Path, meta: dict[str, Any], work: Path) -> dict[str, Any]:
    data = ctx.config.data
    described = meta.get("sources", {})
    events_meta = described.get("events", {})
    sources = Sources(
        catalog=_parts(folder / "catalog") if data.catalog is not None else None,
        events=_parts(folder / "events") if data.events is not None else None,
        queries=_parts(folder / "queries") if data.queries is not None else None,
        parse_quarantine=lambda: _batches(folder / QUARANTINE_FILE),
        expected_rows={kind: int(described.get(kind, {}).get("rows", 0)) for kind in described},
        time_column=events_meta.get("timestamp_column"),
        time_chosen_by=events_meta.get("timestamp_chosen_by", ""),
        part_files={
            kind: part_files(folder / kind)
            for kind, source in _configured(ctx).items()
            if source is not None
        },
    )
    # Ray only when asked for: the local engine checks the parts here, as it always did
    executor: Executor | None = (
        open_executor(ctx.config.compute) if ctx.config.compute.engine == "ray" else None
    )
    spool = work / "quarantine-unsorted.parquet"
    with (
        ParquetAppender(ctx.out / "catalog.parquet", CATALOG_SCHEMA) as catalog_out,
        ParquetAppender(ctx.out / "events.parquet", EVENT_SCHEMA) as events_out,
        ParquetAppender(ctx.out / "queries.parquet", QUERY_SCHEMA) as queries_out,
        ParquetAppender(spool, QUARANTINE_SCHEMA) as quarantine,
    ):
        report = _validate_sources(
            ctx.config,
            sources,
            Sinks(catalog_out, events_out, queries_out, quarantine),
            work=work,
            warnings=list(meta.get("warnings", [])),
            timestamp_unit=cast(TimestampUnit | None, events_meta.get("timestamp_unit")),
            executor=executor,
        )
    _count_forgotten(report, int(events_meta.get("forgotten", 0)))
    if report["over_threshold"]:
        rejected = ctx.run_dir / REJECTED_DIR
        rejected.mkdir(parents=True, exist_ok=True)
        quarantine_order(pl.scan_parquet(spool)).sink_parquet(rejected / QUARANTINE_FILE)
        atomic_write_json(rejected / REPORT_FILE, report)
        raise RejectedShareError(threshold_message(report, rejected / QUARANTINE_FILE))
    if report["events"] == 0 and report["queries"] == 0:
        raise EmptyDataError(
            "validation accepted no events and no labelled queries, so there is nothing to "
            "train or evaluate on; check that the configured files hold data rows"
        )
    check_row_drop(ctx.config, ctx.run_dir, report)
    quarantine_order(pl.scan_parquet(spool)).sink_parquet(ctx.out / QUARANTINE_FILE)
    return report


def _count_forgotten(report: dict[str, Any], forgotten: int) -> None:
    """Add the events ingest dropped for forgotten users (the forget list) to the report.

    They are not in the quarantine (keeping them would defeat forgetting), so for the
    events rows_in == accepted + quarantined + merged + forgotten.
    """
    events = report["sources"].get("events")
    if events is None or not forgotten:
        return
    events["rows_in"] += forgotten
    events["forgotten"] = forgotten
    events["by_reason"] = {**events["by_reason"], FORGOTTEN_USER: forgotten}


def _configured(ctx: StageContext) -> dict[str, object]:
    data = ctx.config.data
    return {"catalog": data.catalog, "events": data.events, "queries": data.queries}


def _parts(folder: Path) -> Any:
    return lambda: read_slices(folder)


def _batches(path: Path, rows: int = 200_000) -> Iterator[pl.DataFrame]:
    """A Parquet file's rows in batches (the parse quarantine can be large)."""
    if not path.is_file():
        return
    for batch in pq.ParquetFile(path).iter_batches(batch_size=rows):
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        yield frame


def _ingest_folder(ctx: StageContext) -> Path:
    folder = ctx.inputs.get("ingest")
    if folder is None or not folder.is_dir():
        raise PipelineError(
            f"validate needs the ingest stage's output folder, got {folder}; run ingest first"
        )
    return folder


def _read_meta(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    loaded = json.loads(path.read_text(encoding="utf-8"))
    return loaded if isinstance(loaded, dict) else {}


def _row_counts(report: dict[str, Any]) -> dict[str, int]:
    counts = {
        f"{kind}_{key}": int(value[key])
        for kind, value in report["sources"].items()
        for key in ("rows_in", "accepted", "quarantined", "merged")
    }
    counts.update(
        catalog_items=report["catalog_items"], events=report["events"], queries=report["queries"]
    )
    return counts


def _summary(report: dict[str, Any]) -> str:
    quarantined = sum(source["quarantined"] for source in report["sources"].values())
    derived = " (catalog derived from events)" if report["catalog_derived"] else ""
    fake = report.get("fake_traffic") or {}
    suspected = (
        f" ({fake['events_flagged']:,} as suspected bots or fake orders, "
        f"{fake['share']:.1%} of the events)"
        if fake.get("events_flagged")
        else ""
    )
    return (
        f"{report['catalog_items']:,} items{derived}, {report['events']:,} events, "
        f"{report['queries']:,} query labels accepted; {quarantined:,} rows quarantined" + suspected
    )
