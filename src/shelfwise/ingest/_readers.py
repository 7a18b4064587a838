"""One parser per text format, over one chunk of whole records; Parquet by row group.

Parsers keep values as read: every column is a string for delimited and sequence
files, native types for Parquet and JSON lines. They add the 1-based data row number
(`_ROW`) within the file, counting the rows they could not parse, so a quarantined
row points back at its place: each call is told how many records (or lines) of the
file came before its chunk.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv

from shelfwise.contracts import RAW_ITEM_ID, RAW_USER_ID, TIMESTAMP, QuarantineReason
from shelfwise.errors import InputFileError

_ROW: Final = "__shelfwise_row"  # internal: 1-based data row within its file


@dataclass(frozen=True)
class BadRow:
    """A row that could not be parsed into columns."""

    row_number: int
    reason: QuarantineReason
    detail: str
    raw_text: str


@dataclass
class ParsedChunk:
    """What a parser got out of one chunk."""

    frame: pl.DataFrame  # the file's own columns plus _ROW
    bad_rows: list[BadRow] = field(default_factory=list)
    records: int = 0  # data rows (or lines) consumed, parsed or not
    replaced_utf8: bool = False  # invalid UTF-8 was replaced by U+FFFD


@dataclass(frozen=True)
class DelimitedLayout:
    """How to split a delimited text file."""

    delimiter: str
    quote: str | None  # None: quotes are ordinary characters
    has_header: bool
    column_names: list[str] | None
    strip_type_suffix: bool = False  # RecBole headers: `user_id:token` -> `user_id`


# --- delimited text (csv, tsv, RecBole atomic files) --------------------------------


def column_names(header: bytes, path: Path, layout: DelimitedLayout) -> list[str]:
    """The column names: from the config, or parsed from the header line.

    Raises:
        InputFileError: empty or repeated names.
    """
    if layout.column_names is not None:
        names = list(layout.column_names)
    else:
        first = header.rstrip(b"\r\n").decode("utf-8", errors="replace").removeprefix("\ufeff")
        if layout.quote is None:
            names = first.split(layout.delimiter)
        else:
            names = next(csv.reader([first], delimiter=layout.delimiter, quotechar=layout.quote))
        names = [name.strip() for name in names]
    if layout.strip_type_suffix:
        names = [name.rsplit(":", 1)[0] if ":" in name else name for name in names]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates or any(not name for name in names):
        raise InputFileError(
            f"{path}: column names must be unique and non-empty, got {names}; fix the "
            f"header or set column_names in the source config"
        )
    return names


def parse_delimited(
    chunk: bytes, names: list[str], layout: DelimitedLayout, *, first_row: int, header_lines: int
) -> ParsedChunk:
    """Parse whole CSV/TSV records with pyarrow, every column as a string.

    Rows with the wrong number of fields become `malformed-row` bad rows. When pyarrow
    refuses the chunk itself, Python's csv module reads it row by row instead.

    Args:
        chunk: whole records (see `_chunks.record_chunks`), no header.
        names: the column names.
        layout: delimiter and quoting.
        first_row: data rows of the file before this chunk.
        header_lines: 1 when the file has a header line (line numbers in details).
    """
    replaced = False
    for attempt in range(2):
        invalid: list[Any] = []

        def handler(row: Any, invalid: list[Any] = invalid) -> str:
            invalid.append(row)
            return "skip"

        try:
            table = pacsv.read_csv(
                io.BytesIO(chunk),
                read_options=pacsv.ReadOptions(
                    column_names=names, use_threads=False, block_size=max(len(chunk) + 1, 1 << 16)
                ),
                parse_options=pacsv.ParseOptions(
                    delimiter=layout.delimiter,
                    quote_char=layout.quote if layout.quote is not None else False,
                    newlines_in_values=layout.quote is not None,
                    invalid_row_handler=handler,
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(names, pa.string()),
                    strings_can_be_null=True,
                    null_values=[""],
                ),
            )
        except pa.ArrowInvalid as exc:
            if "UTF8" in str(exc) and attempt == 0:
                chunk = chunk.decode("utf-8", errors="replace").encode("utf-8")
                replaced = True
                continue
            parsed = _python_delimited(chunk, names, layout, first_row, header_lines)
            parsed.replaced_utf8 = replaced
            return parsed
        bad = [
            _field_count_row(
                first_row + row.number,
                row.expected_columns,
                row.actual_columns,
                row.text,
                line=first_row + row.number + header_lines,
            )
            for row in invalid
        ]
        frame = _to_frame(table)
        rows = _good_row_numbers(first_row, frame.height, [b.row_number for b in bad])
        frame = frame.with_columns(pl.Series(_ROW, rows, dtype=pl.Int64))
        return ParsedChunk(frame, bad, frame.height + len(bad), replaced)
    raise AssertionError("unreachable")  # pragma: no cover


def _field_count_row(number: int, expected: int, found: int, text: str, *, line: int) -> BadRow:
    return BadRow(
        number,
        QuarantineReason.MALFORMED_ROW,
        f"expected {expected} fields, found {found} (line {line})",
        text,
    )


def _python_delimited(
    chunk: bytes, names: list[str], layout: DelimitedLayout, first_row: int, header_lines: int
) -> ParsedChunk:
    """Row-tolerant reading of a chunk pyarrow refused: each bad record is one bad row."""
    text = chunk.decode("utf-8", errors="replace")
    source = io.StringIO(text, newline="")
    if layout.quote is not None:
        reader = csv.reader(source, delimiter=layout.delimiter, quotechar=layout.quote)
    else:
        reader = csv.reader(source, delimiter=layout.delimiter, quoting=csv.QUOTE_NONE)
    good: list[list[str]] = []
    numbers: list[int] = []
    bad: list[BadRow] = []
    record = 0
    for values in reader:
        if not values:  # a blank line is not a record (as for pyarrow)
            continue
        record += 1
        number = first_row + record
        if len(values) != len(names):
            raw = layout.delimiter.join(values)
            bad.append(
                _field_count_row(number, len(names), len(values), raw, line=number + header_lines)
            )
            continue
        good.append(values)
        numbers.append(number)
    columns = {
        name: pl.Series(name, [row[i] or None for row in good], dtype=pl.String)
        for i, name in enumerate(names)
    }
    frame = pl.DataFrame(columns).with_columns(pl.Series(_ROW, numbers, dtype=pl.Int64))
    return ParsedChunk(frame, bad, record)


def _to_frame(table: pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    if isinstance(frame, pl.Series):  # pragma: no cover - a Table gives a DataFrame
        return frame.to_frame()
    return frame


def _good_row_numbers(first_row: int, n_good: int, bad_numbers: list[int]) -> np.ndarray[Any, Any]:
    """Row numbers of the parsed rows of a chunk, skipping those of its bad rows."""
    everything = np.arange(first_row + 1, first_row + n_good + len(bad_numbers) + 1, dtype=np.int64)
    if not bad_numbers:
        return everything
    return np.setdiff1d(everything, np.asarray(bad_numbers, dtype=np.int64))[:n_good]


# --- JSON lines ----------------------------------------------------------------------


def parse_jsonl(chunk: bytes, *, first_line: int) -> ParsedChunk:
    """Parse whole JSON lines: polars first; if that fails, line by line.

    The line-by-line path quarantines each bad line (`malformed-row`, with the line
    number): invalid JSON, a value that is not an object, and numbers no column type
    can hold (`1e400`, `NaN`, `Infinity`), which would otherwise stop polars for the
    whole file.
    """
    lines = chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)
    if not chunk.strip():
        return ParsedChunk(pl.DataFrame(schema={_ROW: pl.Int64()}), records=lines)
    try:
        frame = pl.read_ndjson(io.BytesIO(chunk), infer_schema_length=None)
    except Exception:  # any failure sends us to the slow path that finds the culprit
        return _jsonl_by_line(chunk, first_line, lines)
    if frame.height != lines:  # blank lines: row numbers need the line-by-line path
        return _jsonl_by_line(chunk, first_line, lines)
    frame = frame.with_row_index(_ROW, offset=first_line + 1).with_columns(
        pl.col(_ROW).cast(pl.Int64)
    )
    return ParsedChunk(frame, records=lines)


class _BadNumberError(ValueError):
    pass


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _BadNumberError(f"number {text} is out of range")
    return value


def _no_constant(text: str) -> float:
    raise _BadNumberError(f"{text} is not a JSON number")


def _jsonl_by_line(chunk: bytes, first_line: int, lines: int) -> ParsedChunk:
    good_lines: list[bytes] = []
    values: list[dict[str, Any]] = []
    good_numbers: list[int] = []
    bad: list[BadRow] = []
    replaced = False
    for index, raw in enumerate(chunk.split(b"\n")[:lines]):
        number = first_line + index + 1
        if not raw.strip():
            continue
        text = raw.decode("utf-8", errors="replace")
        replaced |= "\ufffd" in text
        try:
            value = json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)
        except _BadNumberError as exc:
            bad.append(_bad_json(number, f"invalid JSON: {exc}", text))
            continue
        except (json.JSONDecodeError, RecursionError) as exc:
            message = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            column = f" at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
            bad.append(_bad_json(number, f"invalid JSON: {message}{column}", text))
            continue
        if not isinstance(value, dict):
            bad.append(
                _bad_json(number, f"expected a JSON object, got {type(value).__name__}", text)
            )
            continue
        good_lines.append(text.encode("utf-8"))
        values.append(value)
        good_numbers.append(number)
    frame = _frame_from_json(good_lines, values)
    frame = frame.with_columns(pl.Series(_ROW, good_numbers, dtype=pl.Int64))
    return ParsedChunk(frame, bad, lines, replaced)


def _frame_from_json(lines: list[bytes], values: list[dict[str, Any]]) -> pl.DataFrame:
    """The good lines as a frame: polars' reader, else from the parsed values (mixed
    types across lines), else every value as text."""
    if not lines:
        return pl.DataFrame()
    try:
        return pl.read_ndjson(io.BytesIO(b"\n".join(lines)), infer_schema_length=None)
    except Exception:  # mixed types polars' JSON reader cannot unify
        pass
    try:
        return pl.from_dicts(values, infer_schema_length=None, strict=False)
    except Exception:  # still mixed: keep them as JSON text, validate casts them
        as_text = [
            {k: v if isinstance(v, str) or v is None else json.dumps(v) for k, v in row.items()}
            for row in values
        ]
        return pl.from_dicts(as_text, infer_schema_length=None)


def _bad_json(number: int, detail: str, text: str) -> BadRow:
    return BadRow(number, QuarantineReason.MALFORMED_ROW, f"{detail} (line {number})", text)


# --- sequence files ------------------------------------------------------------------


def parse_sequence(chunk: bytes, separator: str | None, *, first_line: int) -> ParsedChunk:
    """Parse `user item1 item2 ...` lines into one event row per item.

    Items are in time order; TIMESTAMP is the position 0, 1, 2, ... within the line
    and the row number is the line number. Lines without any item are malformed.
    """
    text = chunk.decode("utf-8", errors="replace")
    replaced = "\ufffd" in text
    lines = pl.DataFrame({"line": text.split("\n")})
    if text.endswith("\n"):
        lines = lines.head(lines.height - 1)
    lines = lines.with_row_index(_ROW, offset=first_line + 1).with_columns(
        pl.col(_ROW).cast(pl.Int64)
    )
    tokens = pl.col("line").str.strip_chars()
    split = (
        tokens.str.split(separator)
        if separator
        else tokens.str.replace_all(r"\s+", " ").str.split(" ")
    )
    lines = lines.with_columns(split.alias("tokens")).filter(
        pl.col("line").str.strip_chars().str.len_chars() > 0
    )
    short = lines.filter(pl.col("tokens").list.len() < 2)
    bad = [
        BadRow(
            int(number),
            QuarantineReason.MALFORMED_ROW,
            f"a sequence line needs a user and at least one item (line {number})",
            str(line),
        )
        for number, line in zip(short[_ROW], short["line"], strict=True)
    ]
    events = (
        lines.filter(pl.col("tokens").list.len() >= 2)
        .select(
            pl.col("tokens").list.first().alias(RAW_USER_ID),
            pl.col("tokens").list.slice(1).alias(RAW_ITEM_ID),
            pl.int_ranges(0, pl.col("tokens").list.len() - 1, dtype=pl.Int64).alias(TIMESTAMP),
            pl.col(_ROW),
        )
        .explode([RAW_ITEM_ID, TIMESTAMP])
    )
    records = text.count("\n")
    return ParsedChunk(events, bad, records, replaced)


def empty_sequence_frame() -> pl.DataFrame:
    """The columns of a sequence file without any line."""
    return pl.DataFrame(
        schema={
            RAW_USER_ID: pl.String(),
            RAW_ITEM_ID: pl.String(),
            TIMESTAMP: pl.Int64(),
            _ROW: pl.Int64(),
        }
    )
