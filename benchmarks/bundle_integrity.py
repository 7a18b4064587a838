"""What integrity and crash safety cost: bundle verification and the MLflow store's setup.

Builds one bundle of a shop-sized catalog (popularity + item_knn models, a CSR history
matrix, sequences) and times:

- `write_bundle` unsigned and signed;
- `verify_bundle` with its parts: re-hashing every file (what schema 1 did), the field
  digests and fingerprint of schema 2, the HMAC signature, the `.npy` header scan;
- the MLflow store's first setup as MLflow does it in place and as
  `prepare_sqlite_store` does it (in a temporary file, renamed), and a second open of
  the complete store (the check every process makes).

Usage:
    .venv/bin/python benchmarks/bundle_integrity.py [--items 50000] [--users 200000]
        [--events-per-user 20] [--repeat 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp


def _best(function: Callable[[], object], repeat: int) -> float:
    """Median seconds of `repeat` calls (a file cache warm after the first)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def build(root: Path, items: int, users: int, events_per_user: int) -> dict[str, Any]:
    """Fit the models and return the spec's parts."""
    from shelfwise.retrieval import ItemKNNRecommender, PopularityRecommender

    rng = np.random.default_rng(7)
    rows = np.repeat(np.arange(users), events_per_user)
    cols = rng.zipf(1.3, size=rows.size) % items
    histories = sp.csr_matrix(
        (np.ones(rows.size, dtype=np.float32), (rows, cols)), shape=(users, items)
    )
    histories.sum_duplicates()
    popularity = PopularityRecommender()
    popularity.fit(histories)
    popularity.save(root / "popularity")
    knn = ItemKNNRecommender(neighbours=50, num_threads=1)
    knn.fit(histories)
    knn.save(root / "item_knn")
    return {
        "items": pl.DataFrame(
            {"raw_item_id": [f"sku-{i}" for i in range(items)], "title": ["t"] * items}
        ),
        "users": pl.DataFrame({"raw_user_id": [f"user-{u}" for u in range(users)]}),
        "histories": histories,
        "components": {
            "recommender": ("item_knn", root / "item_knn"),
            "popular": ("popularity", root / "popularity"),
            "similar": ("item_knn", root / "item_knn"),
        },
        "metrics": {"item_knn": {"ndcg@10": 0.3}},
        "lineage": {"run_id": "bench", "data_cutoff_timestamp": 1_767_225_600},
        "project": "bench",
    }


def main() -> None:
    """Run the benchmark and print a table (and JSON with --json)."""
    from shelfwise.package.bundle import BundleSpec, bundle_files, verify_bundle, write_bundle
    from shelfwise.package.integrity import (
        check_arrays,
        check_fields,
        check_signature,
        fingerprint_v2,
    )
    from shelfwise.registry import mlflow_setup

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--events-per-user", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    key = b"benchmark-key-0123456789-abcdefghij"

    root = Path(tempfile.mkdtemp(prefix="shelfwise-integrity-"))
    try:
        spec = BundleSpec(**build(root, args.items, args.users, args.events_per_user))
        results: dict[str, float] = {}

        def write(name: str, signed: bool) -> Path:
            out = root / name
            started = time.perf_counter()
            write_bundle(spec, out, key=key if signed else None)
            results[f"write_{'signed' if signed else 'unsigned'}_s"] = time.perf_counter() - started
            return out

        write("unsigned", signed=False)
        bundle = write("signed", signed=True)
        manifest_bytes = (bundle / "manifest.json").read_bytes()
        document = json.loads(manifest_bytes)
        results["bundle_mb"] = sum(p.stat().st_size for p in bundle.rglob("*")) / 2**20
        results["files"] = len(document["files"])
        results["verify_unsigned_s"] = _best(lambda: verify_bundle(bundle, key=None), args.repeat)
        results["verify_signed_s"] = _best(lambda: verify_bundle(bundle, key=key), args.repeat)
        results["part_rehash_files_s"] = _best(lambda: bundle_files(bundle), args.repeat)
        results["part_fields_and_fingerprint_s"] = _best(
            lambda: (
                check_fields(bundle, document, document["fields"]),
                fingerprint_v2(document["files"], document["fields"]),
            ),
            args.repeat,
        )
        results["part_signature_s"] = _best(
            lambda: check_signature(bundle, manifest_bytes, key), args.repeat
        )
        results["part_npy_header_scan_s"] = _best(
            lambda: check_arrays(bundle, document["files"]), args.repeat
        )

        # MLflow's own first setup in place (what ran before) vs the atomic one; the
        # import is paid first so that neither number carries it
        from mlflow.store.db.utils import _initialize_tables, create_sqlalchemy_engine

        (root / "mlflow").mkdir()
        started = time.perf_counter()
        engine = create_sqlalchemy_engine(f"sqlite:///{root / 'mlflow' / 'in-place.db'}")
        _initialize_tables(engine)
        engine.dispose()
        results["mlflow_setup_in_place_s"] = time.perf_counter() - started
        database = root / "mlflow" / "mlflow.db"
        started = time.perf_counter()
        mlflow_setup.prepare_sqlite_store(f"sqlite:///{database}")
        results["mlflow_setup_atomic_s"] = time.perf_counter() - started

        def reopen() -> None:
            mlflow_setup._prepared.clear()  # a new process: check the store again
            mlflow_setup.prepare_sqlite_store(f"sqlite:///{database}")

        results["mlflow_open_complete_store_s"] = _best(reopen, args.repeat)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print(
        f"bundle: {args.items:,} items, {args.users:,} users, "
        f"{results['bundle_mb']:.1f} MB in {int(results['files'])} files "
        f"({platform.machine()}, Python {platform.python_version()})"
    )
    print("| measure | seconds |")
    print("|---|---|")
    for name, value in results.items():
        if name.endswith("_s"):
            print(f"| {name.removesuffix('_s')} | {value:.4f} |")
    if args.json:
        print(json.dumps({"args": vars(args), "results": results}))


if __name__ == "__main__":
    main()
