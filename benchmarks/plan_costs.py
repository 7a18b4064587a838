"""Calibrate the plan's cost models: fit every family on a run's features, time it.

For each family it fits the model once on the run's train matrix (default parameters,
the plan's own where it set some) and ranks a sample of validation users, measuring
wall seconds, CPU seconds (user + system of this process, so a busy machine inflates
wall time but not CPU time) and peak RSS, next to `shelfwise.plan.costs`'s estimates.
The constants in `costs.SECONDS_PER_UNIT` come from the CPU seconds of single-threaded
fits (and CPU / cores for the multi-core ones).

Usage:
    .venv/bin/python benchmarks/plan_costs.py RUN_DIR [family,family,...] [--users N]
e.g. RUN_DIR = /tmp/shelfwise-scale/1m/home-local-*/runs/<run_id> from benchmarks/scale.py.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import psutil

from shelfwise._internal.artifacts import read_csr
from shelfwise._internal.memory import PeakMemory
from shelfwise.config import load_config
from shelfwise.evaluate.recommend import EvalSplit, evaluation_users, rank_users
from shelfwise.plan import DataShape, load_plan
from shelfwise.plan.costs import fit_estimate, scoring_estimate
from shelfwise.retrieval.fitting import TrainingData, build_model, fit_model

FAMILIES = ("popularity", "item_knn", "rp3beta", "gfcf", "ease", "als", "bpr", "content")


def cpu_seconds() -> float:
    """User + system CPU seconds of this process (all its threads)."""
    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


def measure(
    name: str, params: dict[str, Any], data: TrainingData, split: EvalSplit, shape: DataShape
) -> dict[str, Any]:
    """Fit once and rank the sampled users; measured and estimated costs."""
    model = build_model(name, params)
    wall, cpu = time.perf_counter(), cpu_seconds()
    with PeakMemory() as memory:
        before = memory.peak_mb
        fit_model(model, data)
    fit_wall, fit_cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    wall, cpu = time.perf_counter(), cpu_seconds()
    rank_users(model, split, 10, label=name)
    score_wall, score_cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    cores = psutil.cpu_count() or 1
    fit = fit_estimate(name, params, shape, cores)
    score = scoring_estimate(name, params, shape, int(split.users.size))
    return {
        "family": name,
        "fit_wall_s": round(fit_wall, 2),
        "fit_cpu_s": round(fit_cpu, 2),
        "fit_estimate_s": round(fit.seconds, 2),
        "fit_peak_mb": round(memory.peak_mb - before),
        "fit_estimate_mb": round(fit.memory_bytes / 2**20),
        "score_wall_s": round(score_wall, 2),
        "score_cpu_s": round(score_cpu, 2),
        "score_estimate_s": round(score.seconds, 2),
        "users": int(split.users.size),
    }


def main() -> None:
    """Measure the named families on RUN_DIR's features and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("families", nargs="?", default=",".join(FAMILIES))
    parser.add_argument("--users", type=int, default=2000)
    args = parser.parse_args()
    features = args.run_dir / "features"
    plan = load_plan(args.run_dir / "plan")
    record = json.loads((args.run_dir / "run.json").read_text())
    config = load_config(None, environ={}, overrides={"home": record["config"]["home"]})
    data = TrainingData.load(features)
    targets = read_csr(features / "valid_targets.npz")
    users = evaluation_users(targets, max_users=args.users, seed=0)
    split = EvalSplit(data.matrix, data.sequences, targets, users)
    rows = []
    for name in args.families.split(","):
        params = dict(config.models.families()[name].params)
        prefix = f"models.{name}.params."
        params |= {k[len(prefix) :]: v for k, v in plan.settings.items() if k.startswith(prefix)}
        rows.append(measure(name, params, data, split, plan.shape))
        print(json.dumps(rows[-1]), flush=True)
    print("| family | fit wall s | fit CPU s | est. s | fit MB | est. MB | score wall s | est. s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['family']} | {r['fit_wall_s']} | {r['fit_cpu_s']} | {r['fit_estimate_s']} | "
            f"{r['fit_peak_mb']} | {r['fit_estimate_mb']} | {r['score_wall_s']} | "
            f"{r['score_estimate_s']} |"
        )
    print(f"load average: {psutil.getloadavg()}")


if __name__ == "__main__":
    main()
