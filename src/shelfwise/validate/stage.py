"""The validate stage: read ingest's folder, validate, write the contract tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final, cast

import polars as pl

from shelfwise._internal.artifacts import atomic_write_json, write_parquet
from shelfwise._internal.stage import StageContext, StageResult
from shelfwise.errors import EmptyDataError, PipelineError, RejectedShareError
from shelfwise.validate._casts import TimestampUnit
from shelfwise.validate._core import SOURCE_ORDER, ValidationResult, validate_frames
from shelfwise.validate._report import threshold_message

REPORT_FILE: Final = "report.json"
QUARANTINE_FILE: Final = "quarantine.parquet"
REJECTED_DIR: Final = "rejected"
_INGEST_META: Final = "ingest.json"  # written by ingest; read as plain JSON


def run(ctx: StageContext) -> StageResult:
    """Validate ingest's tables into `ctx.out`.

    Writes `catalog.parquet`, `events.parquet`, `queries.parquet` (contract schemas),
    `quarantine.parquet` (every rejected row, parse rejects included) and
    `report.json`.

    Raises:
        RejectedShareError: a source rejected more than `data.max_rejected_share` of
            its rows; the report and quarantine are then written to
            `<run_dir>/rejected/` for inspection.
        EmptyDataError: no event and no labelled query was accepted.
        PipelineError: ingest's folder is missing or lacks a configured source.
    """
    folder = _ingest_folder(ctx)
    data = ctx.config.data
    configured = {"catalog": data.catalog, "events": data.events, "queries": data.queries}
    frames: dict[str, pl.DataFrame | None] = {}
    for kind in SOURCE_ORDER:
        path = folder / f"{kind}.parquet"
        if configured[kind] is not None and not path.is_file():
            raise PipelineError(
                f"data.{kind} is configured but ingest wrote no {path.name} in {folder}; "
                f"rerun from the ingest stage"
            )
        frames[kind] = pl.read_parquet(path) if configured[kind] is not None else None
    quarantine_path = folder / QUARANTINE_FILE
    parse_quarantine = pl.read_parquet(quarantine_path) if quarantine_path.is_file() else None
    meta = _read_meta(folder / _INGEST_META)
    unit = meta.get("sources", {}).get("events", {}).get("timestamp_unit")
    result = validate_frames(
        ctx.config,
        catalog=frames["catalog"],
        events=frames["events"],
        queries=frames["queries"],
        parse_quarantine=parse_quarantine,
        warnings=list(meta.get("warnings", [])),
        timestamp_unit=cast(TimestampUnit | None, unit),
    )
    report = result.report
    if report["over_threshold"]:
        rejected = ctx.run_dir / REJECTED_DIR
        write_parquet(result.quarantine, rejected / QUARANTINE_FILE)
        atomic_write_json(rejected / REPORT_FILE, report)
        raise RejectedShareError(threshold_message(report, rejected / QUARANTINE_FILE))
    if result.events.is_empty() and result.queries.is_empty():
        raise EmptyDataError(
            "validation accepted no events and no labelled queries, so there is nothing to "
            "train or evaluate on; check that the configured files hold data rows"
        )
    _write(ctx.out, result)
    return StageResult(
        row_counts=_row_counts(report),
        extra={
            "catalog_derived": report["catalog_derived"],
            "warnings": report["warnings"],
            "by_reason": {k: v["by_reason"] for k, v in report["sources"].items()},
        },
        summary=_summary(report),
    )


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


def _write(out: Path, result: ValidationResult) -> None:
    write_parquet(result.catalog, out / "catalog.parquet")
    write_parquet(result.events, out / "events.parquet")
    write_parquet(result.queries, out / "queries.parquet")
    write_parquet(result.quarantine, out / QUARANTINE_FILE)
    atomic_write_json(out / REPORT_FILE, result.report)


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
    return (
        f"{report['catalog_items']:,} items{derived}, {report['events']:,} events, "
        f"{report['queries']:,} query labels accepted; {quarantined:,} rows quarantined"
    )
