"""The ingest stage: stream each configured source, map its columns, write Parquet parts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import polars as pl

from shelfwise._internal.artifacts import atomic_write_json
from shelfwise._internal.progress import track
from shelfwise._internal.stage import StageContext, StageResult
from shelfwise.compute import Executor, open_executor
from shelfwise.config import SourceConfig
from shelfwise.contracts import QUARANTINE_SCHEMA, SOURCE_FILE
from shelfwise.errors import EmptyDataError
from shelfwise.ingest._mapping import SourceKind
from shelfwise.ingest._privacy import EventsPrivacy
from shelfwise.ingest._source import FileDamage, SourceStream, timestamp_unit
from shelfwise.ingest.parts import ParquetAppender, part_path
from shelfwise.privacy import UserPrivacy

INGEST_META: Final = "ingest.json"
QUARANTINE_FILE: Final = "quarantine.parquet"


@dataclass
class SourceRead:
    """Everything ingest learned from one source (the whole source in memory)."""

    kind: SourceKind
    data: pl.DataFrame  # shelfwise columns + ROW_NUMBER + SOURCE_FILE
    quarantine: pl.DataFrame  # QUARANTINE_SCHEMA: rows that could not be parsed
    file_format: str
    files: list[Path]
    ignored_columns: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    damaged: list[FileDamage] = field(default_factory=list)


def read_source(
    source: SourceConfig, kind: SourceKind, *, allow_partial: bool = False
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Read one source into (data, parse quarantine), in memory (small sources only).

    Args:
        source: where and how to read; events sources may be an `EventsConfig`.
        kind: "catalog", "events" or "queries".
        allow_partial: keep the rows before damage in a damaged file.

    Returns:
        The rows with shelfwise column names plus ROW_NUMBER and SOURCE_FILE, values
        as read (strings for text formats), and the rows that could not be parsed
        (QUARANTINE_SCHEMA).

    Raises:
        InputFileError: missing or unreadable file, unsupported format or encoding.
        DamagedFileError: a cut or corrupt file (unless `allow_partial`).
        SchemaError: required columns missing after the column mapping.
        ConfigError: inconsistent source settings (e.g. no column_names without header).
    """
    read = read_source_detailed(source, kind, allow_partial=allow_partial)
    return read.data, read.quarantine


def read_source_detailed(
    source: SourceConfig, kind: SourceKind, *, allow_partial: bool = False
) -> SourceRead:
    """`read_source` plus format, files, ignored columns, warnings and damage."""
    stream = SourceStream(source, kind, allow_partial=allow_partial)
    frames: list[pl.DataFrame] = []
    quarantines = [pl.DataFrame(schema=QUARANTINE_SCHEMA)]
    for batch in stream:
        if batch.data.columns:
            frames.append(batch.data)
        quarantines.append(batch.quarantine)
    data = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
    if SOURCE_FILE in data.columns:
        data = data.with_columns(pl.col(SOURCE_FILE).cast(pl.String))
    return SourceRead(
        kind=kind,
        data=data,
        quarantine=pl.concat(quarantines),
        file_format=stream.file_format,
        files=stream.files,
        ignored_columns=stream.ignored_columns,
        warnings=stream.warnings,
        damaged=stream.damaged,
    )


