"""Query buckets of the search section: language, length, frequency."""

from __future__ import annotations

import polars as pl
import pytest

from shelfwise.report._search import bucket_rows, frequency_buckets, language, length


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("laptop", "en"),
        ("笔记本电脑", "zh"),
        ("nike 运动鞋", "mixed"),
        ("T恤", "mixed"),
        ("café", "en"),
        ("123", "other"),
    ],
)
def test_language(query: str, expected: str) -> None:
    assert language(query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("dress", "1 term"),
        ("蓝色 手机", "2 terms"),
        ("red running shoes", "3+ terms"),
        ("", "1 term"),
    ],
)
def test_length(query: str, expected: str) -> None:
    assert length(query) == expected


def test_frequency_buckets_by_cumulative_share() -> None:
    # shares before each query: a 0%, b 50%, c 80%, d 95%
    buckets = frequency_buckets({"a": 50, "b": 30, "c": 15, "d": 5})
    assert buckets == {"a": "head", "b": "torso", "c": "tail", "d": "tail"}


def test_bucket_means_by_hand() -> None:
    frame = pl.DataFrame(
        {
            "query": ["dress", "连衣裙", "dress", "连衣裙"],
            "variant": ["bm25", "bm25", "dense", "dense"],
            "ndcg@10": [1.0, 0.5, 0.25, 0.75],
        }
    )
    rows = bucket_rows(frame, "ndcg@10", {"dress": 9, "连衣裙": 1})
    by_key = {(row.dimension, row.bucket): row for row in rows}
    assert by_key[("language", "en")].values == {"bm25": 1.0, "dense": 0.25}
    assert by_key[("language", "zh")].values == {"bm25": 0.5, "dense": 0.75}
    assert by_key[("length", "1 term")].values == {"bm25": 0.75, "dense": 0.5}
    assert by_key[("length", "1 term")].queries == 2
    assert by_key[("frequency", "head")].values == {"bm25": 1.0, "dense": 0.25}
    assert by_key[("frequency", "tail")].values == {"bm25": 0.5, "dense": 0.75}


def test_no_search_events_leaves_out_frequency() -> None:
    frame = pl.DataFrame({"query": ["dress"], "variant": ["bm25"], "ndcg@10": [1.0]})
    assert {row.dimension for row in bucket_rows(frame, "ndcg@10", None)} == {"language", "length"}
