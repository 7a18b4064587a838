"""FAISS SQ8 and PQ codes for the dense search vectors, measured against exact search.

Each index is scored by recall@10 against exact inner-product search (`exact_search`
of `shelfwise.retrieval.ann`), with item vectors as queries (the item itself counts,
as in any top-k). Size is the serialized index's bytes. Batch role only.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

from shelfwise.compress.select import BASELINE, choose, result
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


def faiss_component(vectors: np.ndarray[Any, Any], *, budget: float, seed: int) -> dict[str, Any]:
    """The `compression.json` entry of the dense index: exact vs SQ8 vs PQ.

    The metric is recall@10 against exact search (1.0 for the exact index). These
    variants are measured only: the served dense search keeps its float vectors (it
    re-scores candidates exactly), so "chosen" says what would be kept.
    """
    import faiss

    data = np.ascontiguousarray(vectors, dtype=np.float32)
    rng = np.random.default_rng(seed)
    queries = data[rng.choice(data.shape[0], size=min(_MAX_QUERIES, data.shape[0]), replace=False)]
    exact_ids, _ = exact_search(data, queries, _K)
    measured: dict[str, tuple[str, int, float, float]] = {}
    for name, (kind, index) in _indexes(data).items():
        _, ids = index.search(queries, _K)
        times = []
        for row in range(min(256, queries.shape[0])):
            started = time.perf_counter()
            index.search(queries[row : row + 1], _K)
            times.append((time.perf_counter() - started) * 1000.0)
        size = int(faiss.serialize_index(index).nbytes)
        measured[name] = (kind, size, recall_at_k(ids, exact_ids, _K), statistics.median(times))
    _, base_size, base_recall, base_latency = measured.pop(BASELINE)
    variants = [
        result(
            name,
            kind,
            size_bytes=size,
            metric=recall,
            latency_ms=latency,
            baseline_size=base_size,
            baseline_metric=base_recall,
            budget=budget,
            notes="recall@10 vs exact search; measured only, serving keeps float vectors",
        )
        for name, (kind, size, recall, latency) in measured.items()
    ]
    return {
        "metric_name": "recall@10 vs exact",
        "baseline": {
            "size_bytes": base_size,
            "metric": round(base_recall, 6),
            "latency_ms": round(base_latency, 4),
        },
        "chosen": choose(variants, base_size),
        "applied": False,
        "variants": [vars(v) for v in variants],
    }


__all__ = ["faiss_component"]