def run(ctx: StageContext) -> StageResult:
    """Stream the configured sources into `ctx.out`, batch by batch.

    Writes `<kind>/part-*.parquet` for `catalog`, `events` and `queries` (those
    configured; see `ingest.parts`), `quarantine.parquet` (rows that could not be
    parsed) and `ingest.json` (formats, files, ignored columns, warnings, damaged
    files kept by `data.allow_partial_files`, the timestamp column and unit).

    Raises:
        EmptyDataError: neither events nor queries are configured.
        DamagedFileError: a cut or corrupt file, unless `data.allow_partial_files`.
        InputFileError, SchemaError, ConfigError: see `read_source`.
    """
    data_config = ctx.config.data
    if data_config.events is None and data_config.queries is None:
        raise EmptyDataError(
            "nothing to learn from: configure data.events (user events) or data.queries "
            "(labelled search queries), or both, in shelfwise.yaml"
        )
    candidates: list[tuple[SourceKind, SourceConfig | None]] = [
        ("catalog", data_config.catalog),
        ("events", data_config.events),
        ("queries", data_config.queries),
    ]
    sources = [(kind, source) for kind, source in candidates if source is not None]
    # user ids are pseudonymised and forgotten users dropped before any part is written
    privacy = EventsPrivacy(UserPrivacy.open(ctx.config.privacy, ctx.config.state_dir()))
    # files parsed on Ray Data only when asked for: the local engine never imports Ray
    executor: Executor | None = (
        open_executor(ctx.config.compute) if ctx.config.compute.engine == "ray" else None
    )
    row_counts: dict[str, int] = {}
    meta: dict[str, Any] = {"sources": {}, "warnings": [], "partial_files": []}
    with ParquetAppender(ctx.out / QUARANTINE_FILE, QUARANTINE_SCHEMA) as quarantine:
        for kind, source in track(sources, "reading sources", total=len(sources)):
            stream = SourceStream(
                source,
                kind,
                allow_partial=data_config.allow_partial_files,
                batch_rows=data_config.batch_rows,
                executor=executor,
            )
            hook = privacy if kind == "events" and privacy.active else None
            parts = _write_parts(stream, ctx.out / kind, quarantine, hook)
            row_counts[f"{kind}_rows"] = stream.rows
            row_counts[f"{kind}_parse_rejected"] = stream.parse_rejected
            entry: dict[str, Any] = {
                "format": stream.file_format,
                "files": [str(file) for file in stream.files],
                "rows": stream.rows,
                "parse_rejected": stream.parse_rejected,
                "parts": parts,
                "ignored_columns": stream.ignored_columns,
                "encoding": source.encoding,
            }
            if hook is not None:  # rows of forgotten users: dropped, counted in `rows`
                entry["forgotten"] = hook.forgotten
                row_counts[f"{kind}_forgotten"] = hook.forgotten
            unit = timestamp_unit(source, stream.file_format)
            if unit is not None:
                entry["timestamp_unit"] = unit
                entry["timestamp_column"] = stream.timestamp_column
                entry["timestamp_chosen_by"] = stream.timestamp_chosen_by
            meta["sources"][kind] = entry
            meta["warnings"].extend(stream.warnings)
            meta["partial_files"].extend(damage.as_dict() for damage in stream.damaged)
    atomic_write_json(ctx.out / INGEST_META, meta)
    parts_text = [f"{row_counts[f'{kind}_rows']:,} {kind} rows" for kind, _ in sources]
    rejected = sum(row_counts[f"{kind}_parse_rejected"] for kind, _ in sources)
    summary = f"read {', '.join(parts_text)}; {rejected:,} unparsable rows quarantined"
    if meta["partial_files"]:
        summary += (
            f"; WARNING: {len(meta['partial_files'])} damaged file(s) kept only up to the "
            "damage (data.allow_partial_files)"
        )
    return StageResult(
        row_counts=row_counts,
        extra={
            "ignored_columns": {k: v["ignored_columns"] for k, v in meta["sources"].items()},
            "formats": {k: v["format"] for k, v in meta["sources"].items()},
            "warnings": meta["warnings"],
            "partial_files": meta["partial_files"],
        },
        summary=summary,
    )


def _write_parts(
    stream: SourceStream,
    folder: Path,
    quarantine: ParquetAppender,
    privacy: EventsPrivacy | None = None,
) -> int:
    """Write the stream's batches as parts; return how many. A source without rows
    still gets one (empty) part, so validate sees its columns. `privacy` pseudonymises
    and drops forgotten users' rows first (events)."""
    written = 0
    empty: pl.DataFrame | None = None
    for batch in stream:
        quarantine.write(
            batch.quarantine if privacy is None else privacy.quarantine(batch.quarantine)
        )
        if not batch.data.columns:
            continue
        data = batch.data if privacy is None else privacy.events(batch.data)
        if data.is_empty():
            empty = data if empty is None else empty
            continue
        path = part_path(folder, written)
        path.parent.mkdir(parents=True, exist_ok=True)
        data.write_parquet(path)
        written += 1
    if written == 0 and empty is not None:
        folder.mkdir(parents=True, exist_ok=True)
        empty.write_parquet(part_path(folder, 0))
        written = 1
    return written
