"""Dense index build on a generated catalog: encoding products/s, the search stage, p99.

Issue 16's targets, on a generated 50,000-product catalog on 2 cores: item encoding
at least 200 products/s, the whole search stage (BM25 and dense index builds in the
retrieval stage, then the search stage's evaluation and pick) within 8 minutes, and
`POST /v1/search` p99 within 30 ms on the built index.

The pipeline runs on the shop with the embedding cache off (every text is encoded,
as on a first run), dense search on (`models.dense.enabled: true`, so the plan cannot
leave it out) and the recommendation side light (as `benchmarks/search.py
--latency`); the served bundle is then timed over HTTP by `search.py`'s client (one
keep-alive connection, query cache off: every request encodes its query).

Reported: `encoding.products_per_s` (distinct item texts / the dense fit, HNSW build
included: the target's number), `encoding.encode_only_per_s` (the same texts / the
encoder's part of the fit alone; `encoding.index_s` the index build),
`encoding.titles_per_s` (the title-only vectors the re-ranker reads),
`search_stage_s` (index builds + search stage) and `p99_ms`; also
process CPU seconds, so a loaded machine's run can be read as a quiet machine's
("products per CPU-second x cores").

Usage:
    .venv/bin/python benchmarks/search_index.py --items 50000 --json
    .venv/bin/python benchmarks/search_index.py --items 5000 --requests 500 --json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from search import _HEAVY_RECOMMENDERS, _http_latency, _percentiles  # noqa: E402

from shelfwise.config import load_config, parse_overrides  # noqa: E402
from shelfwise.retrieval.dense import DEFAULT_FIELDS  # noqa: E402
from shelfwise.sample import generate_shop  # noqa: E402
from shelfwise.text.embedding_cache import item_texts  # noqa: E402

TARGETS = {"products_per_s": 200.0, "search_stage_s": 480.0, "p99_ms": 30.0}


def build(
    items: int, users: int, events: int, overrides: dict[str, Any], work: Path
) -> dict[str, Any]:
    """Generate the shop, run the pipeline (no embedding cache), read the stage timings."""
    from shelfwise.pipeline import run_pipeline

    shop = generate_shop(work / "data", users=users, items=items, events=events, seed=7)
    catalog = pl.read_parquet(shop.catalog_path)
    fields = {
        name: catalog[name].cast(pl.String).to_list()
        for name in DEFAULT_FIELDS
        if name in catalog.columns
    }
    texts = {text for text in item_texts(fields, list(DEFAULT_FIELDS), 512) if text}
    titles = {text for text in item_texts(fields, ["title"], 512) if text}
    config = load_config(
        None,
        environ={},
        overrides={
            "home": str(work / "home"),
            "data.catalog.path": str(shop.catalog_path),
            "data.events.path": str(shop.events_path),
            "data.queries.path": str(shop.queries_path),
            "models.dense.enabled": True,
            "models.dense.cache": False,  # a first run: every text is encoded
            "tune.enabled": False,
            "ranking.enabled": False,
            "registry.enabled": False,
            "compress.enabled": False,
            **{f"models.{name}.enabled": False for name in _HEAVY_RECOMMENDERS},
            **overrides,
        },
    )
    started, cpu = time.perf_counter(), time.process_time()
    outcome = run_pipeline(config, use_cache=False)
    pipeline_s, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    fitted = json.loads((outcome.run_dir / "retrieval" / "models.json").read_text())
    search = json.loads((outcome.run_dir / "search" / "search.json").read_text())
    fits = {
        name: fitted[name]["fit_s"] for name in ("bm25", "dense", "dense_title") if name in fitted
    }
    search_s = outcome.manifests["search"].timings_s.get("total", 0.0)
    dense_s = fits.get("dense", float("nan"))
    encode_s = fitted.get("dense", {}).get("encode_s")
    return {
        "items": items,
        "distinct_texts": len(texts),
        "distinct_titles": len(titles),
        "encoding": {
            "dense_fit_s": dense_s,
            "products_per_s": round(len(texts) / dense_s, 1),
            # the encoder alone (its load included), without the index build and save
            "encode_s": encode_s,
            "encode_only_per_s": round(len(texts) / encode_s, 1) if encode_s else None,
            "index_s": fitted.get("dense", {}).get("index_s"),
            "titles_fit_s": fits.get("dense_title"),
            "titles_per_s": round(len(titles) / fits["dense_title"], 1)
            if "dense_title" in fits
            else None,
            "index": fitted.get("dense", {}).get("params", {}).get("index"),
        },
        "index_build_s": fits,
        "search_evaluation_s": round(search_s, 1),
        "search_stage_s": round(sum(fits.values()) + search_s, 1),
        "served": search.get("served"),
        "pipeline_s": round(pipeline_s, 1),
        "pipeline_cpu_s": round(cpu_s, 1),
        "stage_s": {name: m.timings_s.get("total", 0.0) for name, m in outcome.manifests.items()},
        "bundle": str(outcome.bundle_path),
        "queries_path": str(shop.queries_path),
    }


def main() -> None:
    """Parse arguments, build, time /v1/search, print the results (and a JSON line)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=2000, help="/v1/search requests timed")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--work", type=Path, default=None, help="folder kept (default: temporary)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    arguments = parser.parse_args()
    result: dict[str, Any] = {
        "command": " ".join(["benchmarks/search_index.py", *sys.argv[1:]]),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "load_average": [round(value, 2) for value in os.getloadavg()],
    }
    with tempfile.TemporaryDirectory(prefix="shelfwise-search-index-") as folder:
        work = arguments.work or Path(folder)
        result.update(
            build(
                arguments.items,
                arguments.users,
                arguments.events,
                parse_overrides(arguments.set),
                work,
            )
        )
        if arguments.requests:
            queries = (
                pl.read_parquet(result["queries_path"])["query"]
                .unique(maintain_order=True)
                .to_list()
            )
            timings = _http_latency(
                Path(result["bundle"]), queries, arguments.requests, work / "server.log"
            )
            result["search_latency"] = _percentiles(timings)
    result["load_average_end"] = [round(value, 2) for value in os.getloadavg()]
    measured = {
        "products_per_s": result["encoding"]["products_per_s"],
        "search_stage_s": result["search_stage_s"],
        "p99_ms": result.get("search_latency", {}).get("p99_ms"),
    }
    result["targets"] = {
        "products_per_s >= 200": measured["products_per_s"] >= TARGETS["products_per_s"],
        "search_stage_s <= 480": measured["search_stage_s"] <= TARGETS["search_stage_s"],
        "p99_ms <= 30": measured["p99_ms"] is not None and measured["p99_ms"] <= TARGETS["p99_ms"],
    }
    for key in (
        "items",
        "distinct_texts",
        "encoding",
        "index_build_s",
        "search_stage_s",
        "search_latency",
        "targets",
    ):
        print(f"{key}: {result.get(key)}")
    if arguments.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
