"""Offline evaluation of search on labelled queries, in two modes.

- rerank: rank each query's judged items only (the CrowdFlower protocol).
- full: retrieve from the whole catalog; unjudged items count as irrelevant.

Gains are exponential, 2^rel - 1, on relevance minus `relevance_offset`. An item is
relevant (for MRR and Recall) when its shifted relevance is at least 1.

`evaluate_search` scores a `SearchIndex` (one score per catalog item); any other
ranker (fusion, a re-ranker under cross-validation) builds one `QueryOutcome` per
query and hands them to `summarise`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from shelfwise._internal import progress
from shelfwise.contracts import ITEM_INDEX, QUERY, RELEVANCE, FloatArray, IntArray
from shelfwise.evaluate.metrics import graded_ndcg, reciprocal_rank
from shelfwise.retrieval.base import SearchIndex, top_k

MODES = ("rerank", "full")
_RELEVANT = 1.0


@dataclass(frozen=True)
class LabelledQuery:
    """One query's judged items and their (shifted, non-negative) relevance."""

    query: str
    items: IntArray
    relevance: np.ndarray[Any, np.dtype[np.float64]]

    def lookup(self) -> dict[int, float]:
        """item_index -> relevance."""
        return dict(zip(self.items.tolist(), self.relevance.tolist(), strict=True))


@dataclass(frozen=True)
class QueryOutcome:
    """What a ranker did with one labelled query.

    Attributes:
        reranked: relevance of the judged items in the ranker's order (rerank mode).
        retrieved: relevance of the catalog items it returned, best first (full mode;
            0 for unjudged items).
        judged: relevance of every judged item (the ideal ranking).
    """

    reranked: list[float]
    retrieved: list[float]
    judged: list[float]


def labelled_queries(
    labelled: pl.DataFrame, *, relevance_offset: float = 0.0
) -> list[LabelledQuery]:
    """Group (query, item_index, relevance) rows by query, in first-seen order."""
    groups = labelled.group_by(QUERY, maintain_order=True).agg(ITEM_INDEX, RELEVANCE)
    return [
        LabelledQuery(
            query=str(query),
            items=np.asarray(items, dtype=np.int64),
            relevance=np.clip(np.asarray(grades, dtype=np.float64) - relevance_offset, 0.0, None),
        )
        for query, items, grades in groups.iter_rows()
    ]


def outcome(
    labelled: LabelledQuery, judged_scores: FloatArray, retrieved: IntArray
) -> QueryOutcome:
    """The outcome of scoring the judged items and retrieving `retrieved` (best first).

    Judged items are ordered by score, ties by item index (stable, deterministic).
    """
    order = np.lexsort((labelled.items, -np.asarray(judged_scores, dtype=np.float64)))
    lookup = labelled.lookup()
    return QueryOutcome(
        reranked=labelled.relevance[order].tolist(),
        retrieved=[lookup.get(int(item), 0.0) for item in retrieved],
        judged=labelled.relevance.tolist(),
    )


def query_metrics(result: QueryOutcome, k_values: list[int]) -> dict[str, dict[str, float]]:
    """NDCG@K, MRR and Recall@K of one query, per mode (`rerank`, `full`).

    Recall@K is left out when the query has no relevant item (it is undefined).
    """
    relevant = sum(1 for value in result.judged if value >= _RELEVANT)
    metrics: dict[str, dict[str, float]] = {}
    for mode, ranked in (("rerank", result.reranked), ("full", result.retrieved)):
        values: dict[str, float] = {}
        for k in k_values:
            values[f"ndcg@{k}"] = graded_ndcg(ranked, result.judged, k)
            if relevant:
                found = sum(1 for value in ranked[:k] if value >= _RELEVANT)
                values[f"recall@{k}"] = found / relevant
        values["mrr"] = reciprocal_rank(ranked, threshold=_RELEVANT)
        metrics[mode] = values
    return metrics


def summarise(outcomes: Iterable[QueryOutcome], k_values: list[int]) -> dict[str, Any]:
    """Mean NDCG@K, MRR and Recall@K per mode over queries.

    NDCG and MRR average over every query; Recall@K over queries with at least one
    relevant item (it is undefined for the others).
    """
    sums: dict[str, float] = {}
    n_queries = n_with_relevant = 0
    for result in outcomes:
        n_queries += 1
        n_with_relevant += any(value >= _RELEVANT for value in result.judged)
        for mode, values in query_metrics(result, k_values).items():
            for name, value in values.items():
                _add(sums, f"{mode}/{name}", value)
    summary: dict[str, Any] = {"queries": n_queries}
    for mode in MODES:
        means: dict[str, float] = {}
        for key, total in sorted(sums.items()):
            if key.startswith(mode + "/"):
                name = key.split("/", 1)[1]
                count = n_with_relevant if name.startswith("recall@") else n_queries
                means[name] = total / count if count else 0.0
        summary[mode] = means
    return summary


def evaluate_search(
    index: SearchIndex,
    labelled: pl.DataFrame,
    k_values: list[int],
    *,
    relevance_offset: float = 0.0,
) -> dict[str, Any]:
    """NDCG@K, MRR and Recall@K of a search index over labelled queries, both modes.

    Full mode returns only items with a positive score (BM25's "matches").
    """
    queries = labelled_queries(labelled, relevance_offset=relevance_offset)
    k_max = max(max(k_values), 10)
    return summarise(_index_outcomes(index, queries, k_max), k_values)


def _index_outcomes(
    index: SearchIndex, queries: list[LabelledQuery], k_max: int
) -> Iterator[QueryOutcome]:
    for labelled in progress.track(queries, "scoring labelled queries", total=len(queries)):
        scores = index.score(labelled.query)
        retrieved, retrieved_scores = top_k(scores, k_max)
        yield outcome(labelled, scores[labelled.items], retrieved[retrieved_scores > 0])


def _add(sums: dict[str, float], key: str, value: float) -> None:
    sums[key] = sums.get(key, 0.0) + value


__all__ = [
    "MODES",
    "LabelledQuery",
    "QueryOutcome",
    "evaluate_search",
    "labelled_queries",
    "outcome",
    "query_metrics",
    "summarise",
]
