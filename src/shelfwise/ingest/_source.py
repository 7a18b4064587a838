"""`SourceStream`: one configured source as a stream of mapped batches.

Files are read one after another, each as a stream (see `_streams`, `_chunks` and
`_readers`), so memory holds one chunk and one batch at a time, never a whole file.
Every batch carries the shelfwise columns plus ROW_NUMBER and SOURCE_FILE, values
as read; rows that could not be parsed come with it as quarantine rows.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import polars as pl
import pyarrow as pa

from shelfwise.compute import Executor
from shelfwise.config import EventsConfig, SourceConfig
from shelfwise.contracts import (
    DETAIL,
    QUARANTINE_SCHEMA,
    RAW_ROW,
    REASON,
    ROW_NUMBER,
    SOURCE,
    SOURCE_FILE,
    TIMESTAMP,
    QuarantineReason,
)
from shelfwise.errors import ConfigError, DamagedFileError, EmptyDataError, InputFileError
from shelfwise.ingest._chunks import record_chunks
from shelfwise.ingest._files import resolve_files
from shelfwise.ingest._mapping import ALIASES, SourceKind, apply_mapping, plan_renames
from shelfwise.ingest._readers import (
    _ROW,
    BadRow,
    DelimitedLayout,
    ParsedChunk,
    column_names,
    empty_sequence_frame,
    parse_delimited,
    parse_jsonl,
    parse_sequence,
)
from shelfwise.ingest._streams import ByteBlocks, Damage, TextBlocks

_DEFAULT_SEPARATORS: Final = {"csv": ",", "tsv": "\t", "recbole": "\t"}
_RAW_TEXT_CHARS: Final = 65_536  # a broken record's text kept in the quarantine
_BATCH_BYTES: Final = 16 << 20  # encoded Parquet data per batch (text: _chunks)
_BATCH_MEMORY: Final = 16 << 20  # a batch in memory (see _batch_limit)


@dataclass(frozen=True)
class FileDamage:
    """A damaged file whose rows before the damage were kept (allow_partial_files)."""

    file: str
    offset: int
    problem: str
    rows_kept: int

    def as_dict(self) -> dict[str, Any]:
        """JSON form for manifests and reports."""
        return {
            "file": self.file,
            "offset": self.offset,
            "problem": self.problem,
            "rows_kept": self.rows_kept,
        }


@dataclass
class Batch:
    """Mapped rows of one source and the rows that could not be parsed."""

    data: pl.DataFrame  # shelfwise columns + ROW_NUMBER + SOURCE_FILE
    quarantine: pl.DataFrame  # QUARANTINE_SCHEMA


@dataclass
class SourceStream:
    """Iterate a source's batches; after iteration the fields below are complete.

    Args (constructor):
        source: the source's config.
        kind: "catalog", "events" or "queries".
        allow_partial: keep the rows before damage in a damaged file (and record it).
        batch_rows: at most this many rows per batch.
        executor: where the files are parsed (`compute.engine: ray`: a Ray Data dataset
            of the files, `_read_file`, their frames consumed here in file order); None
            = in this process. Batching, mapping and counting stay here either way.

    Raises (constructor): InputFileError for a missing path or unknown format.
    Raises (iteration): DamagedFileError, InputFileError, SchemaError, ConfigError,
        EmptyDataError (the source holds no columns and no rows at all).
    """

    source: SourceConfig
    kind: SourceKind
    allow_partial: bool = False
    batch_rows: int = 250_000
    executor: Executor | None = None
    files: list[Path] = field(default_factory=list, init=False)
    file_format: str = field(default="", init=False)
    ignored_columns: list[str] = field(default_factory=list, init=False)
    warnings: list[str] = field(default_factory=list, init=False)
    damaged: list[FileDamage] = field(default_factory=list, init=False)
    timestamp_column: str | None = field(default=None, init=False)
    timestamp_chosen_by: str = field(default="", init=False)
    rows: int = field(default=0, init=False)
    parse_rejected: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.config_key = f"data.{self.kind}"
        self.files, self.file_format = resolve_files(
            self.source.path, self.source.format, config_key=self.config_key
        )

    def __iter__(self) -> Iterator[Batch]:
        saw_columns = False
        pending: list[pl.DataFrame] = []  # mapped rows not yet handed out
        quarantine: list[pl.DataFrame] = []
        for file, frame, bad_rows in self._frames():
            bad = _quarantine_frame(self.kind, file, bad_rows)
            self.parse_rejected += bad.height
            if bad.height:
                quarantine.append(bad)
            if not (set(frame.columns) - {_ROW}):
                continue
            saw_columns = True
            mapped = self._map(frame, file)
            self.rows += mapped.height
            if pending and not _compatible(pending[0], mapped):
                yield from self._flush(pending, quarantine, final=True)
            pending.append(mapped)
            if sum(part.height for part in pending) >= _batch_limit(pending, self.batch_rows):
                yield from self._flush(pending, quarantine, final=False)
        yield from self._flush(pending, quarantine, final=True)
        if not saw_columns and not self.parse_rejected:
            raise EmptyDataError(
                f"{self.config_key}: {self.source.path} holds no data (no columns, no rows); "
                f"check the path, or remove {self.config_key} from the config"
            )

    def _flush(
        self, pending: list[pl.DataFrame], quarantine: list[pl.DataFrame], *, final: bool
    ) -> Iterator[Batch]:
        """Batches of exactly `_batch_limit` rows from `pending` (the rest stays, unless
        `final`), whatever the sizes of the input's row groups or chunks: memory per
        batch is then about the same for every input."""
        bad = pl.concat(quarantine) if quarantine else _empty_quarantine()
        quarantine.clear()
        if not pending:
            if bad.height:
                yield Batch(pl.DataFrame(), bad)
            return
        size = _batch_limit(pending, self.batch_rows)
        rows = pl.concat(pending, how="diagonal_relaxed") if len(pending) > 1 else pending[0]
        pending.clear()
        full = rows.height if final else rows.height - rows.height % size
        for start in range(0, max(full, 1 if final else 0), size):
            yield Batch(rows.slice(start, min(size, full - start)), bad)
            bad = _empty_quarantine()
        if full < rows.height:
            pending.append(rows.slice(full))
        if bad.height:
            yield Batch(pl.DataFrame(), bad)

    def _frames(self) -> Iterator[tuple[Path, pl.DataFrame, list[BadRow]]]:
        """Every file's parsed frames in order, parsed here or by the executor."""
        if self.executor is None:
            for file in self.files:
                for frame, bad_rows in self._file_frames(file):
                    yield file, frame, bad_rows
            return
        reader = replace(self, executor=None)  # what a worker needs: no live executor
        files = [str(file) for file in self.files]
        for item in self.executor.stream(_read_file, files, reader, what=f"{self.kind} file"):
            if isinstance(item, _FileDone):  # what parsing the file learned, as locally
                self.warnings.extend(item.warnings)
                self.damaged.extend(item.damaged)
                continue
            name, frame, bad_rows = item
            yield Path(name), frame, bad_rows

    # --- mapping -------------------------------------------------------------------

    def _map(self, frame: pl.DataFrame, file: Path) -> pl.DataFrame:
        columns = [c for c in frame.columns if c != _ROW]
        mapped, ignored = apply_mapping(
            frame, self.source, self.kind, config_key=self.config_key, keep=(_ROW,)
        )
        if self.kind == "events" and self.timestamp_column is None:
            renames = plan_renames(columns, self.source, self.kind, config_key=self.config_key)
            column = next((theirs for theirs, ours in renames.items() if ours == TIMESTAMP), None)
            self.timestamp_column = column
            if column is not None:
                self.timestamp_chosen_by = _chosen_by(column, self.source)
        self.ignored_columns += [c for c in ignored if c not in self.ignored_columns]
        # Categorical: the file name once per batch, not once per row (a 60-byte path
        # on 500,000 rows is 30 MB of every batch otherwise).
        return mapped.rename({_ROW: ROW_NUMBER}).with_columns(
            pl.lit(str(file), pl.String).cast(pl.Categorical).alias(SOURCE_FILE)
        )

    # --- files ---------------------------------------------------------------------

    def _file_frames(self, file: Path) -> Iterator[tuple[pl.DataFrame, list[BadRow]]]:
        if self.file_format == "parquet":
            yield from self._parquet_frames(file)
            return
        separator = self.source.separator or _DEFAULT_SEPARATORS.get(self.file_format, " ")
        if len(separator) != 1 and self.file_format != "sequence":
            raise ConfigError(
                f"{self.config_key}.separator must be one character, got {separator!r}"
            )
        raw = ByteBlocks(file, allow_partial=self.allow_partial)
        text = TextBlocks(raw, self.source.encoding, config_key=self.config_key)
        blocks: Iterator[bytes] = iter(text)
        layout = DelimitedLayout(
            delimiter=separator,
            quote='"' if self.file_format == "csv" else None,
            has_header=self.source.has_header,
            column_names=self.source.column_names,
            strip_type_suffix=self.file_format == "recbole",
        )
        names: list[str] = []
        delimited = self.file_format not in ("jsonl", "sequence")
        if delimited:
            if layout.column_names is None and not layout.has_header:
                raise ConfigError(
                    f"{file} is read without a header (has_header: false) but no column_names "
                    f"are set; add column_names: [your, columns, in, file, order] to its "
                    f"source config"
                )
            header = b""
            if layout.has_header:
                header, blocks = _split_header(blocks)
            names = column_names(header, file, layout)
        chunks = record_chunks(
            blocks,
            quote=b'"' if layout.quote else None,
            delimiter=separator.encode() if delimited else b"\n",
            ended_early=lambda: raw.damage is not None,
        )
        row = 0  # data rows (delimited) or lines (jsonl, sequence) consumed
        kept = 0  # rows parsed
        produced = replaced = False
        undecodable = 0  # parsed rows holding U+FFFD
        for chunk in chunks:
            if chunk.kind == "records":
                parsed = self._parse(chunk.data, names, layout, separator, row)
                row += parsed.records
                kept += parsed.frame.height
                if parsed.replaced_utf8:
                    replaced = True
                    undecodable += _rows_with_replacement(parsed.frame)
                produced = True
                yield parsed.frame, parsed.bad_rows
                continue
            row += 1
            yield pl.DataFrame(), [self._bad_chunk_row(chunk.kind, chunk.data, row, raw.damage)]
        if not produced:
            yield self._empty_frame(names), []
        if text.resolved == "utf-8" and undecodable and 2 * undecodable > kept:
            raise InputFileError(
                f"{file} is not UTF-8: {undecodable:,} of its {kept:,} rows hold bytes that "
                f"are not valid UTF-8, as text written in another encoding does; set "
                f"{self.config_key}.encoding to the file's encoding, e.g. cp1252 (Excel on "
                "Windows, Western Europe), gb18030 (Chinese), latin-1 or utf-16"
            )
        if replaced:
            self.warnings.append(
                f"{file}: invalid {text.resolved.upper()} bytes replaced by U+FFFD; rows holding "
                f"them are quarantined as {QuarantineReason.UNDECODABLE_TEXT.value}. If the file "
                f"is in another encoding, set {self.config_key}.encoding (utf-16, gb18030, "
                "cp1252, latin-1)"
            )
        if raw.damage is not None:
            self._record_damage(file, raw.damage, kept)

    def _parse(
        self, data: bytes, names: list[str], layout: DelimitedLayout, separator: str, row: int
    ) -> ParsedChunk:
        if self.file_format == "jsonl":
            return parse_jsonl(data, first_line=row)
        if self.file_format == "sequence":
            return parse_sequence(data, self.source.separator, first_line=row)
        header_lines = 1 if layout.has_header else 0
        return parse_delimited(data, names, layout, first_row=row, header_lines=header_lines)

    def _empty_frame(self, names: list[str]) -> pl.DataFrame:
        if self.file_format == "sequence":
            return empty_sequence_frame()
        frame = pl.DataFrame(schema=dict.fromkeys(names, pl.String()))
        return frame.with_columns(pl.lit(None, pl.Int64).alias(_ROW))

    def _bad_chunk_row(self, kind: str, data: bytes, row: int, damage: Damage | None) -> BadRow:
        text = data.decode("utf-8", errors="replace")
        if len(text) > _RAW_TEXT_CHARS:
            text = text[:_RAW_TEXT_CHARS] + f"… ({len(data):,} bytes in all)"
        unit = "line" if self.file_format in ("jsonl", "sequence") else "row"
        if kind == "truncated":
            problem = damage.problem if damage is not None else "the file is cut off"
            return BadRow(
                row,
                QuarantineReason.TRUNCATED_INPUT,
                f"the file ends inside this record ({problem})",
                text,
            )
        detail = (
            "a quoted field opened on this line is never closed (unclosed quote); the line "
            "is quarantined and reading goes on with the next line"
            if kind == "broken"
            else "longer than 16 MiB without a line break"
        )
        return BadRow(row, QuarantineReason.MALFORMED_ROW, f"{detail} ({unit} {row})", text)

    def _record_damage(self, file: Path, damage: Damage, kept: int) -> None:
        self.damaged.append(FileDamage(str(file), damage.offset, damage.problem, kept))
        self.warnings.append(
            f"{damage.describe(file)}; kept the {kept:,} rows read before it because "
            "data.allow_partial_files is true (the run is marked partial)"
        )

    def _parquet_frames(self, file: Path) -> Iterator[tuple[pl.DataFrame, list[BadRow]]]:
        import pyarrow.parquet as pq

        source: Any = file
        if file.name.lower().endswith(".gz"):  # rare: Parquet compresses inside already
            source = pa.BufferReader(b"".join(ByteBlocks(file, allow_partial=False)))
        try:
            handle = pq.ParquetFile(source, page_checksum_verification=True)
        except (pa.ArrowInvalid, OSError) as exc:
            raise _parquet_error(file, exc) from None
        row = 0  # rows read so far
        width: float | None = None  # bytes a row takes in memory, once a batch was read
        for group in range(handle.num_row_groups):
            size = _rows_per_batch(handle.metadata.row_group(group), self.batch_rows, width)
            try:
                for batch in handle.iter_batches(batch_size=size, row_groups=[group]):
                    frame = _to_frame(batch).with_row_index(_ROW, offset=row + 1)
                    width = frame.estimated_size() / max(frame.height, 1)
                    row += frame.height
                    yield frame.with_columns(pl.col(_ROW).cast(pl.Int64)), []
            except (pa.ArrowInvalid, OSError) as exc:
                column = handle.metadata.row_group(group).column(0)
                offset = column.dictionary_page_offset or column.data_page_offset
                damage = Damage(f"row group {group} cannot be read ({exc})".strip(), offset)
                if not self.allow_partial:
                    raise DamagedFileError(
                        f"{damage.describe(file)}. Export the file again; to train on the "
                        "row groups before the damage instead, set data.allow_partial_files: true"
                    ) from None
                self._record_damage(file, damage, row)
                return
        if handle.num_row_groups == 0:
            schema = pl.from_arrow(handle.schema_arrow.empty_table())
            assert isinstance(schema, pl.DataFrame)
            yield schema.with_columns(pl.lit(None, pl.Int64).alias(_ROW)), []


