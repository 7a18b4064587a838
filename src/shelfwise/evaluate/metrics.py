"""Pure metric functions over ranked lists.

Recommendation metrics take a (n_users, K_max) matrix of ranked `item_index`es, best
first, padded with -1, and a binary CSR matrix of relevant items; they are vectorised
over users and follow RecBole's definitions where the names coincide (recall, precision,
hit, mrr, ndcg with binary gains, map). Search metrics take the graded relevance of each
ranked result of one query.

Notation: for user u, R_u is the set of relevant items, rel_u(r) = 1 when the item at
rank r (1-based) is in R_u, else 0 (padding is never relevant). Averages run over the
users with |R_u| >= 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from shelfwise.contracts import IntArray
from shelfwise.errors import DataError, EmptyDataError

FloatArray = np.ndarray[Any, np.dtype[np.float64]]

RANKING_METRICS: tuple[str, ...] = ("recall", "precision", "hit", "mrr", "ndcg", "map")


def parse_metric(metric: str) -> tuple[str, int]:
    """A metric's name and cut-off: 'ndcg@10' -> ('ndcg', 10)."""
    name, _, k = metric.partition("@")
    return name, int(k)


def ranking_metrics(
    ranked: IntArray,
    relevant: sp.csr_matrix,
    k_values: Sequence[int],
) -> dict[str, float]:
    """Recall, precision, hit rate, MRR, NDCG and MAP at each K, averaged over users.

    For each user u with |R_u| >= 1 and each K (hits@K = Σ_{r<=K} rel_u(r)):

        recall@K    = hits@K / |R_u|
        precision@K = hits@K / K
        hit@K       = 1 if hits@K > 0 else 0
        mrr@K       = 1 / r*  with r* the rank of the first hit, if r* <= K, else 0
        ndcg@K      = DCG@K / IDCG@K,  DCG@K = Σ_{r<=K} rel_u(r) / log2(r + 1),
                      IDCG@K = Σ_{r<=min(|R_u|, K)} 1 / log2(r + 1)
        map@K       = Σ_{r<=K} rel_u(r) · precision@r / min(|R_u|, K)   (RecBole's MAP)

    then each is the mean over those users. Users without relevant items are skipped.
    Positions past the end of a row (K > K_max) or holding -1 count as misses; the
    items of one row are assumed distinct.

    Args:
        ranked: int (n_users, K_max) item indexes, best first, -1 padding.
        relevant: CSR (n_users, n_items); every stored non-zero is a relevant item.
        k_values: the cut-offs, each >= 1.

    Returns:
        {"recall@10": ..., "precision@10": ..., "hit@10": ..., "mrr@10": ...,
        "ndcg@10": ..., "map@10": ...} for every K (names in `RANKING_METRICS`).

    Raises:
        DataError: shapes disagree or a K is < 1.
        EmptyDataError: no user has a relevant item.
    """
    ranked = np.asarray(ranked)
    if not np.issubdtype(ranked.dtype, np.integer):
        raise DataError(f"ranked must hold integer item indexes, got dtype {ranked.dtype}")
    if ranked.ndim != 2 or ranked.shape[0] != relevant.shape[0]:
        raise DataError(
            f"ranked has shape {ranked.shape} but relevant has {relevant.shape[0]} users; "
            "both need one row per user"
        )
    if any(k < 1 for k in k_values):
        raise DataError(f"every K must be >= 1, got {list(k_values)}")
    truth = sp.csr_matrix(relevant, copy=True)
    truth.eliminate_zeros()
    n_relevant = np.diff(truth.indptr)
    users = np.flatnonzero(n_relevant > 0)
    if users.size == 0:
        raise EmptyDataError("no user has a relevant item: nothing to evaluate")
    hits = _hits(ranked[users], truth[users])  # (n_eval, K_max) bool
    n_rel = n_relevant[users].astype(np.float64)
    k_max = hits.shape[1]
    ranks = np.arange(1, k_max + 1, dtype=np.float64)
    cum_hits = np.cumsum(hits, axis=1, dtype=np.float64)
    cum_dcg = np.cumsum(hits / np.log2(ranks + 1.0), axis=1)
    # Σ_{r'<=r} rel(r') · precision@r': the numerator of average precision at r
    cum_precision_at_hits = np.cumsum(hits * (cum_hits / ranks), axis=1)
    no_hit = np.iinfo(np.int64).max
    first_hit = np.full(users.size, no_hit, dtype=np.int64)
    if k_max > 0:
        first_hit = np.where(hits.any(axis=1), hits.argmax(axis=1) + 1, no_hit)
    largest_k = max(k_values, default=0)
    ideal = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, largest_k + 2)))])

    results: dict[str, float] = {}
    for k in k_values:
        column = min(k, k_max) - 1
        hits_k = cum_hits[:, column] if column >= 0 else np.zeros(users.size)
        dcg_k = cum_dcg[:, column] if column >= 0 else np.zeros(users.size)
        ap_k = cum_precision_at_hits[:, column] if column >= 0 else np.zeros(users.size)
        idcg_k = ideal[np.minimum(n_relevant[users], k)]
        results[f"recall@{k}"] = float(np.mean(hits_k / n_rel))
        results[f"precision@{k}"] = float(np.mean(hits_k / k))
        results[f"hit@{k}"] = float(np.mean(hits_k > 0))
        results[f"mrr@{k}"] = float(np.mean(np.where(first_hit <= k, 1.0 / first_hit, 0.0)))
        results[f"ndcg@{k}"] = float(np.mean(dcg_k / idcg_k))
        results[f"map@{k}"] = float(np.mean(ap_k / np.minimum(n_rel, k)))
    return results


