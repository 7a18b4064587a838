"""Evaluation: pure metric functions (the evaluation stage is added later)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shelfwise.evaluate.metrics import (
    RANKING_METRICS,
    average_popularity,
    catalog_coverage,
    graded_ndcg,
    ranking_metrics,
    reciprocal_rank,
)

if TYPE_CHECKING:
    from shelfwise._internal.stage import StageContext, StageResult


def run(ctx: StageContext) -> StageResult:
    """The evaluate stage (imports its training-side modules on call)."""
    from shelfwise.evaluate.stage import run as run_stage

    return run_stage(ctx)


__all__ = [
    "RANKING_METRICS",
    "average_popularity",
    "catalog_coverage",
    "graded_ndcg",
    "ranking_metrics",
    "reciprocal_rank",
    "run",
]