@dataclass(frozen=True)
class _FileDone:
    """The end of a file parsed by an executor: its warnings and damage."""

    warnings: list[str]
    damaged: list[FileDamage]


def _read_file(
    file: str, reader: SourceStream
) -> Iterator[tuple[str, pl.DataFrame, list[BadRow]] | _FileDone]:
    """Parse one file of a source (an executor's unit of work): its frames, then what
    parsing it learned. Row numbers restart at every file, so files parse on their own;
    a file is not split further (CSV quoting and row numbers need one pass in order)."""
    stream = copy.copy(reader)
    stream.warnings, stream.damaged = [], []
    for frame, bad_rows in stream._file_frames(Path(file)):
        yield file, frame, bad_rows
    yield _FileDone(stream.warnings, stream.damaged)


def _rows_with_replacement(frame: pl.DataFrame) -> int:
    """Rows of a parsed chunk whose text holds U+FFFD (bytes that were not UTF-8)."""
    columns = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    if not columns:
        return 0
    hits = [pl.col(c).str.contains("\ufffd", literal=True).fill_null(False) for c in columns]
    return int(frame.select(pl.any_horizontal(hits).sum()).item())


def _chosen_by(column: str, source: SourceConfig) -> str:
    """Why ingest took `column` as the events' time, for the report."""
    if column in source.mapping:
        return "named in data.events.mapping"
    if column == TIMESTAMP:
        return "its name"
    if column.lower() in ALIASES:
        return "a known name for event times"
    return "its name looks like a time; name another in data.events.mapping if wrong"


