"""Which search variant is served: the pick rule and the one record every report reads.

The search stage measures every variant (`bm25`, `dense`, `hybrid`,
`hybrid+lambdamart`) on the same label groups, in two modes (`rerank`: order each
query's judged items; `full`: retrieve from the whole catalog, unjudged items count
0), plus each variant's median latency per query. `select_variant` turns those
numbers into the pick:

1. the metric (`search.select_metric`; `auto` = `full/ndcg@10`, cross-validated for
   the learned variant) ranks the variants;
2. every variant within `tolerance` (relative, 0.01 = 1%) of the best is a tie, and
   the fastest of the tie (median ms per query, measured in the stage) is served;
3. a learned variant (`LEARNED_VARIANTS`) is served only when it beats the best
   unlearned variant by more than the tolerance: it costs features and a model per
   query, so it must earn its place on held-out queries.

Why full-catalog by default: a real hardware store's judged-item re-ranking put every
variant within 0.004 NDCG@10 (issue 16: bm25 0.901, hybrid 0.905) and picked hybrid,
which was no better than BM25 on the full catalog (0.371 vs 0.382) and 10x slower.

`served_record` reads the stage's `search.json` into the `ServedSearch` record the
console summary, the package stage's line and the report print, so they agree.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

if TYPE_CHECKING:
    from shelfwise.search.hybrid import HybridSearch

LEARNED_VARIANTS: Final[frozenset[str]] = frozenset({"hybrid+lambdamart"})
AUTO_METRIC: Final = "full/ndcg@10"


@dataclass(frozen=True)
class Selection:
    """The served variant and why.

    Attributes:
        served: the variant's name.
        metric: `mode/metric` that ranked them, e.g. "full/ndcg@10".
        value: the served variant's value of `metric`.
        best: the variant with the highest value (may differ from `served` within the
            tolerance or when a learned variant did not beat the unlearned ones).
        tied: the variants within the tolerance of the best, each eligible.
        reason: one sentence for the report and the console.
    """

    served: str
    metric: str
    value: float
    best: str
    tied: tuple[str, ...]
    reason: str


def resolve_metric(select_metric: str) -> str:
    """`auto` -> `full/ndcg@10`; any other value as given."""
    return AUTO_METRIC if select_metric == "auto" else select_metric


def select_variant(
    reports: dict[str, dict[str, Any]],
    latency_ms: dict[str, float],
    *,
    select_metric: str = "auto",
    tolerance: float = 0.01,
) -> Selection:
    """Pick the served variant (see the module docstring for the rule).

    Args:
        reports: variant -> {"rerank": {...}, "full": {...}} (what `summarise` gives).
        latency_ms: variant -> median milliseconds per query; a variant without a time
            counts as slowest among its ties.
        select_metric: `search.select_metric`.
        tolerance: relative NDCG tolerance inside which the faster variant wins.

    Returns:
        The `Selection`.

    Raises:
        ValueError: no variant to choose from.
    """
    if not reports:
        raise ValueError("select_variant: no variant was evaluated; nothing to choose from")
    metric = resolve_metric(select_metric)
    mode, _, name = metric.partition("/")

    def value(variant: str) -> float:
        return float(reports[variant].get(mode, {}).get(name, 0.0) or 0.0)

    def speed(variant: str) -> tuple[float, str]:
        return (latency_ms.get(variant, float("inf")), variant)

    unlearned = [v for v in reports if v not in LEARNED_VARIANTS]
    best = max(reports, key=lambda v: (value(v), v not in LEARNED_VARIANTS, v))
    floor = value(best) * (1.0 - tolerance)
    tied = tuple(sorted(v for v in reports if value(v) >= floor))
    eligible = list(tied)
    if unlearned:
        best_plain = max(value(v) for v in unlearned)
        # a learned variant must beat the best unlearned one by more than the tolerance
        eligible = [
            v
            for v in tied
            if v not in LEARNED_VARIANTS or value(v) > best_plain * (1.0 + tolerance)
        ] or [max(unlearned, key=lambda v: (value(v), v))]
    served = min(eligible, key=speed)
    if served in LEARNED_VARIANTS:
        reason = f"{served} beats every unlearned variant on {metric} by more than {tolerance:.0%}"
    elif served == best:
        reason = f"best on {metric}" + (
            f", and the fastest of the variants within {tolerance:.0%}" if len(tied) > 1 else ""
        )
    else:
        reason = (
            f"within {tolerance:.0%} of {best} on {metric} and faster "
            f"({latency_ms.get(served, float('nan')):.1f} vs "
            f"{latency_ms.get(best, float('nan')):.1f} ms per query)"
        )
    return Selection(served, metric, value(served), best, tied, reason)


def time_variants(
    models: Mapping[str, HybridSearch], queries: Sequence[str], n_queries: int, k: int = 10
) -> dict[str, float]:
    """Median milliseconds per `search(query, k)` of each model, query caches off.

    The first `n_queries` distinct queries, one at a time, after one untimed warm-up
    query per model (lazy loads). Query vector caches are switched off while timing
    (the stage already encoded these queries) and restored afterwards.

    Args:
        models: variant -> the model that would be served for it.
        queries: query texts (duplicates are timed once).
        n_queries: how many to time.
        k: results per query.

    Returns:
        variant -> median ms (variants with no query to time are left out).
    """
    sample = list(dict.fromkeys(queries))[:n_queries]
    if not sample:
        return {}
    encoders = {
        id(dense): dense
        for model in models.values()
        for dense in (model.dense, *(extra.items for extra in model.extras))
        if dense is not None
    }
    sizes = {key: dense.query_cache_size for key, dense in encoders.items()}
    result: dict[str, float] = {}
    try:
        for dense in encoders.values():
            dense.set_query_cache(0)
        for variant, model in models.items():
            model.search(sample[0], k)
            timings = []
            for query in sample:
                started = time.perf_counter()
                model.search(query, k)
                timings.append((time.perf_counter() - started) * 1000.0)
            result[variant] = float(np.median(timings))
    finally:
        for key, dense in encoders.items():
            dense.set_query_cache(sizes[key])
    return result


@dataclass(frozen=True)
class ServedSearch:
    """What the search stage serves, as recorded in its `search.json`.

    Attributes:
        status: "evaluated", "unevaluated" or "skipped".
        served: the served variant (None when search was skipped).
        metric: the metric that chose it (None when unevaluated).
        value: its value (None when unevaluated).
        groups: label groups it was measured on.
        labels: "labelled_queries", "search_events" or None.
        reason: why it was served.
    """

    status: str
    served: str | None
    metric: str | None
    value: float | None
    groups: int
    labels: str | None
    reason: str | None

    def line(self) -> str:
        """One line for the console: `hybrid+lambdamart (full/ndcg@10 0.8100 on 261 ...)`.

        "held-out": the learned variant is scored by cross-validation by query; the
        others learn nothing from the labels.
        """
        if self.served is None:
            return f"none ({self.reason or self.status})"
        if self.metric is None or self.value is None:
            return f"{self.served} ({self.reason or 'not evaluated'})"
        what = "queries" if self.labels == "labelled_queries" else "query groups"
        return (
            f"{self.served} ({self.metric} {self.value:.4f} on {self.groups} held-out "
            f"{what}; {self.reason})"
        )


def served_record(search_dir: Path) -> ServedSearch | None:
    """The record in `search_dir/search.json`; None when the stage has not run."""
    path = search_dir / "search.json"
    if not path.is_file():
        return None
    report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    status = str(report.get("status", "evaluated"))
    served = report.get("served")
    metric = report.get("select_metric")
    value = None
    if status == "evaluated" and served and metric:
        mode, _, name = str(metric).partition("/")
        found = report.get("variants", {}).get(served, {}).get(mode, {}).get(name)
        value = None if found is None else float(found)
    return ServedSearch(
        status=status,
        served=None if status == "skipped" else served,
        metric=metric if status == "evaluated" else None,
        value=value,
        groups=int(report.get("groups", 0) or 0),
        labels=report.get("labels"),
        reason=report.get("selection_reason") or report.get("reason"),
    )


__all__ = [
    "AUTO_METRIC",
    "LEARNED_VARIANTS",
    "Selection",
    "ServedSearch",
    "resolve_metric",
    "select_variant",
    "served_record",
    "time_variants",
]
