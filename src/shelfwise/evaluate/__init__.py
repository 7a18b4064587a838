"""evaluate: metric functions and their names, evaluators, and the evaluation stage.

`metrics` holds the ranking metrics (with `parse_metric` for names such as
`ndcg@10`), `classifier` the click model's (AUC, log loss, F1, ROC/PR curves),
`recommend` and `search` the offline evaluators, `blend_search` the blend-weight grid;
the stage (`evaluate.stage.run`) scores every fitted recommender on the frozen split
and picks the one to serve. The promotion gate, which re-scores whole bundles, is in
`shelfwise.publish`.
"""

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
