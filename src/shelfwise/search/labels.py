"""Training labels for the search re-ranker: graded (query, item) pairs with row weights.

Two sources, in order of preference:

(a) **Labelled queries** (`features/queries.parquet`: QUERY, ITEM_INDEX, RELEVANCE), as
    given: the grade is the relevance rounded to an integer, every weight is 1.
(b) **Search events**, when no labels exist: events whose `query` is not empty give
    click → 1, cart → 2, purchase → 3, the highest grade per (query, item). Clicks are
    biased towards the top of the results page, so when events carry the position the
    item was shown at (`position`, 1-based), each event is weighted by its inverse
    propensity 1 / p(position), with the examination probability

        p(r) = 1 / r^power        (power: `search.position_bias_power`; 0 = no correction)

    clipped to `max_weight` (a click at rank 30 would otherwise count 30 times), and a
    pair's weight is the mean over its events. Events without a position weigh 1; the
    returned summary says how many, and says so when the column is missing.

Candidates that were retrieved but never clicked are grade 0, weight 1 (`join_labels`).
Query text from events is normalised (`normalise_query`: NFKC, lower case, single
spaces), so "Red  Dress" and "red dress" are one query; labelled queries are kept as
given.

References:
    Joachims, Swaminathan, Schnabel. "Unbiased Learning-to-Rank with Biased Feedback."
    WSDM 2017. Wang et al. "Learning to Rank with Selection Bias in Personal Search."
    SIGIR 2016.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import polars as pl
from numpy.typing import ArrayLike

from shelfwise.contracts import (
    EVENT_TYPE,
    ITEM_INDEX,
    POSITION,
    QUERY,
    RELEVANCE,
    WEIGHT,
    EventType,
)
from shelfwise.errors import ConfigError, DataError, EmptyDataError, SchemaError

GRADE: Final = "grade"  # integer relevance grade of a (query, item) pair, 0 = irrelevant
EVENT_GRADES: Final[Mapping[str, int]] = {
    EventType.CLICK.value: 1,
    EventType.CART.value: 2,
    EventType.PURCHASE.value: 3,
}
DEFAULT_MAX_WEIGHT: Final = 10.0


@dataclass(frozen=True)
class SearchLabels:
    """Graded (query, item) pairs and how they were made.

    Attributes:
        frame: QUERY (String), the item column (as in the input), GRADE (Int64),
            WEIGHT (Float64); one row per (query, item), sorted by query then item.
        summary: JSON-serialisable facts: `source` ("labelled_queries" or
            "search_events"), `rows`, `queries`, `grades` (count per grade),
            `max_grade`, `ipw` (whether weights correct position bias) and `note`.
    """

    frame: pl.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def max_grade(self) -> int:
        """The highest grade present (0 when empty)."""
        return int(self.summary.get("max_grade", 0))


def normalise_query(text: str) -> str:
    """NFKC, lower case, runs of whitespace as one space, trimmed."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def _normalised(column: pl.Expr) -> pl.Expr:
    """`normalise_query` as a polars expression."""
    return (
        column.cast(pl.String)
        .str.normalize("NFKC")
        .str.to_lowercase()
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
    )


