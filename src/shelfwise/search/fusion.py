"""Reciprocal rank fusion: one candidate list from several rankings (lexical, dense, ...).

For rankings r (each a list of item indices, best first) with weights w_r, an item d
scores

    RRF(d) = Σ_r w_r / (k + rank_r(d))

with rank_r(d) its 1-based position in ranking r, and rankings that do not contain d
contributing nothing. Only ranks are used, so retrievers whose scores live on
different scales (BM25 sums, cosines) combine without calibration; k damps the
advantage of the very first positions (60 in the paper, `search.rrf_k` in config).

References:
    Cormack, Clarke, Büttcher. "Reciprocal rank fusion outperforms Condorcet and
    individual rank learning methods." SIGIR 2009.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from shelfwise.contracts import IntArray
from shelfwise.errors import ConfigError, DataError

Float64Array = np.ndarray[Any, np.dtype[np.float64]]


def first_occurrence_ranks(ranked_items: ArrayLike) -> tuple[IntArray, IntArray]:
    """The distinct items of a ranked list and their 1-based ranks, in list order.

    Negative entries (the -1 padding of `top_k_batch`) are skipped without using up a
    rank; an item listed twice keeps its first (best) rank.
    """
    items = np.asarray(ranked_items, dtype=np.int64).reshape(-1)
    ranks = np.arange(1, items.size + 1, dtype=np.int64)
    kept = items >= 0
    items, ranks = items[kept], ranks[kept]
    _, first = np.unique(items, return_index=True)
    first.sort()
    return items[first], ranks[first]


def reciprocal_rank_fusion(
    rankings: Mapping[str, ArrayLike],
    k: float = 60.0,
    weights: Mapping[str, float] | None = None,
    limit: int | None = None,
) -> tuple[IntArray, Float64Array]:
    """Fuse ranked item lists by reciprocal rank.

    Args:
        rankings: retriever name -> item indices, best first (any length; may be empty).
        k: the rank offset, > 0.
        weights: retriever name -> weight >= 0; a retriever not named weighs 1.
        limit: return at most this many items (None: every item of any ranking).

    Returns:
        (items, scores): int64 item indices sorted by fused score, highest first, ties
        broken by the lower item index (deterministic); float64 fused scores.

    Raises:
        ConfigError: k <= 0, a negative or non-finite weight, a weight for a ranking
            that is not given, or limit < 0.

    Example:
        >>> items, scores = reciprocal_rank_fusion({"bm25": [7, 3], "dense": [3, 9]}, k=1)
        >>> items.tolist(), scores.round(3).tolist()
        ([3, 7, 9], [0.833, 0.5, 0.333])
    """
    if not (math.isfinite(k) and k > 0):
        raise ConfigError(f"rrf: k must be > 0, got {k}")
    if limit is not None and limit < 0:
        raise ConfigError(f"rrf: limit must be >= 0 or None, got {limit}")
    chosen = dict(weights or {})
    unknown = sorted(set(chosen) - set(rankings))
    if unknown:
        raise ConfigError(
            f"rrf: weights name rankings {unknown} that are not given; given: {sorted(rankings)}"
        )
    for name, weight in chosen.items():
        if not (math.isfinite(weight) and weight >= 0):
            raise ConfigError(f"rrf: weight of {name!r} must be >= 0, got {weight}")
    all_items: list[IntArray] = []
    contributions: list[Float64Array] = []
    for name in sorted(rankings):  # a fixed order: float sums do not depend on dict order
        try:
            items, ranks = first_occurrence_ranks(rankings[name])
        except (TypeError, ValueError) as exc:
            raise DataError(f"rrf: ranking {name!r} is not a list of item indices: {exc}") from None
        all_items.append(items)
        contributions.append(float(chosen.get(name, 1.0)) / (k + ranks.astype(np.float64)))
    if not all_items:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    distinct, inverse = np.unique(np.concatenate(all_items), return_inverse=True)
    scores = np.bincount(
        inverse, weights=np.concatenate(contributions), minlength=distinct.size
    ).astype(np.float64)
    order = np.lexsort((distinct, -scores))  # primary: score, descending; then index
    if limit is not None:
        order = order[:limit]
    fused: IntArray = distinct[order].astype(np.int64)
    return fused, scores[order]


__all__ = ["first_occurrence_ranks", "reciprocal_rank_fusion"]