def _compatible(first: pl.DataFrame, other: pl.DataFrame) -> bool:
    """Whether two mapped frames can share a batch (same columns, same types)."""
    return first.schema == other.schema


def _batch_limit(pending: list[pl.DataFrame], batch_rows: int) -> int:
    """Rows per batch: at most `batch_rows`, and about `_BATCH_MEMORY` in memory.

    Why a byte cap too: 250,000 catalog rows with their descriptions are 70 MB in
    memory, and ingest's peak on a 600k-item catalog was 605 MB against 311 MB for the
    1M-event shop's 20k items. With this cap (and Parquet batches sized by their width
    in memory, `_rows_per_batch`) it is 390 MB (16 MiB; 469 MB at 32 MiB). 250,000
    events are ~17 MB: their batches lose a few percent of their rows.
    """
    rows = sum(frame.height for frame in pending)
    width = sum(frame.estimated_size() for frame in pending) / max(rows, 1)
    return max(1, min(batch_rows, int(_BATCH_MEMORY / max(width, 1.0))))


def _rows_per_batch(group: Any, batch_rows: int, width: float | None = None) -> int:
    """At most `batch_rows`, and about `_BATCH_BYTES` of data: a catalog row with its
    description weighs ten event rows, so a batch of wide rows has fewer of them.

    `width` is a row's size in memory as read from an earlier batch; before one was
    read, the row group's encoded size stands in for it, which dictionary-encoded text
    understates about 3x (a 600k-item catalog: 92 bytes a row encoded, 290 in memory).
    """
    if width is None:
        width = group.total_byte_size / max(group.num_rows, 1)
    return max(1, min(batch_rows, int(_BATCH_BYTES / max(width, 1.0))))


