"""The live catalog in-process: what an update costs, and what it adds to each read.

Builds a bundle over a generated shop (default 50,000 items) the cheap way, without
the pipeline: popularity, item-kNN (recommender and similar items) and BM25 over
titles, brands and categories, written with `write_bundle`. Then, on one engine with
a `LiveCatalog` attached (what `PUT /v1/items` calls):

* apply: milliseconds per one-item batch, a stock change of a bundle item and a new
  product, with 0, 100 and 1,000 new products already served (every apply swaps a
  new snapshot: filter arrays copied, the side index rebuilt when new items change);
* reads: p50 / p99 microseconds of `recommend` (known users), `search` (catalog words)
  and `similar`, without any update and with 1,000 new products and 1,000 changed
  bundle items, one thread, after a warm-up.

`benchmarks/serve_load.py --item-updates-per-s N` measures the same through HTTP,
under load, with the time until an update is visible (and through Redis).

The bundle is kept under `.shelfwise/bench-live-catalog-<items>/` and reused.

Usage:
    .venv/bin/python benchmarks/live_catalog.py [--items 50000] [--requests 2000] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def build(root: Path, items: int) -> Path:
    """A bundle of popularity, item-kNN and BM25 over a generated shop, under `root`.

    Reused when `root/bundle` exists (`serve_load.py --bundle` serves it too).
    """
    if (root / "bundle" / "manifest.json").is_file():
        return root / "bundle"
    import polars as pl
    import scipy.sparse as sp

    from shelfwise.package.bundle import BundleSpec, write_bundle
    from shelfwise.retrieval import BM25Search, ItemKNNRecommender, PopularityRecommender
    from shelfwise.sample import generate_shop

    shop = generate_shop(root / "data", users=20_000, items=items, events=200_000)
    catalog = pl.read_parquet(shop.catalog_path)
    events = pl.read_parquet(shop.events_path)
    index = {raw: i for i, raw in enumerate(catalog["raw_item_id"].to_list())}
    users = sorted(set(events["raw_user_id"].to_list()))
    user_index = {raw: u for u, raw in enumerate(users)}
    rows = [user_index[u] for u in events["raw_user_id"].to_list()]
    cols = [index.get(i, -1) for i in events["raw_item_id"].to_list()]
    keep = [n for n, c in enumerate(cols) if c >= 0]
    histories = sp.csr_matrix(
        (np.ones(len(keep), np.float32), ([rows[n] for n in keep], [cols[n] for n in keep])),
        shape=(len(users), catalog.height),
    )
    histories.sum_duplicates()
    models = root / "models"
    popularity = PopularityRecommender()
    popularity.fit(histories)
    popularity.save(models / "popularity")
    knn = ItemKNNRecommender(neighbours=50, num_threads=1)
    knn.fit(histories)
    knn.save(models / "item_knn")
    bm25 = BM25Search(field_weights={"title": 2.0, "brand": 1.0, "category": 1.0})
    bm25.fit({name: catalog[name].to_list() for name in ("title", "brand", "category")})
    bm25.save(models / "bm25")
    items_frame = catalog.select(
        "raw_item_id", "title", "category", "brand", "price", "in_stock"
    ).with_columns(pl.col("raw_item_id").cast(pl.String()))
    spec = BundleSpec(
        items=items_frame,
        users=pl.DataFrame({"raw_user_id": users}),
        histories=histories,
        components={
            "recommender": ("item_knn", models / "item_knn"),
            "popular": ("popularity", models / "popularity"),
            "similar": ("item_knn", models / "item_knn"),
            "search": ("bm25", models / "bm25"),
        },
        metrics={},
        data_fingerprint="bench",
        lineage={},
        project="bench",
    )
    write_bundle(spec, root / "bundle")
    return root / "bundle"


def _us(values: list[float]) -> dict[str, float]:
    array = np.asarray(values) * 1e6
    return {
        "p50_us": round(float(np.percentile(array, 50)), 1),
        "p99_us": round(float(np.percentile(array, 99)), 1),
    }


def reads(engine: Any, users: list[str], words: list[str], items: list[str]) -> dict[str, Any]:
    """p50 / p99 of each read path over the request lists (after 50 warm-up calls)."""
    calls = {
        "recommend": [lambda u=u: engine.recommend(u, 10) for u in users],
        "search": [lambda w=w: engine.search(w, 10) for w in words],
        "similar": [lambda i=i: engine.similar(i, 10) for i in items],
    }
    result = {}
    for name, batch in calls.items():
        for call in batch[:50]:
            call()
        times = []
        for call in batch:
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
        result[name] = _us(times)
    return result


def main() -> None:
    """Build, then time applies and reads; print a table (and JSON with --json)."""
    from shelfwise.runtime import load_engine
    from shelfwise.runtime.live_catalog import LiveCatalog
    from shelfwise.stores.catalog_log import CatalogChange

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    load_start = os.getloadavg()[0]
    started = time.perf_counter()
    work = ROOT / ".shelfwise" / f"bench-live-catalog-{args.items}"
    engine = load_engine(build(work, args.items), verify=False)
    build_s = time.perf_counter() - started
    catalog = engine.catalog
    raw_ids = catalog.raw_item_ids
    users = [str(u) for u in rng.choice(list(engine.user_index), args.requests)]
    items = [raw_ids[int(i)] for i in rng.integers(len(raw_ids), size=args.requests)]
    titles = [t for t in catalog.titles if t]
    words = [
        str(rng.choice(titles[int(i)].split())) for i in rng.integers(len(titles), size=500)
    ] * (args.requests // 500)
    before = reads(engine, users, words, items)
    live = LiveCatalog()
    engine.attach_live(live)
    version = 0
    apply_ms: dict[str, dict[str, float]] = {}
    for served_new in (0, 100, 1000):
        if served_new:  # new-0 .. new-<served_new - 1> (earlier ones again: idempotent)
            version += 1
            live.apply(
                [
                    CatalogChange("upsert", f"new-{j}", {"title": f"Live {j} {titles[j]}"}, version)
                    for j in range(served_new)
                ]
            )
        timings: dict[str, list[float]] = {"stock": [], "new": []}
        for n in range(20):
            version += 1
            change = CatalogChange(
                "upsert", raw_ids[n], {"in_stock": bool(n % 2), "price": 1.0 + n}, version
            )
            started = time.perf_counter()
            live.apply([change])
            timings["stock"].append(time.perf_counter() - started)
        for n in range(5):
            version += 1
            raw = f"extra-{served_new}-{n}"
            change = CatalogChange("upsert", raw, {"title": f"Extra {n} 新品"}, version)
            started = time.perf_counter()
            live.apply([change])
            timings["new"].append(time.perf_counter() - started)
            live.apply([CatalogChange("delete", raw, {}, version + 1)])
            version += 1
        apply_ms[str(served_new)] = {
            kind: round(float(np.median(values)) * 1000, 2) for kind, values in timings.items()
        }
    batch = []
    for n in range(1000):
        version += 1
        batch.append(CatalogChange("upsert", raw_ids[n], {"price": 2.0}, version))
    live.apply(batch)
    after = reads(engine, users, words, items)
    load_end = os.getloadavg()[0]
    result = {
        "items": args.items,
        "build_s": round(build_s, 1),
        "apply_ms_median": apply_ms,
        "reads_without_updates": before,
        "reads_with_1000_new_and_1000_changed": after,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, 1-min load "
        f"{load_start:.2f} at start, {load_end:.2f} at end",
    }
    print("| new items served | apply: stock change ms | apply: new item ms |")
    print("|---|---|---|")
    for served, row in apply_ms.items():
        print(f"| {served} | {row['stock']} | {row['new']} |")
    print("\n| read | p50 / p99 us, no updates | with 1,000 new + 1,000 changed |")
    print("|---|---|---|")
    for name in before:
        b, a = before[name], after[name]
        print(f"| {name} | {b['p50_us']} / {b['p99_us']} | {a['p50_us']} / {a['p99_us']} |")
    print(result["machine"])
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
