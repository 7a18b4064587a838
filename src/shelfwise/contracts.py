"""Shared column names, event types and table schemas.

Every stage reads and writes these names; functions take them as keyword arguments
that default to the constants here. Raw ids (`raw_user_id`, `raw_item_id`) are the
shop's own strings and exist only at the edges (files, API); inside the pipeline,
matrices are indexed by dense integers (`user_index`, `item_index`) assigned by
`features/`.

Tables handed between stages (all Parquet):

validate/ -> `catalog.parquet`   CATALOG_SCHEMA, one row per item
validate/ -> `events.parquet`    EVENT_SCHEMA, one row per accepted event
validate/ -> `queries.parquet`   QUERY_SCHEMA, labelled (query, item, relevance) rows
validate/ -> `quarantine.parquet` QUARANTINE_SCHEMA, every rejected input row
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final

import numpy as np
import polars as pl

# --- array types (annotations shared by every package) -------------------------------
FloatArray = np.ndarray[Any, np.dtype[np.float32]]  # scores, vectors
Float64Array = np.ndarray[Any, np.dtype[np.float64]]
IntArray = np.ndarray[Any, np.dtype[np.int64]]  # item_index / user_index arrays
BoolArray = np.ndarray[Any, np.dtype[np.bool_]]  # masks over the catalog

# --- ids ---------------------------------------------------------------------------
RAW_USER_ID: Final = "raw_user_id"
RAW_ITEM_ID: Final = "raw_item_id"
USER_INDEX: Final = "user_index"
ITEM_INDEX: Final = "item_index"

# --- catalog -----------------------------------------------------------------------
TITLE: Final = "title"
DESCRIPTION: Final = "description"
CATEGORY: Final = "category"
BRAND: Final = "brand"
PRICE: Final = "price"
IN_STOCK: Final = "in_stock"
ATTRIBUTES: Final = "attributes"  # JSON object as a string, e.g. {"color": "red"}

# --- events ------------------------------------------------------------------------
EVENT_TYPE: Final = "event_type"
TIMESTAMP: Final = "timestamp"  # UTC unix seconds (Int64)
VALUE: Final = "value"  # rating value, price paid, ... (optional)
SESSION_ID: Final = "session_id"
QUERY: Final = "query"  # the search query that led to the event (optional)
POSITION: Final = "position"  # 1-based rank the item was shown at for QUERY (optional, Int64)
REQUEST_ID: Final = "request_id"  # served list an online event came from (event log only)

# --- derived -----------------------------------------------------------------------
WEIGHT: Final = "weight"  # confidence weight of an interaction (event-type weights)
SPLIT: Final = "split"  # "train" | "valid" | "test"
RELEVANCE: Final = "relevance"  # graded relevance of a labelled (query, item) pair

# --- quarantine ----------------------------------------------------------------------
SOURCE: Final = "source"  # "catalog" | "events" | "queries"
SOURCE_FILE: Final = "source_file"
ROW_NUMBER: Final = "row_number"  # 1-based data row number within the source file
REASON: Final = "reason"  # a QuarantineReason code
DETAIL: Final = "detail"  # human-readable detail, e.g. the offending value
RAW_ROW: Final = "raw_row"  # the original row as a JSON string


class EventType(StrEnum):
    """Kinds of user events the pipeline understands."""

    VIEW = "view"
    CLICK = "click"
    CART = "cart"
    PURCHASE = "purchase"
    RATING = "rating"
    SEARCH = "search"


class SplitName(StrEnum):
    """Names of the frozen evaluation splits."""

    TRAIN = "train"
    VALID = "valid"
    TEST = "test"


class QuarantineReason(StrEnum):
    """Stable reason codes for rejected rows (documented in docs/data.md)."""

    MISSING_ID = "missing-id"
    MISSING_VALUE = "missing-value"
    BAD_TYPE = "bad-type"
    BAD_EVENT_TYPE = "bad-event-type"
    DUPLICATE_ITEM = "duplicate-item"
    DUPLICATE_EVENT = "duplicate-event"
    DUPLICATE_QUERY_LABEL = "duplicate-query-label"
    UNKNOWN_ITEM = "unknown-item"
    TIMESTAMP_OUT_OF_RANGE = "timestamp-out-of-range"
    NEGATIVE_PRICE = "negative-price"
    UNDECODABLE_TEXT = "undecodable-text"
    MALFORMED_ROW = "malformed-row"  # wrong field count, unparsable JSON line
    TRUNCATED_INPUT = "truncated-input"  # the last, partial record of a cut-off file
    FIELD_TOO_LONG = "field-too-long"  # a text value over its data.limits length
    SUSPECTED_BOT = "suspected-bot"  # a user whose events no human makes (data.fake_traffic)
    SUSPECTED_FAKE_ORDER = "suspected-fake-order"  # fake-order ring or purchases never viewed


CATALOG_SCHEMA: Final[dict[str, pl.DataType]] = {
    RAW_ITEM_ID: pl.String(),
    TITLE: pl.String(),
    DESCRIPTION: pl.String(),
    CATEGORY: pl.String(),
    BRAND: pl.String(),
    PRICE: pl.Float64(),
    IN_STOCK: pl.Boolean(),
    ATTRIBUTES: pl.String(),
}

EVENT_SCHEMA: Final[dict[str, pl.DataType]] = {
    RAW_USER_ID: pl.String(),
    RAW_ITEM_ID: pl.String(),
    EVENT_TYPE: pl.String(),
    TIMESTAMP: pl.Int64(),
    VALUE: pl.Float64(),
    SESSION_ID: pl.String(),
    QUERY: pl.String(),
    POSITION: pl.Int64(),  # optional: 1-based rank of the item on the QUERY results page
    SPLIT: pl.String(),  # optional: a given train/valid/test assignment (split.method: given)
}

QUERY_SCHEMA: Final[dict[str, pl.DataType]] = {
    QUERY: pl.String(),
    RAW_ITEM_ID: pl.String(),
    RELEVANCE: pl.Float64(),
}

QUARANTINE_SCHEMA: Final[dict[str, pl.DataType]] = {
    SOURCE: pl.String(),
    SOURCE_FILE: pl.String(),
    ROW_NUMBER: pl.Int64(),
    REASON: pl.String(),
    DETAIL: pl.String(),
    RAW_ROW: pl.String(),
}

# Columns that must be present (after the column mapping) for each source.
REQUIRED_CATALOG_COLUMNS: Final = (RAW_ITEM_ID,)
REQUIRED_EVENT_COLUMNS: Final = (RAW_USER_ID, RAW_ITEM_ID)
REQUIRED_QUERY_COLUMNS: Final = (QUERY, RAW_ITEM_ID, RELEVANCE)


def empty_frame(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """An empty DataFrame with the given schema."""
    return pl.DataFrame(schema=schema)
