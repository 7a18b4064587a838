"""The ingest stage: read each configured source, map its columns, write Parquet."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import polars as pl

from shelfwise._internal.artifacts import atomic_write_json, write_parquet
from shelfwise._internal.progress import track
from shelfwise._internal.stage import StageContext, StageResult
from shelfwise.config import EventsConfig, SourceConfig
from shelfwise.contracts import (
    DETAIL,
    QUARANTINE_SCHEMA,
    RAW_ROW,
    REASON,
    ROW_NUMBER,
    SOURCE,
    SOURCE_FILE,
    QuarantineReason,
)
from shelfwise.errors import ConfigError, EmptyDataError, InputFileError
from shelfwise.ingest._files import load_bytes, resolve_files, split_complete_lines
from shelfwise.ingest._mapping import SourceKind, apply_mapping
from shelfwise.ingest._readers import (
    _ROW,
    BadRow,
    DelimitedLayout,
    ParsedFile,
    read_delimited,
    read_jsonl,
    read_parquet,
    read_sequence,
)

INGEST_META: Final = "ingest.json"
_FILE: Final = "__shelfwise_file"
_DEFAULT_SEPARATORS: Final = {"csv": ",", "tsv": "\t", "recbole": "\t"}
_LINE_NUMBERED: Final = ("jsonl", "sequence")  # row numbers are line numbers


@dataclass
class SourceRead:
    """Everything ingest learned from one source."""

    kind: SourceKind
    data: pl.DataFrame  # shelfwise columns + ROW_NUMBER + SOURCE_FILE
    quarantine: pl.DataFrame  # QUARANTINE_SCHEMA: rows that could not be parsed
    file_format: str
    files: list[Path]
    ignored_columns: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def read_source(source: SourceConfig, kind: SourceKind) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Read one source into (data, parse quarantine).

    Args:
        source: where and how to read; events sources may be an `EventsConfig`.
        kind: "catalog", "events" or "queries".

    Returns:
        The rows with shelfwise column names plus ROW_NUMBER and SOURCE_FILE, values
        as read (strings for text formats), and the rows that could not be parsed
        (QUARANTINE_SCHEMA).

    Raises:
        InputFileError: missing or unreadable file, unsupported format.
        SchemaError: required columns missing after the column mapping.
        ConfigError: inconsistent source settings (e.g. no column_names without header).
    """
    read = read_source_detailed(source, kind)
    return read.data, read.quarantine


def read_source_detailed(source: SourceConfig, kind: SourceKind) -> SourceRead:
    """`read_source` plus format, files, ignored columns and warnings."""
    config_key = f"data.{kind}"
    files, file_format = resolve_files(source.path, source.format, config_key=config_key)
    frames: list[pl.DataFrame] = []
    bad_rows: list[tuple[Path, BadRow]] = []
    warnings: list[str] = []
    for file in files:
        parsed = _read_file(file, file_format, source, config_key=config_key)
        frames.append(parsed.frame.with_columns(pl.lit(str(file), pl.String).alias(_FILE)))
        bad_rows.extend((file, row) for row in parsed.bad_rows)
        warnings.extend(parsed.warnings)
    data = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    if set(data.columns) <= {_ROW, _FILE} and not bad_rows:
        raise EmptyDataError(
            f"{config_key}: {source.path} holds no data (no columns, no rows); check the "
            f"path, or remove {config_key} from the config"
        )
    mapped, ignored = apply_mapping(data, source, kind, config_key=config_key, keep=(_ROW, _FILE))
    mapped = mapped.rename({_ROW: ROW_NUMBER, _FILE: SOURCE_FILE})
    return SourceRead(
        kind=kind,
        data=mapped,
        quarantine=_quarantine_frame(kind, bad_rows),
        file_format=file_format,
        files=files,
        ignored_columns=ignored,
        warnings=warnings,
    )