def _hits(ranked: IntArray, truth: sp.csr_matrix) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """hits[u, r] = ranked[u, r] is a stored entry of row u of `truth` (padding: False).

    Looks every (user, item) pair up as the key u * n_items + item in the sorted keys
    of `truth`: one searchsorted, no Python loop over users.
    """
    n_users, k_max = ranked.shape
    n_items = truth.shape[1]
    truth = truth.copy()
    truth.sort_indices()
    truth_keys = (
        np.repeat(np.arange(n_users, dtype=np.int64), np.diff(truth.indptr)) * n_items
        + truth.indices
    )
    valid = (ranked >= 0) & (ranked < n_items)
    query_keys = np.arange(n_users, dtype=np.int64)[:, None] * n_items + ranked
    positions = np.searchsorted(truth_keys, query_keys)
    positions = np.minimum(positions, max(truth_keys.size - 1, 0))
    found = truth_keys[positions] == query_keys if truth_keys.size else np.zeros_like(valid)
    return np.asarray(found & valid, dtype=np.bool_).reshape(n_users, k_max)


def catalog_coverage(ranked: IntArray, n_items: int, k: int) -> float:
    """Share of the catalog that appears in at least one top-k list.

        coverage@k = |∪_u {ranked[u, r] : r <= k, ranked[u, r] != -1}| / n_items

    Raises:
        DataError: `n_items` < 1 or `k` < 1.
    """
    if n_items < 1 or k < 1:
        raise DataError(f"catalog_coverage needs n_items >= 1 and k >= 1, got {n_items}, {k}")
    top = np.asarray(ranked)[:, :k]
    shown = np.unique(top[(top >= 0) & (top < n_items)])
    return float(shown.size / n_items)


