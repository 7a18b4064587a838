"""One reader per file format; each turns a file's bytes into a frame plus bad rows.

Readers keep values as read: every column is a string for delimited and sequence
files, native types for Parquet and JSON lines. They add the 1-based data row number
(`_ROW`), counting rows they could not parse, so a quarantined row points back at
its place in the file.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv

from shelfwise.contracts import RAW_ITEM_ID, RAW_USER_ID, TIMESTAMP, QuarantineReason
from shelfwise.errors import ConfigError, InputFileError

_ROW: Final = "__shelfwise_row"
_NON_SPACE: Final = re.compile(rb"\S")  # internal: 1-based data row within its file


@dataclass(frozen=True)
class BadRow:
    """A row that could not be parsed into columns."""

    row_number: int
    reason: QuarantineReason
    detail: str
    raw_text: str


@dataclass
class ParsedFile:
    """What a reader got out of one file."""

    frame: pl.DataFrame  # the file's own columns plus _ROW
    bad_rows: list[BadRow] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    last_row_number: int = 0  # highest data row (or line) number consumed, parsed or not


@dataclass(frozen=True)
class DelimitedLayout:
    """How to split a delimited text file."""

    delimiter: str
    quote: str | None  # None: quotes are ordinary characters
    has_header: bool
    column_names: list[str] | None
    strip_type_suffix: bool = False  # RecBole headers: `user_id:token` -> `user_id`


# --- delimited text (csv, tsv, RecBole atomic files) --------------------------------


def read_delimited(data: bytes, path: Path, layout: DelimitedLayout) -> ParsedFile:
    """Read CSV/TSV bytes with pyarrow, every column as a string.

    Rows with the wrong number of fields go to the bad rows as `malformed-row`.

    Raises:
        ConfigError: a header-less file without `column_names`.
        InputFileError: the file cannot be parsed at all.
    """
    names = _column_names(data, path, layout)
    header_lines = 1 if layout.has_header else 0
    body_start = _first_line_end(data) + 1 if layout.has_header else 0
    if not _has_content(data, body_start):
        frame = pl.DataFrame(schema=dict.fromkeys(names, pl.String()))
        return ParsedFile(frame.with_columns(pl.lit(None, pl.Int64).alias(_ROW)))
    read_options = pacsv.ReadOptions(column_names=names, skip_rows=header_lines)
    parse_kwargs: dict[str, Any] = {
        "delimiter": layout.delimiter,
        "quote_char": layout.quote if layout.quote is not None else False,
        "newlines_in_values": layout.quote is not None,
    }
    convert_options = pacsv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.string()),
        strings_can_be_null=True,
        null_values=[""],
    )
    table, invalid, warnings = _arrow_read(
        data, path, read_options=read_options, parse_kwargs=parse_kwargs, convert=convert_options
    )
    bad = [
        BadRow(
            row_number=row.number - header_lines,
            reason=QuarantineReason.MALFORMED_ROW,
            detail=f"expected {row.expected_columns} fields, found {row.actual_columns} "
            f"(line {row.number})",
            raw_text=row.text,
        )
        for row in invalid
    ]
    frame = _to_frame(table)
    rows = _good_row_numbers(frame.height, [b.row_number for b in bad])
    frame = frame.with_columns(pl.Series(_ROW, rows, dtype=pl.Int64))
    return ParsedFile(frame, bad, warnings, last_row_number=frame.height + len(bad))


def _first_line_end(data: bytes) -> int:
    """Index of the first newline, or len(data) when there is none."""
    end = data.find(b"\n")
    return len(data) if end < 0 else end


def _has_content(data: bytes, start: int) -> bool:
    """Whether anything but whitespace follows `start` (without copying the data)."""
    return _NON_SPACE.search(data, start) is not None


def _column_names(data: bytes, path: Path, layout: DelimitedLayout) -> list[str]:
    if layout.column_names is not None:
        names = list(layout.column_names)
    elif not layout.has_header:
        raise ConfigError(
            f"{path} is read without a header (has_header: false) but no column_names are "
            f"set; add column_names: [your, columns, in, file, order] to its source config"
        )
    else:
        first = data[: _first_line_end(data)].rstrip(b"\r").decode("utf-8", errors="replace")
        first = first.removeprefix("\ufeff")
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


def _arrow_read(
    data: bytes,
    path: Path,
    *,
    read_options: pacsv.ReadOptions,
    parse_kwargs: dict[str, Any],
    convert: pacsv.ConvertOptions,
) -> tuple[pa.Table, list[Any], list[str]]:
    """pyarrow's CSV reader with the fallbacks that keep a bad file readable.

    Invalid UTF-8 makes pyarrow refuse the whole file; the bytes are then decoded with
    replacement characters (U+FFFD), which validate quarantines as `undecodable-text`.
    Multi-threaded reading loses the line numbers of invalid rows, so a file that has
    any is read again on one thread.
    """
    warnings: list[str] = []
    for attempt in range(3):
        invalid: list[Any] = []

        def handler(row: Any, invalid: list[Any] = invalid) -> str:
            invalid.append(row)
            return "skip"

        options = pacsv.ParseOptions(invalid_row_handler=handler, **parse_kwargs)
        try:
            table = pacsv.read_csv(
                io.BytesIO(data),
                read_options=read_options,
                parse_options=options,
                convert_options=convert,
            )
        except pa.ArrowInvalid as exc:
            if "UTF8" in str(exc) and attempt == 0:
                data = data.decode("utf-8", errors="replace").encode("utf-8")
                warnings.append(
                    f"{path}: invalid UTF-8 bytes replaced by U+FFFD; rows holding them "
                    f"are quarantined as {QuarantineReason.UNDECODABLE_TEXT.value}"
                )
                continue
            raise InputFileError(
                f"{path}: cannot parse as delimited text ({exc}); check the source's "
                f"format, separator and has_header settings"
            ) from None
        if any(row.number is None for row in invalid) and read_options.use_threads:
            read_options.use_threads = False
            continue
        return table, invalid, warnings
    raise InputFileError(
        f"{path}: could not be parsed after decoding fallbacks"
    )  # pragma: no cover


def _to_frame(table: pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    if isinstance(frame, pl.Series):  # pragma: no cover - a Table gives a DataFrame
        return frame.to_frame()
    return frame


def _good_row_numbers(n_good: int, bad_numbers: list[int]) -> np.ndarray[Any, Any]:
    """1-based data row numbers of the parsed rows, skipping those of bad rows."""
    if not bad_numbers:
        return np.arange(1, n_good + 1, dtype=np.int64)
    everything = np.arange(1, n_good + len(bad_numbers) + 1, dtype=np.int64)
    return np.setdiff1d(everything, np.asarray(bad_numbers, dtype=np.int64))[:n_good]


# --- Parquet -------------------------------------------------------------------------


def read_parquet(data: bytes, path: Path) -> ParsedFile:
    """Read a Parquet file with its own column types.

    Raises:
        InputFileError: not a readable Parquet file.
    """
    try:
        frame = pl.read_parquet(io.BytesIO(data))
    except Exception as exc:  # polars raises several unrelated types for bad files
        raise InputFileError(
            f"{path}: not a readable Parquet file ({exc}); check the file or set the "
            f"source's format"
        ) from None
    frame = frame.with_row_index(_ROW, offset=1).with_columns(pl.col(_ROW).cast(pl.Int64))
    return ParsedFile(frame, last_row_number=frame.height)


# --- JSON lines ----------------------------------------------------------------------


def read_jsonl(data: bytes, path: Path) -> ParsedFile:
    """Read JSON lines: polars first; if that fails, find the bad lines one by one."""
    if not _has_content(data, 0):
        return ParsedFile(pl.DataFrame(schema={_ROW: pl.Int64()}))
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    try:
        frame = pl.read_ndjson(io.BytesIO(data), infer_schema_length=None)
    except Exception:  # any failure sends us to the slow path that finds the culprit
        return _read_jsonl_by_line(data, path)
    if frame.height != lines:  # blank lines: row numbers need the line-by-line path
        return _read_jsonl_by_line(data, path)
    frame = frame.with_row_index(_ROW, offset=1).with_columns(pl.col(_ROW).cast(pl.Int64))
    return ParsedFile(frame, last_row_number=lines)


def _read_jsonl_by_line(data: bytes, path: Path) -> ParsedFile:
    good_lines: list[bytes] = []
    good_numbers: list[int] = []
    bad: list[BadRow] = []
    warnings: list[str] = []
    undecodable = 0
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        text = raw.decode("utf-8", errors="replace")
        undecodable += "\ufffd" in text
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            bad.append(_bad_json(number, f"invalid JSON: {exc.msg} at column {exc.colno}", text))
            continue
        if not isinstance(value, dict):
            bad.append(
                _bad_json(number, f"expected a JSON object, got {type(value).__name__}", text)
            )
            continue
        good_lines.append(text.encode("utf-8"))
        good_numbers.append(number)
    if undecodable:
        warnings.append(
            f"{path}: invalid UTF-8 bytes on {undecodable} line(s) replaced by U+FFFD; "
            f"those rows are quarantined as {QuarantineReason.UNDECODABLE_TEXT.value}"
        )
    if good_lines:
        frame = pl.read_ndjson(io.BytesIO(b"\n".join(good_lines)), infer_schema_length=None)
    else:
        frame = pl.DataFrame()
    frame = frame.with_columns(pl.Series(_ROW, good_numbers, dtype=pl.Int64))
    return ParsedFile(frame, bad, warnings, last_row_number=frame.height + len(bad))


def _bad_json(number: int, detail: str, text: str) -> BadRow:
    return BadRow(number, QuarantineReason.MALFORMED_ROW, f"{detail} (line {number})", text)


# --- sequence files ------------------------------------------------------------------


def read_sequence(data: bytes, path: Path, separator: str | None) -> ParsedFile:
    """Read `user item1 item2 ...` lines into one event row per item.

    Items are in time order; TIMESTAMP is the position 0, 1, 2, ... within the line
    and the row number is the line number. Lines without any item are malformed.
    """
    read_options = pacsv.ReadOptions(column_names=["line"])
    parse_kwargs: dict[str, Any] = {
        "delimiter": "\x01",
        "quote_char": False,
        "ignore_empty_lines": False,
    }
    convert = pacsv.ConvertOptions(
        column_types={"line": pa.string()}, strings_can_be_null=True, null_values=[""]
    )
    if not _has_content(data, 0):
        return ParsedFile(_empty_sequence_frame())
    table, invalid, warnings = _arrow_read(
        data, path, read_options=read_options, parse_kwargs=parse_kwargs, convert=convert
    )
    bad = [
        BadRow(
            row.number, QuarantineReason.MALFORMED_ROW, "control character \\x01 in line", row.text
        )
        for row in invalid
    ]
    lines = _to_frame(table)
    rows = _good_row_numbers(lines.height, [b.row_number for b in bad])
    tokens = pl.col("line").str.strip_chars()
    split = (
        tokens.str.split(separator)
        if separator
        else tokens.str.replace_all(r"\s+", " ").str.split(" ")
    )
    lines = lines.with_columns(pl.Series(_ROW, rows, dtype=pl.Int64), split.alias("tokens")).filter(
        pl.col("line").str.strip_chars().str.len_chars() > 0
    )
    short = lines.filter(pl.col("tokens").list.len() < 2)
    bad.extend(
        BadRow(
            int(number),
            QuarantineReason.MALFORMED_ROW,
            f"a sequence line needs a user and at least one item (line {number})",
            str(text),
        )
        for number, text in zip(short[_ROW], short["line"], strict=True)
    )
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
    bad.sort(key=lambda row: row.row_number)
    return ParsedFile(events, bad, warnings, last_row_number=table.num_rows + len(invalid))


def _empty_sequence_frame() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            RAW_USER_ID: pl.String(),
            RAW_ITEM_ID: pl.String(),
            TIMESTAMP: pl.Int64(),
            _ROW: pl.Int64(),
        }
    )
