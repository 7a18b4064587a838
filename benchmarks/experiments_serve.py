"""What an experiment adds to a served list: /v1/recommend without one, A/B, interleaving.

Builds two bundles of a generated shop (popularity and item kNN over `--users` users
and `--items` items), serves them as champion and challenger in one app (in-process,
Starlette's TestClient, so the numbers include the app's own work but no network), and
times `--requests` recommendations per case; then posts one click per list and times
the `/v1/events` batches. Interleaving runs both versions per list, so its model time
is the sum of both.

Usage:
    .venv/bin/python benchmarks/experiments_serve.py [--requests 2000] [--users 2000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from shelfwise.package.bundle import BundleSpec, write_bundle
from shelfwise.retrieval import ItemKNNRecommender, PopularityRecommender
from shelfwise.runtime import load_engine
from shelfwise.serve import ServeSettings, create_app

TOKEN = "bench-experiments-5Hd8Kq2Lw7Zn4Xc1Vb9Mt3Rp6"  # noqa: S105 - a local benchmark token
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def build(root: Path, users: int, items: int, knn: bool) -> Path:
    """A bundle of a random shop (the same seed for both versions)."""
    rng = np.random.default_rng(0)
    rows = np.repeat(np.arange(users), 8)
    cols = rng.zipf(1.3, size=rows.size) % items
    histories = sp.csr_matrix(
        (np.ones(rows.size, dtype=np.float32), (rows, cols)), shape=(users, items)
    )
    popularity = PopularityRecommender()
    popularity.fit(histories)
    popularity.save(root / "models" / "popularity")
    components = {"popular": ("popularity", root / "models" / "popularity")}
    if knn:
        model = ItemKNNRecommender(neighbours=50, num_threads=1)
        model.fit(histories)
        model.save(root / "models" / "item_knn")
        components["recommender"] = ("item_knn", root / "models" / "item_knn")
    else:
        components["recommender"] = ("popularity", root / "models" / "popularity")
    ids = [f"sku-{i}" for i in range(items)]
    write_bundle(
        BundleSpec(
            items=pl.DataFrame({"raw_item_id": ids, "title": ids, "price": [9.9] * items}),
            users=pl.DataFrame({"raw_user_id": [f"u{u}" for u in range(users)]}),
            histories=histories,
            components=components,
        ),
        root / "bundle",
    )
    return root / "bundle"


def timed(client: Any, requests: int, users: int) -> tuple[list[float], list[dict[str, Any]]]:
    """Latencies (ms) of `requests` recommendations, and their responses."""
    latencies, answers = [], []
    for n in range(requests):
        started = time.perf_counter()
        response = client.post("/v1/recommend", json={"user_id": f"u{n % users}", "k": 10})
        latencies.append((time.perf_counter() - started) * 1000)
        answers.append(response.json())
    return latencies, answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--items", type=int, default=5000)
    args = parser.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        pop = load_engine(build(root / "pop", args.users, args.items, False), version="pop")
        knn = load_engine(build(root / "knn", args.users, args.items, True), version="knn")
        settings = ServeSettings(
            bundle_path=None,
            admin_enabled=True,
            admin_token=TOKEN,
            event_log_dir=root / "events",
            catalog_log_dir=root / "catalog",
            drift_interval_s=0,
        )
        print("| case | p50 ms | p99 ms | events batch of 100, p50 ms |")
        print("|---|---|---|---|")
        for mode in (None, "ab", "interleaving"):
            with TestClient(create_app(settings, engine=pop)) as client:
                client.app.state.holder.swap(knn, "challenger")  # type: ignore[attr-defined]
                if mode is not None:
                    client.post(
                        "/v1/admin/experiments",
                        json={
                            "name": "bench",
                            "mode": mode,
                            "endpoints": ["recommend"],
                            "variants": [
                                {"name": "control", "version": "pop", "share": 0.5},
                                {"name": "treatment", "version": "knn", "share": 0.5},
                            ],
                        },
                        headers=AUTH,
                    ).raise_for_status()
                timed(client, 100, args.users)  # warm-up
                latencies, answers = timed(client, args.requests, args.users)
                clicks = [
                    {
                        "user_id": f"u{n % args.users}",
                        "item_id": answer["items"][0]["item_id"],
                        "event_type": "click",
                        "request_id": answer["request_id"],
                    }
                    for n, answer in enumerate(answers)
                    if answer["items"]
                ]
                batches = []
                for start in range(0, len(clicks), 100):
                    started = time.perf_counter()
                    client.post("/v1/events", json={"events": clicks[start : start + 100]})
                    batches.append((time.perf_counter() - started) * 1000)
            print(
                f"| {mode or 'no experiment'} | {np.percentile(latencies, 50):.2f} "
                f"| {np.percentile(latencies, 99):.2f} | {np.percentile(batches, 50):.2f} |"
            )


if __name__ == "__main__":
    main()