def _read_file(
    file: Path, file_format: str, source: SourceConfig, *, config_key: str
) -> ParsedFile:
    loaded = load_bytes(file)
    if file_format == "parquet":
        if not loaded.complete:
            raise InputFileError(
                f"{file}: {loaded.problem}; a cut-off Parquet file cannot be read, "
                f"download it again"
            )
        return read_parquet(loaded.data, file)
    separator = source.separator or _DEFAULT_SEPARATORS.get(file_format, " ")
    if len(separator) != 1 and file_format != "sequence":
        raise ConfigError(f"{config_key}.separator must be one character, got {separator!r}")
    data, tail = loaded.data, b""
    if not loaded.complete:
        quote = b'"' if file_format == "csv" else None
        data, tail = split_complete_lines(data, quote=quote, delimiter=separator.encode())
    parsed = _parse(data, file, file_format, source, separator)
    if not loaded.complete:
        if file_format in _LINE_NUMBERED:
            next_row = data.count(b"\n") + 1
        else:
            next_row = parsed.last_row_number + 1
        message = f"{file}: {loaded.problem}; kept the {parsed.frame.height:,} rows read before it"
        if tail.strip():
            parsed.bad_rows.append(
                BadRow(
                    next_row,
                    QuarantineReason.TRUNCATED_INPUT,
                    f"the file ends inside this record ({loaded.problem})",
                    tail.decode("utf-8", errors="replace"),
                )
            )
            reason = QuarantineReason.TRUNCATED_INPUT.value
            message += f" and quarantined the partial last record as {reason}"
        parsed.warnings.append(message)
    return parsed


def _parse(
    data: bytes, file: Path, file_format: str, source: SourceConfig, separator: str
) -> ParsedFile:
    if file_format == "jsonl":
        return read_jsonl(data, file)
    if file_format == "sequence":
        return read_sequence(data, file, source.separator)
    layout = DelimitedLayout(
        delimiter=separator,
        quote='"' if file_format == "csv" else None,
        has_header=source.has_header,
        column_names=source.column_names,
        strip_type_suffix=file_format == "recbole",
    )
    return read_delimited(data, file, layout)


def _quarantine_frame(kind: str, bad_rows: list[tuple[Path, BadRow]]) -> pl.DataFrame:
    if not bad_rows:
        return pl.DataFrame(schema=QUARANTINE_SCHEMA)
    return pl.DataFrame(
        {
            SOURCE: [kind] * len(bad_rows),
            SOURCE_FILE: [str(file) for file, _ in bad_rows],
            ROW_NUMBER: [row.row_number for _, row in bad_rows],
            REASON: [row.reason.value for _, row in bad_rows],
            DETAIL: [row.detail for _, row in bad_rows],
            RAW_ROW: [json.dumps(row.raw_text, ensure_ascii=False) for _, row in bad_rows],
        },
        schema=QUARANTINE_SCHEMA,
    )


def run(ctx: StageContext) -> StageResult:
    """Read the configured sources into `ctx.out`.

    Writes `catalog.parquet`, `events.parquet`, `queries.parquet` (those configured),
    `quarantine.parquet` (rows that could not be parsed) and `ingest.json` (formats,
    files, ignored columns, warnings and the resolved timestamp unit for validate).

    Raises:
        EmptyDataError: neither events nor queries are configured.
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
    row_counts: dict[str, int] = {}
    meta: dict[str, Any] = {"sources": {}, "warnings": []}
    quarantines: list[pl.DataFrame] = []
    for kind, source in track(sources, "reading sources", total=len(sources)):
        read = read_source_detailed(source, kind)
        write_parquet(read.data, ctx.out / f"{kind}.parquet")
        quarantines.append(read.quarantine)
        row_counts[f"{kind}_rows"] = read.data.height
        row_counts[f"{kind}_parse_rejected"] = read.quarantine.height
        entry: dict[str, Any] = {
            "format": read.file_format,
            "files": [str(file) for file in read.files],
            "rows": read.data.height,
            "parse_rejected": read.quarantine.height,
            "ignored_columns": read.ignored_columns,
        }
        if isinstance(source, EventsConfig):
            unit = source.timestamp_unit
            entry["timestamp_unit"] = (
                "ordinal" if unit == "auto" and read.file_format == "sequence" else unit
            )
        meta["sources"][kind] = entry
        meta["warnings"].extend(read.warnings)
    write_parquet(pl.concat(quarantines), ctx.out / "quarantine.parquet")
    atomic_write_json(ctx.out / INGEST_META, meta)
    parts = [f"{row_counts[f'{kind}_rows']:,} {kind} rows" for kind, _ in sources]
    rejected = sum(row_counts[f"{kind}_parse_rejected"] for kind, _ in sources)
    return StageResult(
        row_counts=row_counts,
        extra={
            "ignored_columns": {k: v["ignored_columns"] for k, v in meta["sources"].items()},
            "formats": {k: v["format"] for k, v in meta["sources"].items()},
            "warnings": meta["warnings"],
        },
        summary=f"read {', '.join(parts)}; {rejected:,} unparsable rows quarantined",
    )
