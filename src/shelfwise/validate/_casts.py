"""Vectorised conversions from values as read (strings or native types) to contract types.

Every function returns polars expressions; nothing loops over rows in Python. A value
that is present but cannot be converted becomes null, and the caller compares it
with the raw value to report `bad-type`.
"""

from __future__ import annotations

from typing import Final, Literal

import polars as pl

TimestampUnit = Literal["auto", "s", "ms", "iso", "ordinal"]

MILLISECONDS_ABOVE: Final = 1e11  # auto: numbers above this are milliseconds
# ISO-8601 layouts tried in order; a trailing Z is rewritten to +00:00 first.
_ISO_ZONED: Final = ("%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z")
_ISO_NAIVE: Final = (
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
)
# Values that mean "no value" in exported ids (R, pandas, SQL, Excel); matched after
# trimming, in any case. A literal NA user id once held 62% of a file's rows.
MISSING_MARKERS: Final = ("na", "n/a", "#n/a", "<na>", "null", "none", "nan")
_TRUE: Final = ("true", "t", "yes", "y", "1")
_FALSE: Final = ("false", "f", "no", "n", "0")


def dtype_of(schema: pl.Schema, column: str) -> pl.DataType | None:
    """The column's dtype, or None when the frame lacks it."""
    return schema.get(column)


def text(schema: pl.Schema, column: str) -> pl.Expr:
    """A column as trimmed text; empty strings become null.

    Lists are joined with ", ", structs become JSON, other types their string form.
    """
    dtype = dtype_of(schema, column)
    if dtype is None or dtype == pl.Null:
        return pl.lit(None, pl.String)
    source = pl.col(column)
    if dtype == pl.String:
        value = source
    elif isinstance(dtype, pl.List | pl.Array):
        value = source.cast(pl.List(pl.String), strict=False).list.join(", ")
    elif isinstance(dtype, pl.Struct):
        value = source.struct.json_encode()
    else:
        value = source.cast(pl.String, strict=False)
    value = value.str.strip_chars()
    return pl.when(value.str.len_bytes() > 0).then(value)


def identifier(schema: pl.Schema, column: str) -> pl.Expr:
    """An id column as trimmed text; empty values and missing markers (NA, null, None,
    N/A, nan, …) become null."""
    value = text(schema, column)
    return pl.when(~value.str.to_lowercase().is_in(MISSING_MARKERS)).then(value)


def marker(schema: pl.Schema, column: str) -> pl.Expr:
    """True where an id column holds a missing marker such as NA (not merely blank)."""
    return text(schema, column).str.to_lowercase().is_in(MISSING_MARKERS).fill_null(False)


def present(schema: pl.Schema, column: str) -> pl.Expr:
    """True where the raw value is there (not null, not blank text)."""
    dtype = dtype_of(schema, column)
    if dtype is None or dtype == pl.Null:
        return pl.lit(False)
    if dtype == pl.String:
        return pl.col(column).str.strip_chars().str.len_bytes().fill_null(0) > 0
    return pl.col(column).is_not_null()


def number(schema: pl.Schema, column: str) -> pl.Expr:
    """A column as a finite Float64; null where missing or not a number."""
    dtype = dtype_of(schema, column)
    if dtype is None or dtype == pl.Null:
        return pl.lit(None, pl.Float64)
    source = pl.col(column)
    if dtype == pl.String:
        source = source.str.strip_chars()
    value = source.cast(pl.Float64, strict=False)
    return pl.when(value.is_finite()).then(value)


def boolean(schema: pl.Schema, column: str) -> pl.Expr:
    """A column as Boolean: true/false, yes/no, y/n, t/f, 1/0 (any case) or numbers."""
    dtype = dtype_of(schema, column)
    if dtype is None or dtype == pl.Null:
        return pl.lit(None, pl.Boolean)
    if dtype == pl.Boolean:
        return pl.col(column)
    if dtype == pl.String:
        lowered = pl.col(column).str.strip_chars().str.to_lowercase()
        return (
            pl.when(lowered.is_in(_TRUE))
            .then(pl.lit(True))
            .when(lowered.is_in(_FALSE))
            .then(pl.lit(False))
        )
    return number(schema, column) != 0