def propensity_weights(
    positions: ArrayLike,
    power: float = 1.0,
    *,
    max_weight: float = DEFAULT_MAX_WEIGHT,
) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Inverse propensities min(r^power, max_weight) of 1-based positions r.

    A position that is missing (NaN) or below 1 gets weight 1 (no correction).

    Example:
        >>> propensity_weights([1, 2, 4, 50, np.nan], power=1.0, max_weight=10).tolist()
        [1.0, 2.0, 4.0, 10.0, 1.0]
    """
    _check_weighting(power, max_weight)
    ranks = np.asarray(positions, dtype=np.float64).reshape(-1)
    known = np.isfinite(ranks) & (ranks >= 1)
    weights = np.ones(ranks.shape, dtype=np.float64)
    weights[known] = np.minimum(ranks[known] ** power, max_weight)
    return weights


def _check_weighting(power: float, max_weight: float) -> None:
    if not (math.isfinite(power) and power >= 0):
        raise ConfigError(f"search labels: position_bias_power must be >= 0, got {power}")
    if not (math.isfinite(max_weight) and max_weight >= 1):
        raise ConfigError(f"search labels: max_weight must be >= 1, got {max_weight}")


def _require(frame: pl.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise SchemaError(
            f"search labels: {what} lack the columns {missing}; found {frame.columns}"
        )


def _summary(frame: pl.DataFrame, **facts: Any) -> dict[str, Any]:
    counts = frame.group_by(GRADE).len().sort(GRADE)
    grades = {str(grade): int(count) for grade, count in counts.iter_rows()}
    return {
        **facts,
        "rows": frame.height,
        "queries": int(frame[QUERY].n_unique()) if frame.height else 0,
        "grades": grades,
        "max_grade": int(frame[GRADE].max() or 0) if frame.height else 0,  # type: ignore[arg-type]
    }


def labels_from_queries(
    queries: pl.DataFrame,
    *,
    query_column: str = QUERY,
    item_column: str = ITEM_INDEX,
    relevance_column: str = RELEVANCE,
) -> SearchLabels:
    """Labels from judged (query, item, relevance) rows, as given.

    Grades are the relevances rounded to integers (the summary counts the rows that
    were not integers); a pair listed twice keeps its highest grade. Weights are 1.

    Raises:
        SchemaError: a column is missing.
        DataError: a relevance is negative, null or not finite.
    """
    _require(queries, (query_column, item_column, relevance_column), "labelled queries")
    rows = queries.select(
        pl.col(query_column).cast(pl.String).alias(QUERY),
        pl.col(item_column),
        pl.col(relevance_column).cast(pl.Float64).alias(RELEVANCE),
    ).filter(pl.col(QUERY).is_not_null() & (pl.col(QUERY).str.strip_chars() != ""))
    relevance = rows[RELEVANCE]
    bad = relevance.is_null() | ~relevance.is_finite().fill_null(False) | (relevance < 0)
    if bool(bad.any()):
        raise DataError(
            f"search labels: {int(bad.sum())} labelled rows have a relevance that is missing, "
            "not finite or negative; grades must be 0 (irrelevant) or more"
        )
    rounded = int((relevance != relevance.round(0)).sum())
    frame = (
        rows.group_by(QUERY, item_column)
        .agg(pl.col(RELEVANCE).round(0).max().cast(pl.Int64).alias(GRADE))
        .with_columns(pl.lit(1.0, pl.Float64).alias(WEIGHT))
        .sort(QUERY, item_column)
    )
    return SearchLabels(
        frame,
        _summary(
            frame,
            source="labelled_queries",
            ipw=False,
            rounded_relevances=rounded,
            note="graded relevance judgements as given; every weight is 1",
        ),
    )


def labels_from_events(
    events: pl.DataFrame,
    *,
    position_bias_power: float = 1.0,
    max_weight: float = DEFAULT_MAX_WEIGHT,
    query_column: str = QUERY,
    item_column: str = ITEM_INDEX,
    event_type_column: str = EVENT_TYPE,
    position_column: str = POSITION,
    grades: Mapping[str, int] = EVENT_GRADES,
) -> SearchLabels:
    """Click, cart and purchase labels from search events, with inverse propensity weights.

    Args:
        events: one row per event; needs the query, item and event type columns, and
            may have the position column (1-based rank the item was shown at).
        position_bias_power: the power of p(r) = 1/r^power; 0 turns weighting off.
        max_weight: the largest inverse propensity (>= 1).
        query_column, item_column, event_type_column, position_column: column names.
        grades: event type -> grade (>= 1); other event types are ignored.

    Raises:
        SchemaError: a required column is missing.
        ConfigError: a negative power, max_weight < 1, or a grade < 1.
    """
    _check_weighting(position_bias_power, max_weight)
    if any(grade < 1 for grade in grades.values()):
        raise ConfigError(f"search labels: event grades must be >= 1, got {dict(grades)}")
    _require(events, (query_column, item_column, event_type_column), "search events")
    has_position = position_column in events.columns
    position = (
        pl.col(position_column).cast(pl.Float64, strict=False)
        if has_position
        else pl.lit(None, pl.Float64)
    )
    graded = events.select(
        _normalised(pl.col(query_column)).alias(QUERY),
        pl.col(item_column),
        pl.col(event_type_column)
        .cast(pl.String)
        .str.to_lowercase()
        .replace_strict(dict(grades), default=None, return_dtype=pl.Int64)
        .alias(GRADE),
        position.alias(POSITION),
    ).filter(
        pl.col(QUERY).is_not_null()
        & (pl.col(QUERY) != "")
        & pl.col(GRADE).is_not_null()
        & pl.col(item_column).is_not_null()
    )
    ranks = graded[POSITION].to_numpy()
    known = np.isfinite(ranks) & (ranks >= 1)
    weights = propensity_weights(ranks, position_bias_power, max_weight=max_weight)
    clipped = int((known & (np.where(known, ranks, 1.0) ** position_bias_power > max_weight)).sum())
    frame = (
        graded.with_columns(pl.Series(WEIGHT, weights, dtype=pl.Float64))
        .group_by(QUERY, item_column)
        .agg(pl.col(GRADE).max(), pl.col(WEIGHT).mean())
        .sort(QUERY, item_column)
    )
    without_position = int((~known).sum())
    if not has_position:
        note = (
            f"no {position_column!r} column: every weight is 1, clicks are not corrected "
            "for position bias"
        )
    elif position_bias_power == 0:
        note = "position_bias_power is 0: every weight is 1 (correction turned off)"
    elif without_position:
        note = (
            f"{without_position} of {graded.height} events have no valid position and "
            "weigh 1; the others are weighted by inverse propensity"
        )
    else:
        note = "every event is weighted by the inverse propensity of its position"
    return SearchLabels(
        frame,
        _summary(
            frame,
            source="search_events",
            ipw=has_position and position_bias_power > 0 and bool(known.any()),
            position_bias_power=float(position_bias_power),
            max_weight=float(max_weight),
            events_used=graded.height,
            events_without_position=without_position,
            clipped_events=clipped,
            note=note,
        ),
    )


def search_labels(
    queries: pl.DataFrame | None,
    events: pl.DataFrame | None,
    *,
    position_bias_power: float = 1.0,
    max_weight: float = DEFAULT_MAX_WEIGHT,
    item_column: str = ITEM_INDEX,
) -> SearchLabels:
    """Labelled queries when there are any, else labels from search events.

    Raises:
        EmptyDataError: neither source gives a single labelled pair.
    """
    if queries is not None and queries.height:
        labels = labels_from_queries(queries, item_column=item_column)
        if labels.frame.height:
            return labels
    if events is not None and events.height:
        labels = labels_from_events(
            events,
            position_bias_power=position_bias_power,
            max_weight=max_weight,
            item_column=item_column,
        )
        if labels.frame.height:
            return labels
    raise EmptyDataError(
        "search labels: no labelled queries and no click, cart or purchase event with a "
        "query; add a queries file, or a query column to the events"
    )


def join_labels(
    candidates: pl.DataFrame,
    labels: SearchLabels,
    *,
    item_column: str = ITEM_INDEX,
) -> pl.DataFrame:
    """Attach GRADE and WEIGHT to candidate rows (QUERY, item); unlabelled: grade 0, weight 1.

    The candidates keep their row order; their query text must be in the labels' form
    (for event labels, `normalise_query`).
    """
    _require(candidates, (QUERY, item_column), "candidates")
    joined = candidates.join(
        labels.frame.select(QUERY, item_column, GRADE, WEIGHT),
        on=[QUERY, item_column],
        how="left",
        maintain_order="left",
    )
    return joined.with_columns(
        pl.col(GRADE).fill_null(0).cast(pl.Int64),
        pl.col(WEIGHT).fill_null(1.0).cast(pl.Float64),
    )


__all__ = [
    "DEFAULT_MAX_WEIGHT",
    "EVENT_GRADES",
    "GRADE",
    "SearchLabels",
    "join_labels",
    "labels_from_events",
    "labels_from_queries",
    "normalise_query",
    "propensity_weights",
    "search_labels",
]
