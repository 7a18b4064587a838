"""Search evaluation: hand-computed NDCG, MRR and Recall in both modes."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from shelfwise.contracts import ITEM_INDEX, QUERY, RELEVANCE
from shelfwise.evaluate.search import (
    QueryOutcome,
    evaluate_search,
    labelled_queries,
    outcome,
    summarise,
)


class _FixedIndex:
    """Scores every item from a table; the query is ignored."""

    name = "fixed"

    def __init__(self, scores: list[float]) -> None:
        self.scores = np.asarray(scores, dtype=np.float32)

    def score(self, query: str) -> np.ndarray:
        return self.scores


def _labelled() -> pl.DataFrame:
    # one query, items 0..2 judged 2, 0, 1 (relevance offset 0)
    return pl.DataFrame(
        {QUERY: ["q", "q", "q"], ITEM_INDEX: [0, 1, 2], RELEVANCE: [2.0, 0.0, 1.0]},
        schema={QUERY: pl.String, ITEM_INDEX: pl.Int64, RELEVANCE: pl.Float64},
    )


def test_rerank_and_full_modes_by_hand() -> None:
    # item 3 is unjudged and ranked first in full mode; item 1 scores 0 (no match)
    index = _FixedIndex([0.5, 0.0, 0.9, 1.0])
    result = evaluate_search(index, _labelled(), [2])
    # rerank: judged order 2 (rel 1), 0 (rel 2), 1 (rel 0)
    ideal = 3 / math.log2(2) + 1 / math.log2(3)
    assert result["rerank"]["ndcg@2"] == pytest.approx((1 / 1 + 3 / math.log2(3)) / ideal)
    assert result["rerank"]["mrr"] == pytest.approx(1.0)
    assert result["rerank"]["recall@2"] == pytest.approx(1.0)
    # full: 3 (unjudged, 0), 2 (rel 1), 0 (rel 2); item 1 has score 0 and is not retrieved
    assert result["full"]["ndcg@2"] == pytest.approx((1 / math.log2(3)) / ideal)
    assert result["full"]["mrr"] == pytest.approx(0.5)
    assert result["full"]["recall@2"] == pytest.approx(0.5)
    assert result["queries"] == 1


def test_recall_skips_queries_without_relevant_items() -> None:
    outcomes = [
        QueryOutcome(reranked=[1.0, 0.0], retrieved=[1.0], judged=[1.0, 0.0]),
        QueryOutcome(reranked=[0.0], retrieved=[], judged=[0.0]),
    ]
    summary = summarise(outcomes, [1])
    assert summary["full"]["recall@1"] == pytest.approx(1.0)
    assert summary["full"]["ndcg@1"] == pytest.approx(0.5)
    assert summary["queries"] == 2


def test_outcome_breaks_ties_by_item_index() -> None:
    (query,) = labelled_queries(_labelled())
    result = outcome(query, np.zeros(3, dtype=np.float32), np.array([], dtype=np.int64))
    assert result.reranked == [2.0, 0.0, 1.0]


def test_relevance_offset_shifts_grades() -> None:
    labelled = _labelled().with_columns(pl.col(RELEVANCE) + 1)
    (query,) = labelled_queries(labelled, relevance_offset=1.0)
    assert query.relevance.tolist() == [2.0, 0.0, 1.0]
