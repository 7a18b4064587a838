"""The check machinery: staged checks, typed columns, quarantine rows.

Stage 1 holds the row-local checks (ids, values and types, ranges), stage 2 the
duplicate checks (over rows that passed stage 1), stage 3 the unknown-item check.
Within a stage the first failing check, in list order, gives the row's reason, so a
row is quarantined once. Converted values sit next to the raw ones in columns named
`__t_<column>` until the accepted rows are selected into the contract schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import polars as pl

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

_CHECK: Final = "__check"  # index of the first failing check
_FIRST_ROW: Final = "__first_row"
_REASON: Final = "__reason"
_DETAIL: Final = "__detail"
_REPLACEMENT_CHAR: Final = "\ufffd"


def typed(column: str) -> str:
    """Name of the converted copy of `column`."""
    return f"__t_{column}"


def typed_col(column: str) -> pl.Expr:
    """The converted copy of `column` as an expression."""
    return pl.col(typed(column))


@dataclass(frozen=True)
class Check:
    """One reason a row can be rejected.

    `failed` runs on every row of its stage; `detail` only on the rejected ones. A
    duplicate check names its key columns in `first_row_of`, and its detail can then
    use `first_row()`, the row number of the row that was kept.
    """

    reason: QuarantineReason
    failed: pl.Expr  # Boolean; null counts as passed
    detail: pl.Expr  # String, shown in the quarantine
    first_row_of: tuple[str, ...] = ()


def first_row() -> pl.Expr:
    """In a duplicate check's detail: the row number of the row that was kept."""
    return pl.col(_FIRST_ROW)


@dataclass
class Checked:
    """Outcome of checking one source."""

    accepted: pl.DataFrame  # input columns + typed columns of the accepted rows
    rejected: list[pl.DataFrame] = field(default_factory=list)  # + _REASON, _DETAIL
    merged: int = 0  # exact duplicates folded into an earlier row

    @property
    def quarantined(self) -> int:
        """Number of rejected rows."""
        return sum(frame.height for frame in self.rejected)


def apply_stages(frame: pl.DataFrame, stages: list[list[Check]]) -> Checked:
    """Run check stages; each stage sees only the rows that passed the earlier ones.

    A row's reason is its first failing check, in list order.
    """
    result = Checked(accepted=frame)
    for checks in stages:
        if not checks or result.accepted.is_empty():
            continue
        first_failure = pl.coalesce(
            [
                pl.when(check.failed.fill_null(False)).then(pl.lit(index, pl.Int32))
                for index, check in enumerate(checks)
            ]
        )
        tagged = result.accepted.with_columns(first_failure.alias(_CHECK))
        rejected = tagged.filter(pl.col(_CHECK).is_not_null())
        result.accepted = tagged.filter(pl.col(_CHECK).is_null()).drop(_CHECK)
        if rejected.height:
            result.rejected.append(_describe(rejected, checks, kept=result.accepted))
    return result


def _describe(rejected: pl.DataFrame, checks: list[Check], *, kept: pl.DataFrame) -> pl.DataFrame:
    """Add _REASON and _DETAIL to rejected rows tagged with the index of their check."""
    lookups = [check.first_row_of for check in checks if check.first_row_of]
    if len(lookups) > 1:  # pragma: no cover - a programming error in this module
        raise ValueError("at most one duplicate check per stage")
    for keys in lookups:
        firsts = kept.select(*keys, pl.col(ROW_NUMBER).alias(_FIRST_ROW)).unique(list(keys))
        rejected = rejected.join(firsts, on=list(keys), how="left", maintain_order="left")
    reasons = {index: check.reason.value for index, check in enumerate(checks)}
    details = [
        pl.when(pl.col(_CHECK) == index).then(check.detail.cast(pl.String).fill_null("(empty)"))
        for index, check in enumerate(checks)
    ]
    described = rejected.with_columns(
        pl.col(_CHECK).replace_strict(reasons, return_dtype=pl.String).alias(_REASON),
        pl.coalesce(details).alias(_DETAIL),
    )
    return described.drop(_CHECK, *([_FIRST_ROW] if lookups else []))


def with_provenance(frame: pl.DataFrame) -> pl.DataFrame:
    """Add ROW_NUMBER (1-based) and SOURCE_FILE when a frame lacks them."""
    if ROW_NUMBER not in frame.columns:
        frame = frame.with_row_index(ROW_NUMBER, offset=1)
    if SOURCE_FILE not in frame.columns:
        frame = frame.with_columns(pl.lit(None, pl.String).alias(SOURCE_FILE))
    # A categorical file name (ingest's parts) stays one: it becomes text only in
    # the quarantine rows.
    keep = frame.schema[SOURCE_FILE] in (pl.String, pl.Categorical)
    source_file = pl.col(SOURCE_FILE) if keep else pl.col(SOURCE_FILE).cast(pl.String)
    return frame.with_columns(pl.col(ROW_NUMBER).cast(pl.Int64), source_file)


def raw_columns(frame: pl.DataFrame) -> list[str]:
    """The columns as read: not provenance, not converted copies."""
    return [
        c for c in frame.columns if c not in (ROW_NUMBER, SOURCE_FILE) and not c.startswith("__")
    ]


def to_quarantine(checked: Checked, kind: str, columns: list[str]) -> pl.DataFrame:
    """Rejected rows in QUARANTINE_SCHEMA; RAW_ROW is the row as read, as JSON."""
    frames = []
    for rejected in checked.rejected:
        row = pl.struct(
            [
                pl.col(c).cast(pl.String) if rejected.schema[c] == pl.Null else pl.col(c)
                for c in columns
            ]
        )
        frames.append(
            rejected.select(
                pl.lit(kind, pl.String).alias(SOURCE),
                pl.col(SOURCE_FILE).cast(pl.String),
                pl.col(ROW_NUMBER),
                pl.col(_REASON).alias(REASON),
                pl.col(_DETAIL).alias(DETAIL),
                row.struct.json_encode().alias(RAW_ROW),
            )
        )
    if not frames:
        return pl.DataFrame(schema=QUARANTINE_SCHEMA)
    return pl.concat(frames).cast(QUARANTINE_SCHEMA)  # type: ignore[arg-type]


def undecodable_checks(frame: pl.DataFrame) -> list[Check]:
    columns = [c for c in raw_columns(frame) if frame.schema[c] == pl.String]
    if not columns:
        return []
    hits = [
        pl.col(c).str.contains(_REPLACEMENT_CHAR, literal=True).fill_null(False) for c in columns
    ]
    detail = pl.coalesce(
        [
            pl.when(hit).then(pl.lit(f"{c} holds bytes that are not valid UTF-8 (shown as U+FFFD)"))
            for hit, c in zip(hits, columns, strict=True)
        ]
    )
    return [Check(QuarantineReason.UNDECODABLE_TEXT, pl.any_horizontal(hits), detail)]


def iso_text(seconds: pl.Expr) -> pl.Expr:
    # Dates only for years -1000 .. 5000; beyond that from_epoch could overflow.
    sane = seconds.is_between(-(10**11), 10**11)
    safe = pl.when(sane).then(seconds).otherwise(0)
    iso = pl.from_epoch(safe, time_unit="s").dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return pl.when(sane).then(iso).otherwise(pl.lit("far out of range"))
