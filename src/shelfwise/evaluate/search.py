"""Offline evaluation of search on labelled queries, in two modes.

- rerank: rank each query's judged items only (the CrowdFlower protocol).
- full: retrieve from the whole catalog; unjudged items count as irrelevant.

Gains are exponential, 2^rel - 1, on relevance minus `relevance_offset`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from shelfwise._internal import progress
from shelfwise.contracts import ITEM_INDEX, QUERY, RELEVANCE
from shelfwise.evaluate.metrics import graded_ndcg, reciprocal_rank
from shelfwise.retrieval.base import SearchIndex, top_k


def evaluate_search(
    index: SearchIndex,
    labelled: pl.DataFrame,
    k_values: list[int],
    *,
    relevance_offset: float = 0.0,
) -> dict[str, Any]:
    """NDCG@K and MRR over labelled queries, in rerank and full-catalog modes."""
    groups = labelled.group_by(QUERY, maintain_order=True).agg(ITEM_INDEX, RELEVANCE)
    k_max = max(max(k_values), 10)
    sums: dict[str, float] = {}
    for query, items, grades in progress.track(
        groups.iter_rows(), "scoring labelled queries", total=groups.height
    ):
        judged = np.asarray(items, dtype=np.int64)
        relevance = np.clip(np.asarray(grades, dtype=np.float64) - relevance_offset, 0.0, None)
        scores = index.score(str(query))

        # rerank: judged items by score, ties by item index (stable, deterministic)
        order = np.lexsort((judged, -scores[judged]))
        reranked = relevance[order].tolist()
        # full: top k_max of the catalog; unjudged items have relevance 0
        retrieved, retrieved_scores = top_k(scores, k_max)
        retrieved = retrieved[retrieved_scores > 0]
        lookup = dict(zip(judged.tolist(), relevance.tolist(), strict=True))
        full = [lookup.get(int(item), 0.0) for item in retrieved]

        for mode, ranked in (("rerank", reranked), ("full", full)):
            for k in k_values:
                key = f"{mode}/ndcg@{k}"
                sums[key] = sums.get(key, 0.0) + graded_ndcg(ranked, relevance.tolist(), k)
            key = f"{mode}/mrr"
            sums[key] = sums.get(key, 0.0) + reciprocal_rank(ranked, threshold=1.0)
    n_queries = groups.height
    result: dict[str, Any] = {"queries": n_queries}
    for mode in ("rerank", "full"):
        result[mode] = {
            key.split("/", 1)[1]: (value / n_queries if n_queries else 0.0)
            for key, value in sorted(sums.items())
            if key.startswith(mode + "/")
        }
    return result
