"""Evaluation: pure metric functions (the evaluation stage is added later)."""

from __future__ import annotations

from shelfwise.evaluate.metrics import (
    RANKING_METRICS,
    average_popularity,
    catalog_coverage,
    graded_ndcg,
    parse_metric,
    ranking_metrics,
    reciprocal_rank,
)

__all__ = [
    "RANKING_METRICS",
    "average_popularity",
    "catalog_coverage",
    "graded_ndcg",
    "parse_metric",
    "ranking_metrics",
    "reciprocal_rank",
]