def _parquet_error(file: Path, exc: Exception) -> InputFileError:
    size = file.stat().st_size
    with file.open("rb") as handle:
        starts_like_parquet = handle.read(4) == b"PAR1"
    if starts_like_parquet:
        return DamagedFileError(
            f"{file} is damaged at byte {size:,}: the Parquet footer at the end of the file "
            f"is missing or broken, so the file is cut off or corrupt ({exc}); a cut Parquet "
            "file cannot be read at all, even with data.allow_partial_files: export it again"
        )
    return InputFileError(
        f"{file}: not a readable Parquet file ({exc}); check the file or set the source's format"
    )


def _to_frame(batch: pa.RecordBatch) -> pl.DataFrame:
    frame = pl.from_arrow(batch)
    if isinstance(frame, pl.Series):  # pragma: no cover - a batch gives a DataFrame
        return frame.to_frame()
    return frame


def _split_header(blocks: Iterator[bytes]) -> tuple[bytes, Iterator[bytes]]:
    """The first line of a stream, and the stream after it."""
    head = b""
    for block in blocks:
        head += block
        end = head.find(b"\n")
        if end >= 0:
            rest = head[end + 1 :]

            def remaining(rest: bytes = rest) -> Iterator[bytes]:
                if rest:
                    yield rest
                yield from blocks

            return head[:end], remaining()
    return head, iter(())


def _empty_quarantine() -> pl.DataFrame:
    return pl.DataFrame(schema=QUARANTINE_SCHEMA)


def _quarantine_frame(kind: str, file: Path, bad_rows: list[BadRow]) -> pl.DataFrame:
    if not bad_rows:
        return _empty_quarantine()
    return pl.DataFrame(
        {
            SOURCE: [kind] * len(bad_rows),
            SOURCE_FILE: [str(file)] * len(bad_rows),
            ROW_NUMBER: [row.row_number for row in bad_rows],
            REASON: [row.reason.value for row in bad_rows],
            DETAIL: [row.detail for row in bad_rows],
            RAW_ROW: [json.dumps(row.raw_text, ensure_ascii=False) for row in bad_rows],
        },
        schema=QUARANTINE_SCHEMA,
    )


def timestamp_unit(source: SourceConfig, file_format: str) -> str | None:
    """The events' timestamp unit for validate: sequence files resolve auto to ordinal."""
    if not isinstance(source, EventsConfig):
        return None
    unit = source.timestamp_unit
    return "ordinal" if unit == "auto" and file_format == "sequence" else unit
