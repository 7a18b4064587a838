"""Renaming a source's columns to shelfwise names.

Order of precedence for each shelfwise column: the explicit `mapping`, then a column
that already has the shelfwise name, then the first alias (in `ALIASES` order) found
in the file. Aliases match case-insensitively. Columns that map to nothing are
dropped and reported as ignored.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from typing import Final, Literal

import polars as pl

from shelfwise.config import EventsConfig, SourceConfig
from shelfwise.contracts import (
    BRAND,
    CATALOG_SCHEMA,
    CATEGORY,
    DESCRIPTION,
    EVENT_SCHEMA,
    EVENT_TYPE,
    PRICE,
    QUERY,
    QUERY_SCHEMA,
    RAW_ITEM_ID,
    RAW_USER_ID,
    RELEVANCE,
    REQUIRED_CATALOG_COLUMNS,
    REQUIRED_EVENT_COLUMNS,
    REQUIRED_QUERY_COLUMNS,
    SESSION_ID,
    SPLIT,
    TIMESTAMP,
    TITLE,
    VALUE,
)
from shelfwise.errors import SchemaError

SourceKind = Literal["catalog", "events", "queries"]

# Common column names -> shelfwise names; keys are lower-case, earlier keys win.
ALIASES: Final[dict[str, str]] = {
    "user_id": RAW_USER_ID,
    "userid": RAW_USER_ID,
    "user": RAW_USER_ID,
    "visitorid": RAW_USER_ID,
    "item_id": RAW_ITEM_ID,
    "itemid": RAW_ITEM_ID,
    "item": RAW_ITEM_ID,
    "product_id": RAW_ITEM_ID,
    "productid": RAW_ITEM_ID,
    "sku": RAW_ITEM_ID,
    "event_type": EVENT_TYPE,
    "event": EVENT_TYPE,
    "behavior_type": EVENT_TYPE,
    "behavior": EVENT_TYPE,
    "behaviour": EVENT_TYPE,
    "action": EVENT_TYPE,
    "timestamp": TIMESTAMP,
    "event_time": TIMESTAMP,
    "event_timestamp": TIMESTAMP,
    "eventtime": TIMESTAMP,
    "time": TIMESTAMP,
    "ts": TIMESTAMP,
    "datetime": TIMESTAMP,
    "timeframe": TIMESTAMP,  # e.g. RetailRocket-style exports
    "time_stamp": TIMESTAMP,
    "created_at": TIMESTAMP,
    "occurred_at": TIMESTAMP,
    "event_date": TIMESTAMP,
    "date": TIMESTAMP,
    "rating": VALUE,
    "session_id": SESSION_ID,
    "session": SESSION_ID,
    "split": SPLIT,
    "set": SPLIT,  # RecBole-style split files: user, item, timestamp, set
    "query": QUERY,
    "search_query": QUERY,
    "title": TITLE,
    "name": TITLE,
    "product_title": TITLE,
    "description": DESCRIPTION,
    "product_description": DESCRIPTION,
    "relevance": RELEVANCE,
    "median_relevance": RELEVANCE,
    "category": CATEGORY,
    "category_id": CATEGORY,
    "categoryid": CATEGORY,
    "brand": BRAND,
    "price": PRICE,
}

# Shelfwise columns each source may carry. Events may carry item attributes, which
# validate uses to describe items when no catalog is configured.
ALLOWED_COLUMNS: Final[dict[SourceKind, tuple[str, ...]]] = {
    "catalog": tuple(CATALOG_SCHEMA),
    "events": (*EVENT_SCHEMA, TITLE, CATEGORY, BRAND, PRICE),
    "queries": tuple(QUERY_SCHEMA),
}
REQUIRED_COLUMNS: Final[dict[SourceKind, tuple[str, ...]]] = {
    "catalog": REQUIRED_CATALOG_COLUMNS,
    "events": REQUIRED_EVENT_COLUMNS,
    "queries": REQUIRED_QUERY_COLUMNS,
}
# A column whose name looks like a time (when no alias matched): `order_time`,
# `clicked_at`, `visit_date`, `ts_ms`.
_TIME_NAME: Final = re.compile(r"(time|date|(^|_)ts($|_)|_at$)", re.IGNORECASE)
ID_HASH_CHARS: Final = 16
_ID_SEPARATOR: Final = "\x1f"


def plan_renames(
    columns: list[str], source: SourceConfig, kind: SourceKind, *, config_key: str
) -> dict[str, str]:
    """Which of `columns` become which shelfwise column.

    Raises:
        SchemaError: a mapping key that is not a column, or a target that is not a
            shelfwise column of this source.
    """
    allowed = ALLOWED_COLUMNS[kind]
    for theirs, ours in source.mapping.items():
        if theirs not in columns:
            raise SchemaError(
                f"{config_key}.mapping names column {theirs!r}, which the file does not have; "
                f"found columns: {', '.join(columns) or '(none)'}"
            )
        if ours not in allowed:
            raise SchemaError(
                f"{config_key}.mapping maps {theirs!r} to {ours!r}, which is not a "
                f"{kind} column; use one of: {', '.join(allowed)}"
            )
    renames = {
        theirs: ours
        for theirs, ours in source.mapping.items()
        if not (source.id_from and ours == RAW_ITEM_ID)
    }
    taken = set(renames.values())
    if source.id_from:
        taken.add(RAW_ITEM_ID)  # the hash of the id_from columns wins over any id column
    for column in columns:
        if column in allowed and column not in taken and column not in renames:
            renames[column] = column
            taken.add(column)
    by_alias = {column.lower(): column for column in reversed(columns) if column not in renames}
    for alias, ours in ALIASES.items():
        found = by_alias.get(alias)
        if found is not None and ours in allowed and ours not in taken:
            renames[found] = ours
            taken.add(ours)
    if TIMESTAMP in allowed and TIMESTAMP not in taken:
        guess = next((c for c in columns if c not in renames and _TIME_NAME.search(c)), None)
        if guess is not None:
            renames[guess] = TIMESTAMP
    return renames


def item_id_hash(columns: list[str]) -> pl.Expr:
    """raw_item_id as sha1(values joined by U+001F)[:16]; null when all are null.

    The hash runs once per distinct combination, not once per row.
    """
    parts = [pl.col(column).cast(pl.String) for column in columns]
    key = pl.concat_str([part.fill_null("") for part in parts], separator=_ID_SEPARATOR)
    hashed = key.map_batches(_hash_unique, return_dtype=pl.String)
    all_null = pl.all_horizontal([part.is_null() for part in parts])
    return pl.when(all_null).then(None).otherwise(hashed).alias(RAW_ITEM_ID)


def _hash_unique(keys: pl.Series) -> pl.Series:
    unique = keys.unique()
    table = {
        key: hashlib.sha1(key.encode("utf-8"), usedforsecurity=False).hexdigest()[:ID_HASH_CHARS]
        for key in unique.to_list()
    }
    return keys.replace_strict(table, return_dtype=pl.String)


def apply_mapping(
    frame: pl.DataFrame,
    source: SourceConfig,
    kind: SourceKind,
    *,
    config_key: str,
    keep: tuple[str, ...] = (),
) -> tuple[pl.DataFrame, list[str]]:
    """Rename `frame` to shelfwise columns; return it and the ignored column names.

    Args:
        frame: the source's rows with the file's own column names.
        source: the source's config (mapping, id_from; events: default_event_type).
        kind: which source this is.
        config_key: e.g. "data.catalog", for error messages.
        keep: internal columns passed through unchanged.

    Raises:
        SchemaError: unknown mapping keys or targets, missing id_from columns, or
            required columns still missing after the mapping.
    """
    columns = [column for column in frame.columns if column not in keep]
    renames = plan_renames(columns, source, kind, config_key=config_key)
    selected = [pl.col(theirs).alias(ours) for theirs, ours in renames.items()]
    if source.id_from:
        missing = [column for column in source.id_from if column not in columns]
        if missing:
            raise SchemaError(
                f"{config_key}.id_from names {', '.join(map(repr, missing))}, not columns of "
                f"the file; found columns: {', '.join(columns) or '(none)'}"
            )
        selected.append(item_id_hash(source.id_from))
    used = set(renames) | set(source.id_from or ())
    ignored = [column for column in columns if column not in used]
    mapped = frame.select(*selected, *keep)
    if kind == "events" and EVENT_TYPE not in mapped.columns:
        default = source.default_event_type if isinstance(source, EventsConfig) else "view"
        mapped = mapped.with_columns(pl.lit(str(default), pl.String).alias(EVENT_TYPE))
    _check_required(mapped.columns, kind, ignored, columns, config_key=config_key)
    order = [c for c in ALLOWED_COLUMNS[kind] if c in mapped.columns]
    return mapped.select(*order, *keep), ignored


# Words that hint at what a column holds, for the suggestion in a SchemaError.
_HINT_WORDS: Final[dict[str, tuple[str, ...]]] = {
    RAW_USER_ID: ("user", "customer", "visitor", "member", "client", "account"),
    RAW_ITEM_ID: ("item", "product", "sku", "article", "asin", "code", "movie", "id"),
    QUERY: ("query", "search", "keyword", "term"),
    RELEVANCE: ("relevance", "label", "grade", "score", "judgement", "judgment"),
}


def _guess_column(target: str, candidates: list[str]) -> str:
    """The candidate most likely to hold `target`, or a placeholder."""
    for word in _HINT_WORDS.get(target, ()):
        for candidate in candidates:
            if word in candidate.lower():
                return candidate
    close = difflib.get_close_matches(target, candidates, n=1, cutoff=0.5)
    return close[0] if close else "<your column>"


def _check_required(
    mapped: list[str],
    kind: SourceKind,
    ignored: list[str],
    found: list[str],
    *,
    config_key: str,
) -> None:
    missing = [column for column in REQUIRED_COLUMNS[kind] if column not in mapped]
    if not missing:
        return
    hints = []
    unused = list(ignored)
    for column in missing:
        theirs = _guess_column(column, unused)
        if theirs in unused:
            unused.remove(theirs)
        hints.append(f"{theirs}: {column}")
    raise SchemaError(
        f"{config_key}: required column(s) {', '.join(missing)} missing after the column "
        f"mapping; found columns: {', '.join(found) or '(none)'}. Tell shelfwise which of "
        f"your columns hold them, e.g. {config_key}.mapping: {{{', '.join(hints)}}}"
        + (f" (or {config_key}.id_from for items without an id)" if RAW_ITEM_ID in missing else "")
    )