def average_popularity(ranked: IntArray, item_popularity: np.ndarray[Any, Any], k: int) -> float:
    """Mean popularity of the recommended items (RecBole's AveragePopularity).

        avg_pop@k = mean_u ( Σ_{r<=k} pop(ranked[u, r]) / n_u )

    with n_u the number of non-padding items in u's top k (k when the list is full, as
    in RecBole); users whose top k is all padding are skipped. `pop` is typically the
    train interaction count of each item. Returns 0.0 when no user has an item.

    Raises:
        DataError: `k` < 1, or an item index outside `item_popularity`.
    """
    if k < 1:
        raise DataError(f"average_popularity needs k >= 1, got {k}")
    popularity = np.asarray(item_popularity, dtype=np.float64)
    top = np.asarray(ranked)[:, :k]
    valid = top >= 0
    if valid.any() and int(top.max()) >= popularity.size:
        raise DataError(
            f"ranked holds item_index {int(top.max())} but item_popularity has "
            f"{popularity.size} items"
        )
    values = np.where(valid, popularity[np.where(valid, top, 0)], 0.0)
    counts = valid.sum(axis=1)
    listed = counts > 0
    if not listed.any():
        return 0.0
    return float(np.mean(values[listed].sum(axis=1) / counts[listed]))


def graded_ndcg(
    ranked_relevances: Sequence[float],
    all_relevances: Sequence[float],
    k: int,
    gain: Literal["exponential", "linear"] = "exponential",
) -> float:
    """NDCG@k of one query's ranking with graded relevance.

        DCG@k  = Σ_{r<=k} g(rel_r) / log2(r + 1)
        IDCG@k = the same sum over `all_relevances` sorted in decreasing order
        g(x)   = 2^x - 1 (exponential, Burges et al. 2005) or x (linear)

    Relevance 0 means "not relevant" (gain 0). Datasets whose lowest grade means "not
    relevant" but is not 0 must be shifted by the caller: CrowdFlower's median_relevance
    1..4 is passed as median_relevance - 1, which gives its protocol's gain
    2^(median_relevance - 1) - 1.

    Args:
        ranked_relevances: relevance of each returned item, best first (0 for items
            without a label).
        all_relevances: relevance of every labelled item of the query (the ideal ranking
            is built from these).
        k: the cut-off, >= 1.
        gain: "exponential" or "linear".

    Returns:
        NDCG@k in [0, 1]; 0.0 when no item has positive gain (IDCG = 0).

    Raises:
        DataError: `k` < 1, an unknown gain, or a negative relevance.
    """
    if k < 1:
        raise DataError(f"graded_ndcg needs k >= 1, got {k}")
    if gain not in ("exponential", "linear"):
        raise DataError(f"gain must be 'exponential' or 'linear', got {gain!r}")
    ranked = np.asarray(ranked_relevances, dtype=np.float64)[:k]
    ideal = np.sort(np.asarray(all_relevances, dtype=np.float64))[::-1][:k]
    if (ranked < 0).any() or (ideal < 0).any():
        raise DataError("relevances must be >= 0; shift graded labels so 0 = not relevant")

    def dcg(relevances: FloatArray) -> float:
        gains = np.exp2(relevances) - 1.0 if gain == "exponential" else relevances
        discounts = np.log2(np.arange(2, relevances.size + 2, dtype=np.float64))
        return float(np.sum(gains / discounts))

    ideal_dcg = dcg(ideal)
    return dcg(ranked) / ideal_dcg if ideal_dcg > 0 else 0.0


def reciprocal_rank(ranked_relevances: Sequence[float], threshold: float) -> float:
    """1 / rank of the first result with relevance >= `threshold`, else 0.

        RR = 1 / min{r : rel_r >= threshold}   (ranks are 1-based)

    Truncate `ranked_relevances` to k first for MRR@k; average over queries for MRR.
    """
    relevances = np.asarray(ranked_relevances, dtype=np.float64)
    matches = np.flatnonzero(relevances >= threshold)
    return float(1.0 / (matches[0] + 1)) if matches.size else 0.0


__all__ = [
    "RANKING_METRICS",
    "average_popularity",
    "catalog_coverage",
    "graded_ndcg",
    "ranking_metrics",
    "reciprocal_rank",
]
