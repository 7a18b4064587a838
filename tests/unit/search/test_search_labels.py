"""Search labels: judged queries as given, events graded and weighted by inverse propensity."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from shelfwise.contracts import POSITION
from shelfwise.errors import ConfigError, DataError, EmptyDataError, SchemaError
from shelfwise.search.labels import (
    GRADE,
    join_labels,
    labels_from_events,
    labels_from_queries,
    normalise_query,
    propensity_weights,
    search_labels,
)


def events(with_position: bool = True) -> pl.DataFrame:
    frame = pl.DataFrame(
        {
            "query": [
                "red dress",
                "Red  Dress",
                "red dress",
                "red dress",
                "laptop",
                "laptop",
                None,
                "",
                "laptop",
            ],
            "item_index": [1, 1, 2, 1, 7, 8, 3, 4, 9],
            "event_type": [
                "click",
                "click",
                "click",
                "purchase",
                "click",
                "cart",
                "click",
                "click",
                "view",
            ],
            POSITION: [1, 4, 2, 4, 20, None, 1, 1, 3],
        },
        schema_overrides={POSITION: pl.Int64},
    )
    return frame if with_position else frame.drop(POSITION)


def as_rows(frame: pl.DataFrame) -> list[tuple[object, ...]]:
    return [tuple(row) for row in frame.select("query", "item_index", GRADE, "weight").rows()]


def test_propensity_weights() -> None:
    # p(r) = 1/r^power, weight = 1/p(r) = r^power, clipped at max_weight
    np.testing.assert_allclose(
        propensity_weights([1, 2, 3, 9, 100], power=1.0, max_weight=10.0), [1, 2, 3, 9, 10]
    )
    np.testing.assert_allclose(propensity_weights([1, 4, 9], power=0.5, max_weight=10.0), [1, 2, 3])
    np.testing.assert_allclose(propensity_weights([5, 7], power=0.0), [1, 1])
    np.testing.assert_allclose(propensity_weights([np.nan, 0, -2], power=1.0), [1, 1, 1])
    with pytest.raises(ConfigError, match="position_bias_power"):
        propensity_weights([1], power=-1.0)
    with pytest.raises(ConfigError, match="max_weight"):
        propensity_weights([1], max_weight=0.5)


def test_event_grades_and_ipw_weights() -> None:
    labels = labels_from_events(events(), position_bias_power=1.0, max_weight=10.0)
    # red dress / 1: clicks at 1 and 4 ("Red  Dress" is the same query), purchase at 4
    #   -> grade 3 (purchase), weight mean(1, 4, 4) = 3
    # red dress / 2: click at 2 -> grade 1, weight 2
    # laptop / 7: click at 20 -> weight clipped to 10
    # laptop / 8: cart without position -> grade 2, weight 1
    # null / empty queries and the view are ignored
    assert as_rows(labels.frame) == [
        ("laptop", 7, 1, 10.0),
        ("laptop", 8, 2, 1.0),
        ("red dress", 1, 3, 3.0),
        ("red dress", 2, 1, 2.0),
    ]
    assert labels.frame.schema[GRADE] == pl.Int64
    summary = labels.summary
    assert summary["source"] == "search_events"
    assert summary["ipw"] is True
    assert summary["rows"] == 4
    assert summary["queries"] == 2
    assert summary["grades"] == {"1": 2, "2": 1, "3": 1}
    assert labels.max_grade == 3
    assert summary["events_used"] == 6
    assert summary["events_without_position"] == 1
    assert summary["clipped_events"] == 1
    assert "1 of 6 events have no valid position" in summary["note"]
    json.dumps(summary)  # the summary goes into a report file


def test_position_bias_power_changes_the_weights() -> None:
    square = labels_from_events(events(), position_bias_power=2.0, max_weight=100.0)
    weights = dict(zip(square.frame["item_index"], square.frame["weight"], strict=True))
    assert weights[1] == pytest.approx((1 + 16 + 16) / 3)
    assert weights[2] == pytest.approx(4.0)
    assert weights[7] == pytest.approx(100.0)
    off = labels_from_events(events(), position_bias_power=0.0)
    assert off.frame["weight"].to_list() == [1.0] * 4
    assert off.summary["ipw"] is False
    assert "turned off" in off.summary["note"]


def test_events_without_position_column_weigh_one_and_say_so() -> None:
    labels = labels_from_events(events(with_position=False))
    assert [row[:3] for row in as_rows(labels.frame)] == [
        ("laptop", 7, 1),
        ("laptop", 8, 2),
        ("red dress", 1, 3),
        ("red dress", 2, 1),
    ]
    assert labels.frame["weight"].to_list() == [1.0] * 4
    assert labels.summary["ipw"] is False
    assert "no 'position' column" in labels.summary["note"]
    assert labels.summary["events_without_position"] == 6


def test_labelled_queries_as_given() -> None:
    queries = pl.DataFrame(
        {
            "query": ["Red Dress", "Red Dress", "laptop", "laptop"],
            "item_index": [1, 2, 7, 7],
            "relevance": [3.0, 0.0, 1.6, 1.0],
        }
    )
    labels = labels_from_queries(queries)
    assert as_rows(labels.frame) == [
        ("Red Dress", 1, 3, 1.0),  # query text kept as given
        ("Red Dress", 2, 0, 1.0),
        ("laptop", 7, 2, 1.0),  # 1.6 rounds to 2, the higher of the two
    ]
    assert labels.summary["source"] == "labelled_queries"
    assert labels.summary["rounded_relevances"] == 1
    assert labels.summary["ipw"] is False
    with pytest.raises(DataError, match="negative"):
        labels_from_queries(queries.with_columns(pl.lit(-1.0).alias("relevance")))


def test_labelled_queries_win_over_events() -> None:
    queries = pl.DataFrame({"query": ["a"], "item_index": [1], "relevance": [2.0]})
    assert search_labels(queries, events()).summary["source"] == "labelled_queries"
    assert search_labels(queries.clear(), events()).summary["source"] == "search_events"
    assert search_labels(None, events()).summary["source"] == "search_events"
    with pytest.raises(EmptyDataError, match="no labelled queries"):
        search_labels(None, events().filter(pl.col("event_type") == "view"))


def test_join_labels_defaults_unlabelled_candidates() -> None:
    labels = labels_from_events(events())
    candidates = pl.DataFrame(
        {"query": ["red dress", "red dress", "red dress", "sofa"], "item_index": [5, 1, 2, 1]}
    )
    joined = join_labels(candidates, labels)
    assert joined["item_index"].to_list() == [5, 1, 2, 1]  # order kept
    assert joined[GRADE].to_list() == [0, 3, 1, 0]
    assert joined["weight"].to_list() == [1.0, 3.0, 2.0, 1.0]


def test_missing_columns_and_bad_grades() -> None:
    with pytest.raises(SchemaError, match="event_type"):
        labels_from_events(events().drop("event_type"))
    with pytest.raises(ConfigError, match="grades must be >= 1"):
        labels_from_events(events(), grades={"click": 0})


def test_normalise_query() -> None:
    assert normalise_query("  Red\u3000DRESS\t ") == "red dress"
    assert normalise_query("ＡＢＣ") == "abc"
