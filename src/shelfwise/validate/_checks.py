"""Row checks for each source: catalog, events, labelled queries.

Stage 1 holds the row-local checks (ids, lengths, values and types, ranges), stage 2
the duplicate checks (over rows that passed stage 1), stage 3 the unknown-item check.
Within a stage the first failing check, in list order, gives the row's reason, so a
row is quarantined once. Every source gets its stage 1 here, batch by batch, and
stages 2 and 3 in `_engine` (partitioned on disk, so memory stays bounded).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import polars as pl

from shelfwise.config import DataConfig, EventsConfig
from shelfwise.config.data import FieldLimits
from shelfwise.contracts import (
    ATTRIBUTES,
    BRAND,
    CATALOG_SCHEMA,
    CATEGORY,
    DESCRIPTION,
    EVENT_SCHEMA,
    EVENT_TYPE,
    IN_STOCK,
    POSITION,
    PRICE,
    QUERY,
    QUERY_SCHEMA,
    RAW_ITEM_ID,
    RAW_USER_ID,
    RELEVANCE,
    SESSION_ID,
    SPLIT,
    TIMESTAMP,
    TITLE,
    VALUE,
    EventType,
    QuarantineReason,
    SplitName,
)
from shelfwise.validate._casts import (
    TimestampUnit,
    boolean,
    identifier,
    marker,
    number,
    present,
    text,
    timestamp_seconds,
)
from shelfwise.validate._stages import (
    Check,
    first_row,
    iso_text,
    typed,
    typed_col,
    undecodable_checks,
)

EVENT_TYPES: Final = tuple(member.value for member in EventType)
# Item attributes that events may carry, used to describe items of a derived catalog.
EVENT_ITEM_ATTRIBUTES: Final = (TITLE, CATEGORY, BRAND, PRICE)


# --- catalog ---------------------------------------------------------------------------


def catalog_rows(
    raw: pl.DataFrame, limits: FieldLimits | None = None
) -> tuple[pl.DataFrame, list[Check]]:
    """Typed columns and the stage-1 checks of a batch of catalog rows."""
    schema = raw.schema
    frame = raw.with_columns(
        identifier(schema, RAW_ITEM_ID).alias(typed(RAW_ITEM_ID)),
        *[
            text(schema, c).alias(typed(c))
            for c in (TITLE, DESCRIPTION, CATEGORY, BRAND, ATTRIBUTES)
        ],
        number(schema, PRICE).alias(typed(PRICE)),
        boolean(schema, IN_STOCK).alias(typed(IN_STOCK)),
    )
    row_checks = [
        Check(
            QuarantineReason.MISSING_ID,
            typed_col(RAW_ITEM_ID).is_null(),
            missing_id_detail(schema, RAW_ITEM_ID),
        ),
        *length_checks(raw.columns, limits or FieldLimits()),
        *undecodable_checks(raw),
        Check(
            QuarantineReason.BAD_TYPE,
            present(schema, PRICE) & typed_col(PRICE).is_null(),
            pl.format("price {} is not a number", text(schema, PRICE)),
        ),
        Check(
            QuarantineReason.BAD_TYPE,
            present(schema, IN_STOCK) & typed_col(IN_STOCK).is_null(),
            pl.format("in_stock {} is not true/false, yes/no or 1/0", text(schema, IN_STOCK)),
        ),
        Check(
            QuarantineReason.NEGATIVE_PRICE,
            typed_col(PRICE) < 0,
            pl.format("price {} is negative", text(schema, PRICE)),
        ),
    ]
    return frame, row_checks


# Stage 2 of the catalog. Rows identical in every catalog column (the same product
# listed twice, e.g. once per query in a relevance file) are merged into the first,
# not rejected; a repeated id with other content is a duplicate-item.
CATALOG_KEYS: Final = (typed(RAW_ITEM_ID),)
CATALOG_CONTENT: Final = tuple(typed(c) for c in CATALOG_SCHEMA)


def catalog_duplicate_detail() -> pl.Expr:
    """Detail of an id described differently by an earlier row (needs `first_row()`)."""
    return pl.format(
        "raw_item_id {} already described differently in row {} (first kept)",
        typed_col(RAW_ITEM_ID),
        first_row(),
    )


def catalog_output(accepted: pl.DataFrame) -> pl.DataFrame:
    """Accepted catalog rows in CATALOG_SCHEMA."""
    return accepted.select(
        [typed_col(c).cast(dtype).alias(c) for c, dtype in CATALOG_SCHEMA.items()]
    )


# --- events ----------------------------------------------------------------------------


@dataclass(frozen=True)
class EventRules:
    """What event checks need from the config."""

    event_type_values: dict[str, str]
    default_event_type: str
    unit: TimestampUnit
    min_timestamp: int
    max_timestamp: int
    limits: FieldLimits

    @classmethod
    def from_config(cls, data: DataConfig, *, unit: TimestampUnit | None, now: float) -> EventRules:
        """Rules from `data.events` (defaults without it) at time `now`."""
        events = data.events or EventsConfig(path=Path("."))
        mapping = {
            key.strip().lower(): value.value for key, value in events.event_type_values.items()
        }
        return cls(
            event_type_values=mapping,
            default_event_type=events.default_event_type.value,
            unit=unit or events.timestamp_unit,
            min_timestamp=data.min_timestamp,
            max_timestamp=int(now) + data.max_future_seconds,
            limits=data.limits,
        )


def event_rows(
    raw: pl.DataFrame, rules: EventRules, *, first_seq: int = 0
) -> tuple[pl.DataFrame, list[Check]]:
    """Typed columns and the stage-1 checks of a batch of event rows.

    Args:
        raw: the batch as ingested (with ROW_NUMBER and SOURCE_FILE).
        rules: event settings from the config.
        first_seq: events of the source before this batch: without a timestamp
            column, the position in the source stands in for time.
    """
    schema = raw.schema
    ordinal = rules.unit == "ordinal" or TIMESTAMP not in raw.columns
    if TIMESTAMP in raw.columns:
        stamp = timestamp_seconds(raw, TIMESTAMP, rules.unit)
    else:  # file order stands in for time
        stamp = pl.Series(values=range(first_seq, first_seq + raw.height), dtype=pl.Int64)
    if EVENT_TYPE in raw.columns:
        event_type = text(schema, EVENT_TYPE).str.to_lowercase().replace(rules.event_type_values)
    else:
        event_type = pl.lit(rules.default_event_type, pl.String)
    frame = raw.with_columns(
        *[identifier(schema, c).alias(typed(c)) for c in (RAW_USER_ID, RAW_ITEM_ID, SESSION_ID)],
        *[text(schema, c).alias(typed(c)) for c in (QUERY, TITLE, CATEGORY, BRAND)],
        text(schema, SPLIT).str.to_lowercase().alias(typed(SPLIT)),
        event_type.alias(typed(EVENT_TYPE)),
        stamp.alias(typed(TIMESTAMP)),
        number(schema, VALUE).alias(typed(VALUE)),
        number(schema, PRICE).alias(typed(PRICE)),
        number(schema, POSITION).alias(typed(POSITION)),
    )
    user, item, ts = typed_col(RAW_USER_ID), typed_col(RAW_ITEM_ID), typed_col(TIMESTAMP)
    row_checks = [
        Check(
            QuarantineReason.MISSING_ID,
            user.is_null() | item.is_null(),
            pl.when(user.is_null())
            .then(missing_id_detail(schema, RAW_USER_ID))
            .otherwise(missing_id_detail(schema, RAW_ITEM_ID)),
        ),
    ]
    row_checks += [
        Check(
            QuarantineReason.MISSING_VALUE, ~present(schema, column), pl.lit(f"{column} is empty")
        )
        for column in (EVENT_TYPE, TIMESTAMP)
        if column in raw.columns
    ]
    row_checks += [
        *length_checks(raw.columns, rules.limits),
        *undecodable_checks(raw),
        Check(
            QuarantineReason.BAD_TYPE,
            ts.is_null(),
            pl.format(
                "timestamp {} is not {}", text(schema, TIMESTAMP), pl.lit(_UNIT_WORDS[rules.unit])
            ),
        ),
        Check(
            QuarantineReason.BAD_TYPE,
            present(schema, VALUE) & typed_col(VALUE).is_null(),
            pl.format("value {} is not a number", text(schema, VALUE)),
        ),
        Check(
            QuarantineReason.BAD_TYPE,
            present(schema, POSITION)
            & ~(
                (typed_col(POSITION) >= 1) & (typed_col(POSITION) == typed_col(POSITION).floor())
            ).fill_null(False),
            pl.format("position {} is not a whole number >= 1", text(schema, POSITION)),
        ),
        Check(
            QuarantineReason.BAD_EVENT_TYPE,
            ~typed_col(EVENT_TYPE).is_in(EVENT_TYPES),
            pl.format(
                "event_type {} is not one of {}; map your values with "
                "data.events.event_type_values",
                text(schema, EVENT_TYPE),
                pl.lit(", ".join(EVENT_TYPES)),
            ),
        ),
        Check(
            QuarantineReason.BAD_TYPE,
            typed_col(SPLIT).is_not_null()
            & ~typed_col(SPLIT).is_in([name.value for name in SplitName]),
            pl.format("split {} is not one of train, valid, test", text(schema, SPLIT)),
        ),
    ]
    if not ordinal:
        row_checks.append(
            Check(
                QuarantineReason.TIMESTAMP_OUT_OF_RANGE,
                (ts < rules.min_timestamp) | (ts > rules.max_timestamp),
                pl.format(
                    "timestamp {} ({}) is outside {} .. {} (data.min_timestamp .. now + "
                    "data.max_future_seconds)",
                    text(schema, TIMESTAMP),
                    iso_text(ts),
                    iso_text(pl.lit(rules.min_timestamp)),
                    iso_text(pl.lit(rules.max_timestamp)),
                ),
            )
        )
    return frame, row_checks


# Stage 2 of events: the key of a duplicate, and what the quarantine says about one.
EVENT_KEYS: Final = tuple(typed(c) for c in (RAW_USER_ID, RAW_ITEM_ID, EVENT_TYPE, TIMESTAMP))


def event_duplicate_detail() -> pl.Expr:
    """Detail of a duplicate event (needs `first_row()`)."""
    return pl.format("same user, item, event type and timestamp as row {}", first_row())


_UNIT_WORDS: Final[dict[str, str]] = {
    "auto": "unix time (s or ms) or an ISO-8601 date-time",
    "s": "unix seconds",
    "ms": "unix milliseconds",
    "iso": "an ISO-8601 date-time",
    "ordinal": "an integer position",
}


def unknown_item_detail() -> pl.Expr:
    """Detail of an event or label whose item is not in the catalog."""
    return pl.format("raw_item_id {} is not in the catalog", typed_col(RAW_ITEM_ID))


def missing_id_detail(schema: pl.Schema, column: str) -> pl.Expr:
    """`<column> is empty`, or names the missing marker (NA, null, …) it holds."""
    return (
        pl.when(marker(schema, column))
        .then(
            pl.format(
                "{} {} is a missing-value marker (NA, N/A, null, None, nan count as empty)",
                pl.lit(column),
                text(schema, column),
            )
        )
        .otherwise(pl.lit(f"{column} is empty"))
    )


# Text columns with a length limit: column -> the FieldLimits field that holds it.
_LIMITED: Final = {
    RAW_USER_ID: "id_chars",
    RAW_ITEM_ID: "id_chars",
    SESSION_ID: "id_chars",
    TITLE: "title_chars",
    CATEGORY: "title_chars",
    BRAND: "title_chars",
    QUERY: "query_chars",
    DESCRIPTION: "description_chars",
    ATTRIBUTES: "description_chars",
}


def length_checks(columns: list[str], limits: FieldLimits) -> list[Check]:
    """One `field-too-long` check over the limited text columns a frame has.

    Lengths are counted in characters of the typed (trimmed) text; the detail names
    the first column over its limit, its length and the config key to raise.
    """
    limited = [(c, key) for c, key in _LIMITED.items() if c in columns]
    if not limited:
        return []
    over = [typed_col(c).str.len_chars().fill_null(0) > getattr(limits, key) for c, key in limited]
    detail = pl.coalesce(
        [
            pl.when(hit).then(
                pl.format(
                    "{} is {} characters long, over data.limits.{} = {}",
                    pl.lit(c),
                    typed_col(c).str.len_chars(),
                    pl.lit(key),
                    pl.lit(getattr(limits, key)),
                )
            )
            for hit, (c, key) in zip(over, limited, strict=True)
        ]
    )
    return [Check(QuarantineReason.FIELD_TOO_LONG, pl.any_horizontal(over), detail)]


def events_output(accepted: pl.DataFrame) -> pl.DataFrame:
    """Accepted events in EVENT_SCHEMA."""
    return accepted.select([typed_col(c).cast(dtype).alias(c) for c, dtype in EVENT_SCHEMA.items()])


class DerivedCatalog:
    """The catalog of the items in accepted events (then queries), built batch by batch.

    Items come in order of first appearance; the attributes the events carried (title,
    category, brand, price) are taken from the first event that has them. Memory
    follows the number of items, not of events.
    """

    def __init__(self) -> None:
        self._items = pl.DataFrame(
            schema={RAW_ITEM_ID: pl.String()}
            | {c: CATALOG_SCHEMA[c] for c in EVENT_ITEM_ATTRIBUTES}
        )

    def add(self, accepted: pl.DataFrame) -> None:
        """Add the items of a batch of accepted (typed) event or query rows."""
        columns = [c for c in EVENT_ITEM_ATTRIBUTES if typed(c) in accepted.columns]
        new = accepted.select(
            typed_col(RAW_ITEM_ID).alias(RAW_ITEM_ID),
            *[typed_col(c).cast(CATALOG_SCHEMA[c]).alias(c) for c in columns],
        )
        combined = pl.concat([self._items, new], how="diagonal_relaxed")
        self._items = combined.group_by(RAW_ITEM_ID, maintain_order=True).agg(
            pl.col(c).drop_nulls().first() for c in EVENT_ITEM_ATTRIBUTES
        )

    @property
    def height(self) -> int:
        """Items so far."""
        return self._items.height

    def frame(self) -> pl.DataFrame:
        """The items in CATALOG_SCHEMA."""
        return self._items.select(
            [
                (pl.col(c) if c in self._items.columns else pl.lit(None)).cast(dtype).alias(c)
                for c, dtype in CATALOG_SCHEMA.items()
            ]
        )


# --- queries ---------------------------------------------------------------------------


def query_rows(raw: pl.DataFrame, limits: FieldLimits) -> tuple[pl.DataFrame, list[Check]]:
    """Typed columns and the stage-1 checks of a batch of labelled query rows."""
    schema = raw.schema
    frame = raw.with_columns(
        text(schema, QUERY).alias(typed(QUERY)),
        identifier(schema, RAW_ITEM_ID).alias(typed(RAW_ITEM_ID)),
        number(schema, RELEVANCE).alias(typed(RELEVANCE)),
    )
    item, query = typed_col(RAW_ITEM_ID), typed_col(QUERY)
    row_checks = [
        Check(QuarantineReason.MISSING_ID, item.is_null(), missing_id_detail(schema, RAW_ITEM_ID)),
        Check(QuarantineReason.MISSING_VALUE, query.is_null(), pl.lit("query is empty")),
        Check(
            QuarantineReason.MISSING_VALUE,
            ~present(schema, RELEVANCE),
            pl.lit("relevance is empty"),
        ),
        *length_checks(raw.columns, limits),
        *undecodable_checks(raw),
        Check(
            QuarantineReason.BAD_TYPE,
            typed_col(RELEVANCE).is_null(),
            pl.format("relevance {} is not a number", text(schema, RELEVANCE)),
        ),
    ]
    return frame, row_checks


QUERY_KEYS: Final = (typed(QUERY), typed(RAW_ITEM_ID))


def query_duplicate_detail() -> pl.Expr:
    """Detail of a repeated (query, item) label (needs `first_row()`)."""
    return pl.format(
        "query {} and item {} already labelled in row {}",
        typed_col(QUERY),
        typed_col(RAW_ITEM_ID),
        first_row(),
    )


def queries_output(accepted: pl.DataFrame) -> pl.DataFrame:
    """Accepted labels in QUERY_SCHEMA."""
    return accepted.select([typed_col(c).cast(dtype).alias(c) for c, dtype in QUERY_SCHEMA.items()])
