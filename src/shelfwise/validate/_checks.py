"""Row checks for each source: catalog, events, labelled queries.

Stage 1 holds the row-local checks (ids, values and types, ranges), stage 2 the
duplicate checks (over rows that passed stage 1), stage 3 the unknown-item check.
Within a stage the first failing check, in list order, gives the row's reason, so a
row is quarantined once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import polars as pl

from shelfwise.config import DataConfig, EventsConfig
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
    number,
    present,
    text,
    timestamp_seconds,
)
from shelfwise.validate._stages import (
    Check,
    Checked,
    apply_stages,
    first_row,
    iso_text,
    typed,
    typed_col,
    undecodable_checks,
    with_provenance,
)

EVENT_TYPES: Final = tuple(member.value for member in EventType)
# Item attributes that events may carry, used to describe items of a derived catalog.
EVENT_ITEM_ATTRIBUTES: Final = (TITLE, CATEGORY, BRAND, PRICE)


# --- catalog ---------------------------------------------------------------------------


def check_catalog(raw: pl.DataFrame) -> Checked:
    """Check catalog rows; exact duplicate rows are merged, other repeated ids rejected."""
    raw = with_provenance(raw)
    schema = raw.schema
    frame = raw.with_columns(
        *[
            text(schema, c).alias(typed(c))
            for c in (RAW_ITEM_ID, TITLE, DESCRIPTION, CATEGORY, BRAND, ATTRIBUTES)
        ],
        number(schema, PRICE).alias(typed(PRICE)),
        boolean(schema, IN_STOCK).alias(typed(IN_STOCK)),
    )
    item = typed_col(RAW_ITEM_ID)
    row_checks = [
        Check(QuarantineReason.MISSING_ID, item.is_null(), pl.lit(f"{RAW_ITEM_ID} is empty")),
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
    checked = apply_stages(frame, [row_checks])
    # Rows identical in every catalog column (the same product listed twice, e.g. once
    # per query in a relevance file) are folded into the first; not an error.
    unique = checked.accepted.filter(
        pl.struct([typed(c) for c in CATALOG_SCHEMA]).is_first_distinct()
    )
    checked.merged = checked.accepted.height - unique.height
    duplicates = apply_stages(
        unique,
        [
            [
                Check(
                    QuarantineReason.DUPLICATE_ITEM,
                    ~item.is_first_distinct(),
                    pl.format(
                        "raw_item_id {} already described differently in row {} (first kept)",
                        item,
                        first_row(),
                    ),
                    first_row_of=(typed(RAW_ITEM_ID),),
                )
            ]
        ],
    )
    checked.accepted = duplicates.accepted
    checked.rejected.extend(duplicates.rejected)
    return checked


def catalog_output(checked: Checked) -> pl.DataFrame:
    """Accepted catalog rows in CATALOG_SCHEMA."""
    return checked.accepted.select(
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
        )


def check_events(raw: pl.DataFrame, rules: EventRules, catalog_ids: pl.Series | None) -> Checked:
    """Check event rows; `catalog_ids` None skips the unknown-item check."""
    raw = with_provenance(raw)
    schema = raw.schema
    ordinal = rules.unit == "ordinal" or TIMESTAMP not in raw.columns
    if TIMESTAMP in raw.columns:
        stamp = timestamp_seconds(raw, TIMESTAMP, rules.unit)
    else:  # file order stands in for time
        stamp = pl.Series(values=range(raw.height), dtype=pl.Int64)
    if EVENT_TYPE in raw.columns:
        event_type = text(schema, EVENT_TYPE).str.to_lowercase().replace(rules.event_type_values)
    else:
        event_type = pl.lit(rules.default_event_type, pl.String)
    frame = raw.with_columns(
        *[
            text(schema, c).alias(typed(c))
            for c in (RAW_USER_ID, RAW_ITEM_ID, SESSION_ID, QUERY, TITLE, CATEGORY, BRAND)
        ],
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
            .then(pl.lit(f"{RAW_USER_ID} is empty"))
            .otherwise(pl.lit(f"{RAW_ITEM_ID} is empty")),
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
    keys = [typed(c) for c in (RAW_USER_ID, RAW_ITEM_ID, EVENT_TYPE, TIMESTAMP)]
    stages = [
        row_checks,
        [
            Check(
                QuarantineReason.DUPLICATE_EVENT,
                ~pl.struct(keys).is_first_distinct(),
                pl.format("same user, item, event type and timestamp as row {}", first_row()),
                first_row_of=tuple(keys),
            )
        ],
    ]
    if catalog_ids is not None:
        stages.append([_unknown_item(catalog_ids)])
    return apply_stages(frame, stages)


_UNIT_WORDS: Final[dict[str, str]] = {
    "auto": "unix time (s or ms) or an ISO-8601 date-time",
    "s": "unix seconds",
    "ms": "unix milliseconds",
    "iso": "an ISO-8601 date-time",
    "ordinal": "an integer position",
}


def _unknown_item(catalog_ids: pl.Series) -> Check:
    item = typed_col(RAW_ITEM_ID)
    return Check(
        QuarantineReason.UNKNOWN_ITEM,
        ~item.is_in(catalog_ids.implode()),
        pl.format("raw_item_id {} is not in the catalog", item),
    )


def events_output(checked: Checked) -> pl.DataFrame:
    """Accepted events in EVENT_SCHEMA."""
    return checked.accepted.select(
        [typed_col(c).cast(dtype).alias(c) for c, dtype in EVENT_SCHEMA.items()]
    )


def derived_catalog(events: Checked | None, queries: Checked | None) -> pl.DataFrame:
    """A catalog of the items in accepted events (then queries), in CATALOG_SCHEMA.

    Item attributes the events carried (title, category, brand, price) are taken from
    the first event that has them.
    """
    parts = [pl.DataFrame(schema={RAW_ITEM_ID: pl.String()})]
    if events is not None:
        parts.append(
            events.accepted.select(
                typed_col(RAW_ITEM_ID).alias(RAW_ITEM_ID),
                *[typed_col(c).alias(c) for c in EVENT_ITEM_ATTRIBUTES],
            )
        )
    if queries is not None:
        parts.append(queries.accepted.select(typed_col(RAW_ITEM_ID).alias(RAW_ITEM_ID)))
    items = pl.concat(parts, how="diagonal_relaxed")
    attributes = [c for c in EVENT_ITEM_ATTRIBUTES if c in items.columns]
    described = items.group_by(RAW_ITEM_ID, maintain_order=True).agg(
        pl.col(c).drop_nulls().first() for c in attributes
    )
    return described.select(
        [
            (pl.col(c) if c in described.columns else pl.lit(None)).cast(dtype).alias(c)
            for c, dtype in CATALOG_SCHEMA.items()
        ]
    )


# --- queries ---------------------------------------------------------------------------


def check_queries(raw: pl.DataFrame, catalog_ids: pl.Series | None) -> Checked:
    """Check labelled query rows; `catalog_ids` None skips the unknown-item check."""
    raw = with_provenance(raw)
    schema = raw.schema
    frame = raw.with_columns(
        text(schema, QUERY).alias(typed(QUERY)),
        text(schema, RAW_ITEM_ID).alias(typed(RAW_ITEM_ID)),
        number(schema, RELEVANCE).alias(typed(RELEVANCE)),
    )
    item, query = typed_col(RAW_ITEM_ID), typed_col(QUERY)
    row_checks = [
        Check(QuarantineReason.MISSING_ID, item.is_null(), pl.lit(f"{RAW_ITEM_ID} is empty")),
        Check(QuarantineReason.MISSING_VALUE, query.is_null(), pl.lit("query is empty")),
        Check(
            QuarantineReason.MISSING_VALUE,
            ~present(schema, RELEVANCE),
            pl.lit("relevance is empty"),
        ),
        *undecodable_checks(raw),
        Check(
            QuarantineReason.BAD_TYPE,
            typed_col(RELEVANCE).is_null(),
            pl.format("relevance {} is not a number", text(schema, RELEVANCE)),
        ),
    ]
    keys = [typed(QUERY), typed(RAW_ITEM_ID)]
    stages = [
        row_checks,
        [
            Check(
                QuarantineReason.DUPLICATE_QUERY_LABEL,
                ~pl.struct(keys).is_first_distinct(),
                pl.format(
                    "query {} and item {} already labelled in row {}", query, item, first_row()
                ),
                first_row_of=tuple(keys),
            )
        ],
    ]
    if catalog_ids is not None:
        stages.append([_unknown_item(catalog_ids)])
    return apply_stages(frame, stages)


def queries_output(checked: Checked) -> pl.DataFrame:
    """Accepted labels in QUERY_SCHEMA."""
    return checked.accepted.select(
        [typed_col(c).cast(dtype).alias(c) for c, dtype in QUERY_SCHEMA.items()]
    )