def timestamp_seconds(frame: pl.DataFrame, column: str, unit: TimestampUnit) -> pl.Series:
    """A column as UTC unix seconds (Int64); null where missing or unparsable.

    Eager, so that the costly ISO-8601 parsing runs only on the rows whose value is
    not a number (in "auto" mode often none).

    Args:
        frame: the rows.
        column: the timestamp column.
        unit: "auto" (numbers above 1e11 are ms, other numbers s, strings ISO-8601),
            "s", "ms", "iso", or "ordinal" (integers kept as they are).
    """
    schema = frame.schema
    dtype = dtype_of(schema, column)
    if dtype is None or dtype == pl.Null:
        return pl.Series(column, [None] * frame.height, dtype=pl.Int64)
    if isinstance(dtype, pl.Datetime):
        return frame.select(pl.col(column).dt.epoch("s")).to_series()
    if dtype == pl.Date:
        return frame.select(pl.col(column).cast(pl.Datetime("us")).dt.epoch("s")).to_series()
    seconds = frame.select(_numeric_seconds(number(schema, column), unit)).to_series()
    if dtype != pl.String or unit in ("s", "ms", "ordinal"):
        return seconds
    pending = frame.select(seconds.is_null() & present(schema, column)).to_series().arg_true()
    if pending.is_empty():
        return seconds
    parsed = frame.select(_iso_seconds(pl.col(column).gather(pending))).to_series()
    return seconds.scatter(pending, parsed)


def _numeric_seconds(value: pl.Expr, unit: TimestampUnit) -> pl.Expr:
    if unit == "iso":
        return pl.lit(None, pl.Int64)
    if unit == "ms":
        value = value / 1000.0
    elif unit == "auto":
        value = pl.when(value > MILLISECONDS_ABOVE).then(value / 1000.0).otherwise(value)
    return value.floor().cast(pl.Int64, strict=False)


def _iso_seconds(raw: pl.Expr) -> pl.Expr:
    normal = raw.str.strip_chars().str.replace(r"[Zz]$", "+00:00")
    parsed = [
        normal.str.to_datetime(layout, strict=False, time_unit="us").dt.epoch("s")
        for layout in (*_ISO_ZONED, *_ISO_NAIVE)
    ]
    day = normal.str.to_date("%Y-%m-%d", strict=False).cast(pl.Datetime("us")).dt.epoch("s")
    return pl.coalesce(*parsed, day)


def timestamp_kinds(frame: pl.DataFrame, column: str, unit: TimestampUnit) -> dict[str, int]:
    """How many values of a timestamp column are read as what (for the report).

    Keys: "datetime" (native date/time values), "seconds", "milliseconds", "iso"
    (text parsed as ISO-8601), "ordinal"; only non-zero counts are returned.
    """
    schema = frame.schema
    dtype = dtype_of(schema, column)
    if dtype is None or dtype == pl.Null:
        return {}
    if isinstance(dtype, pl.Datetime) or dtype == pl.Date:
        return {"datetime": frame.height - frame[column].null_count()}
    value = number(schema, column)
    if unit == "ordinal":
        kinds = {"ordinal": value.is_not_null().sum()}
    elif unit == "iso":
        kinds = {"iso": present(schema, column).sum()}
    else:
        as_ms = value > MILLISECONDS_ABOVE if unit == "auto" else pl.lit(unit == "ms")
        kinds = {
            "milliseconds": (value.is_not_null() & as_ms).sum(),
            "seconds": (value.is_not_null() & ~as_ms).sum(),
        }
        if unit == "auto" and dtype == pl.String:
            kinds["iso"] = (present(schema, column) & value.is_null()).sum()
    counts = frame.select(**{name: expr.cast(pl.Int64) for name, expr in kinds.items()}).row(
        0, named=True
    )
    return {name: int(count) for name, count in counts.items() if count}
