"""FAISS SQ8 and PQ codes for the dense search vectors, measured against exact search.

Each index is scored by recall@10 against exact inner-product search (`exact_search`
of `shelfwise.retrieval.ann`), with item vectors as queries (the item itself counts,
as in any top-k). Size is the serialized index's bytes. Batch role only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shelfwise.compress.measure import paired_median_ms
from shelfwise.compress.select import BASELINE, LatencyBudget, choose_with_reason, result
from shelfwise.retrieval.ann import exact_search, recall_at_k

_K = 10
_MAX_QUERIES = 1000


def _pq_bytes(dim: int) -> int:
    """PQ code bytes per vector: dim / 4 or the nearest divisor of dim below it."""
    target = max(1, dim // 4)
    return next(m for m in range(target, 0, -1) if dim % m == 0)


def _indexes(vectors: np.ndarray[Any, Any]) -> dict[str, tuple[str, Any]]:
    import faiss

    dim = vectors.shape[1]
    built: dict[str, tuple[str, Any]] = {}
    flat = faiss.IndexFlatIP(dim)
    flat.add(vectors)
    built[BASELINE] = ("exact", flat)
    sq8 = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
    sq8.train(vectors)
    sq8.add(vectors)
    built["faiss_sq8"] = ("faiss_sq8", sq8)
    # PQ: 2^bits centroids per sub-vector, each trained on about 39 vectors (FAISS's
    # own minimum); below 16 centroids (624 vectors) PQ is not worth trying
    bits = int(min(8, np.floor(np.log2(max(vectors.shape[0] // 39, 1)))))
    if bits >= 4:
        subvectors = _pq_bytes(dim)
        pq = faiss.IndexPQ(dim, subvectors, bits, faiss.METRIC_INNER_PRODUCT)
        pq.train(vectors)
        pq.add(vectors)
        built[f"faiss_pq{subvectors}x{bits}"] = ("faiss_pq", pq)
    return built


def faiss_component(
    vectors: np.ndarray[Any, Any],
    *,
    budget: float,
    seed: int,
    latency_budget: LatencyBudget | None = None,
) -> dict[str, Any]:
    """The `compression.json` entry of the dense index: exact vs SQ8 vs PQ.

    The metric is recall@10 against exact search (1.0 for the exact index). These
    variants are measured only: the served dense search keeps its float vectors (it
    re-scores candidates exactly), so "chosen" says what would be kept, within the
    quality and latency budgets (each index timed in turn with the exact one).
    """
    import faiss

    data = np.ascontiguousarray(vectors, dtype=np.float32)
    rng = np.random.default_rng(seed)
    queries = data[rng.choice(data.shape[0], size=min(_MAX_QUERIES, data.shape[0]), replace=False)]
    exact_ids, _ = exact_search(data, queries, _K)
    indexes = _indexes(data)
    _, exact = indexes.pop(BASELINE)
    requests = min(256, queries.shape[0])

    def one_query(index: Any) -> Any:
        return lambda row: index.search(queries[row : row + 1], _K)

    base_size = int(faiss.serialize_index(exact).nbytes)
    base_recall = recall_at_k(exact.search(queries, _K)[1], exact_ids, _K)
    base_latencies: list[float] = []
    variants = []
    for name, (kind, index) in indexes.items():
        _, ids = index.search(queries, _K)
        exact_ms, latency = paired_median_ms(one_query(exact), one_query(index), requests)
        base_latencies.append(exact_ms)
        variants.append(
            result(
                name,
                kind,
                size_bytes=int(faiss.serialize_index(index).nbytes),
                metric=recall_at_k(ids, exact_ids, _K),
                latency_ms=latency,
                baseline_size=base_size,
                baseline_metric=base_recall,
                budget=budget,
                notes="recall@10 vs exact search; measured only, serving keeps float vectors",
                baseline_latency_ms=exact_ms,
                latency_budget=latency_budget,
            )
        )
    chosen, reason = choose_with_reason(variants, base_size)
    return {
        "metric_name": "recall@10 vs exact",
        "baseline": {
            "size_bytes": base_size,
            "metric": round(base_recall, 6),
            # the exact index's median over its timings next to each variant
            "latency_ms": round(float(np.median(base_latencies)), 4) if base_latencies else 0.0,
        },
        "chosen": chosen,
        "reason": reason,
        "applied": False,
        "variants": [vars(v) for v in variants],
    }


__all__ = ["faiss_component"]
