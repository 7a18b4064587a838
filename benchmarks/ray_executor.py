"""The compute executors: blockwise item-kNN scoring, local against a two-node Ray cluster.

What `compute.engine: ray` costs and gives for the work it was built for (sharded
scoring of user blocks, the fitted model shared through the object store): a generated
shop (power-law item popularity), an item-kNN model, every user's top 10 scored in
blocks by `LocalExecutor` and by `RayExecutor` on the loopback cluster of
`scripts/ray_cluster.sh` (two raylets, one CPU each), the results compared exactly.

Reports: cluster start and driver connect seconds, the model's size, local and Ray wall
time of the scoring, users/s, Ray's time against local (on the same cores: a speed-up
needs more machines, and the number shows the overhead), and whether both agree.

Usage:
    .venv/bin/python benchmarks/ray_executor.py [--users 200000 --items 20000
        --events 2000000 --block-users 1000] [--address HOST:PORT] [--json]
Without --address it starts (and stops) the loopback cluster itself.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from shelfwise.compute import LocalExecutor, open_executor
from shelfwise.config import ComputeConfig
from shelfwise.retrieval.base import UserHistories, recommend_top_k
from shelfwise.retrieval.item_knn import ItemKNNRecommender

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "ray_cluster.sh"
Shop = tuple[ItemKNNRecommender, sp.csr_matrix]


def make_shop(users: int, items: int, events: int, seed: int = 0) -> sp.csr_matrix:
    """Random events: users uniform, items Zipf-like (a few popular, a long tail)."""
    rng = np.random.default_rng(seed)
    user = rng.integers(0, users, events)
    popularity = 1.0 / np.arange(1, items + 1) ** 0.8
    item = rng.choice(items, size=events, p=popularity / popularity.sum())
    weight = rng.uniform(0.5, 3.0, events).astype(np.float32)
    matrix = sp.csr_matrix((weight, (user, item)), shape=(users, items), dtype=np.float32)
    matrix.sum_duplicates()
    return matrix


def score_block(users: np.ndarray, shared: Shop) -> tuple[np.ndarray, np.ndarray]:
    """Top 10 unseen items of a block of users (what evaluation and precomputed lists do)."""
    model, train = shared
    return recommend_top_k(model, UserHistories.select(train, None, users), k=10)


def _timed_map(executor: Any, blocks: list[np.ndarray], shop: Shop) -> tuple[float, list[Any]]:
    started = time.perf_counter()
    results = executor.map(score_block, blocks, shop, what="user block")
    return time.perf_counter() - started, results


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build the shop, score it both ways, return the numbers."""
    started = time.perf_counter()
    train = make_shop(args.users, args.items, args.events)
    model = ItemKNNRecommender(neighbours=50)
    model.fit(train)
    shop: Shop = (model, train)
    prepare_s = time.perf_counter() - started
    blocks = np.array_split(np.arange(args.users), max(1, args.users // args.block_users))
    local_s, local = _timed_map(LocalExecutor(), blocks, shop)

    folder = None
    address = args.address
    cluster_start_s = 0.0
    if address is None:
        folder = Path(tempfile.mkdtemp(prefix="swraybench", dir="/tmp"))
        started = time.perf_counter()
        done = subprocess.run(
            ["bash", str(SCRIPT), "start", str(folder)],
            capture_output=True, text=True, check=False,
            env={**os.environ, "RAY": str(Path(sys.executable).parent / "ray")},
        )  # fmt: skip
        cluster_start_s = time.perf_counter() - started
        if done.returncode != 0:
            shutil.rmtree(folder, ignore_errors=True)
            raise SystemExit(f"the loopback cluster did not start: {done.stderr[-1000:]}")
        address = done.stdout.strip().splitlines()[-1]
    try:
        started = time.perf_counter()
        executor = open_executor(ComputeConfig(engine="ray", address=address))
        connect_s = time.perf_counter() - started
        executor.map(score_block, blocks[:2], shop)  # warm: workers started, code shipped
        ray_s, on_ray = _timed_map(executor, blocks, shop)
        cpus = executor.parallelism
    finally:
        from shelfwise.compute.ray_executor import disconnect

        disconnect()
        if folder is not None:
            subprocess.run(["bash", str(SCRIPT), "stop", str(folder)], check=False)
            shutil.rmtree(folder, ignore_errors=True)
    identical = all(
        np.array_equal(a_ids, b_ids) and np.array_equal(a_scores, b_scores)
        for (a_ids, a_scores), (b_ids, b_scores) in zip(local, on_ray, strict=True)
    )
    return {
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "users": args.users,
        "items": args.items,
        "interactions": int(train.nnz),
        "blocks": len(blocks),
        "model_mb": round(len(pickle.dumps(shop, protocol=5)) / 2**20, 1),
        "prepare_s": round(prepare_s, 1),
        "cluster_start_s": round(cluster_start_s, 1),
        "connect_s": round(connect_s, 1),
        "ray_cpus": cpus,
        "local_s": round(local_s, 2),
        "ray_s": round(ray_s, 2),
        "local_users_per_s": round(args.users / local_s),
        "ray_users_per_s": round(args.users / ray_s),
        "ray_vs_local": round(ray_s / local_s, 2),
        "identical": identical,
    }


def main() -> None:
    """Parse the flags, run, print a table (and JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--block-users", type=int, default=1_000)
    parser.add_argument("--address", help="a running cluster (default: start the loopback one)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    # The loopback cluster uses token authentication (scripts/ray_cluster.sh); a driver
    # joining by address must say so before Ray is imported.
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    result = run(args)
    for key, value in result.items():
        print(f"{key:>20}  {value}")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
