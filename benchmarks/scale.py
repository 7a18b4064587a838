"""Scale benchmark: generated shops of 1M, 10M and 30M events on the default config.

For each size it generates the shop (`shelfwise generate`), then runs `shelfwise run`
with a config that holds only the `data:` section (plus a fresh state folder and
embedding cache, so nothing is reused), each in its own process, and records:

- total wall time and the peak RSS of the run's process (sampled every 50 ms);
- per stage: wall seconds and peak RSS from the stage manifests (`peak_memory_mb`);
- the plan: families run and left out (with reasons), settings it chose, its estimate;
- whether every enabled family got at least its baseline tuning trial;
- dense encoding throughput (items/s) when dense search was built.

It prints the tables and a log-log growth table (slope of log time against log events
between sizes, per stage and in total), and writes everything to
benchmarks/results/scale.json. Targets (issue 13): 10M events ≤ 20 min and ≤ 8 GB
peak RSS, every enabled family tuned at least once, total time slope ≤ 1.1 from 1M to
30M.

Usage:
    .venv/bin/python benchmarks/scale.py                     # 1m,10m,30m
    .venv/bin/python benchmarks/scale.py --sizes 1m,10m --work /tmp/scale
    .venv/bin/python benchmarks/scale.py --engine ray        # the Ray engine (issue 13.3)

With `--engine ray` each size runs on `scripts/ray_cluster.sh`'s two-node loopback
cluster (head + worker raylet, one CPU each, on this machine's cores), started before
the run and stopped after it (its start time is recorded apart, not in the wall time);
the peak RSS adds the nodes' process trees (Ray's workers do the run's work there).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import yaml

ROOT = Path(__file__).resolve().parent.parent
SHELFWISE = Path(sys.executable).parent / "shelfwise"
# The shapes: users and items grow with events (75k users / 20k items per 1M).
SIZES: dict[str, dict[str, int]] = {
    "1m": {"events": 1_000_000, "users": 75_000, "items": 20_000},
    "10m": {"events": 10_000_000, "users": 750_000, "items": 200_000},
    "30m": {"events": 30_000_000, "users": 2_250_000, "items": 600_000},
}
SEED = 42
TARGET_MINUTES_10M = 20.0
TARGET_PEAK_GB_10M = 8.0
TARGET_SLOPE = 1.1


def monitored(
    command: list[str], log: Path, also: list[int] | None = None, env: dict[str, str] | None = None
) -> tuple[float, float, int]:
    """Run `command`, output to `log`; (wall seconds, peak RSS MB of its process tree, rc).

    `also`: more process trees counted in the peak (the Ray nodes, whose workers do the
    work of a run with engine ray: their RSS is memory the run uses).
    """
    started = time.perf_counter()
    peak = 0.0
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        roots = [process.pid, *(also or [])]
        while process.poll() is None:
            rss = 0
            for root in roots:
                try:
                    parent = psutil.Process(root)
                    tree = [parent, *parent.children(recursive=True)]
                except psutil.Error:
                    continue
                for member in tree:
                    try:
                        rss += member.memory_info().rss
                    except psutil.Error:
                        pass
            peak = max(peak, rss / 2**20)
            time.sleep(0.05)
    return time.perf_counter() - started, peak, process.returncode


class LoopbackCluster:
    """`scripts/ray_cluster.sh`'s two-node cluster (one CPU a node) for a run on Ray.

    Token authentication off: the nodes listen on loopback addresses only here, and the
    run's process must not need the token (see the script's header).
    """

    SCRIPT = ROOT / "scripts" / "ray_cluster.sh"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.env = {**os.environ, "RAY_AUTH_MODE": "disabled",
                    "RAY": str(Path(sys.executable).parent / "ray")}  # fmt: skip
        # object stores that hold a fitted model at shop size (the script's 300 MB is
        # for tests); Ray spills to disk beyond it, which would be measured too
        self.env.setdefault("RAY_CLUSTER_OBJECT_STORE_MB", "2048")
        self.address = ""
        self.start_s = 0.0

    def __enter__(self) -> LoopbackCluster:
        started = time.perf_counter()
        done = subprocess.run(
            ["bash", str(self.SCRIPT), "start", str(self.folder)],
            capture_output=True, text=True, check=False, env=self.env,
        )  # fmt: skip
        if done.returncode:
            raise SystemExit(f"the Ray cluster did not start: {done.stderr[-2000:]}")
        self.address = done.stdout.strip().splitlines()[-1]
        self.start_s = time.perf_counter() - started
        return self

    def node_pids(self) -> list[int]:
        """The pids of the two `ray start --block` processes (their trees hold the nodes)."""
        pids = (self.folder / f"{node}.pid" for node in ("head", "worker"))
        return [int(path.read_text()) for path in pids if path.is_file()]

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["bash", str(self.SCRIPT), "stop", str(self.folder)],
                       capture_output=True, check=False, env=self.env)  # fmt: skip


def generate(size: str, work: Path) -> dict[str, Any]:
    """The shop of `size` under `work/<size>/data` (kept between runs of this script)."""
    shape = SIZES[size]
    data = work / size / "data"
    marker = data / "generated.json"
    if marker.is_file():
        return dict(json.loads(marker.read_text()))
    data.mkdir(parents=True, exist_ok=True)
    command = [str(SHELFWISE), "generate", "--out", str(data), "--seed", str(SEED)]
    for key in ("users", "items", "events"):
        command += [f"--{key}", str(shape[key])]
    seconds, peak, code = monitored(command, work / size / "generate.log")
    if code:
        raise SystemExit(f"generate {size} failed; see {work / size / 'generate.log'}")
    record = {"seconds": round(seconds, 1), "peak_mb": round(peak), **shape}
    marker.write_text(json.dumps(record))
    return record


def run_size(size: str, work: Path, engine: str, sets: list[str]) -> dict[str, Any]:
    """Generate the shop, run the pipeline on a data-only config, read its manifests."""
    generated = generate(size, work)
    folder = work / size
    run_home = folder / f"home-{engine}-{int(time.time())}"
    data = folder / "data"
    config = {
        "home": str(run_home),
        "data": {
            "catalog": {"path": str(data / "catalog.parquet")},
            "events": {"path": str(data / "events.parquet")},
            "queries": {"path": str(data / "queries.parquet")},
        },
    }
    path = folder / "shelfwise.yaml"
    path.write_text(yaml.safe_dump(config))
    command = [str(SHELFWISE), "run", "-c", str(path), "--no-cache"]
    for item in sets:
        command += ["--set", item]
    cluster: dict[str, Any] = {}
    if engine == "local":
        seconds, peak, code = monitored(command, folder / f"run-{engine}.log")
    else:  # the compute section (issue 13, point 3) on the two-node loopback cluster
        with LoopbackCluster(work / "ray") as nodes:
            command += ["--set", f"compute.engine={engine}", "--set",
                        f"compute.address={nodes.address}"]  # fmt: skip
            seconds, peak, code = monitored(
                command, folder / f"run-{engine}.log", also=nodes.node_pids(), env=nodes.env
            )
            cluster = {"nodes": 2, "cpus_per_node": 1, "start_s": round(nodes.start_s, 1)}
    runs = sorted((run_home / "runs").glob("*/"))
    result: dict[str, Any] = {
        "size": size,
        "engine": engine,
        "generate": generated,
        "returncode": code,
        "wall_s": round(seconds, 1),
        "peak_rss_mb": round(peak),
        "log": str(folder / f"run-{engine}.log"),
        **({"cluster": cluster} if cluster else {}),
    }
    if runs:
        result.update(read_run(runs[-1]))
    return result


def read_run(run_dir: Path) -> dict[str, Any]:
    """Per-stage seconds and peak MB, the plan, tuning coverage and dense throughput."""
    stages: dict[str, dict[str, float]] = {}
    for manifest_path in sorted(run_dir.glob("*/manifest.json")):
        manifest = json.loads(manifest_path.read_text())
        stages[manifest["stage"]] = {
            "seconds": manifest["timings_s"].get("total", 0.0),
            "peak_mb": manifest.get("peak_memory_mb") or 0.0,
        }
    result: dict[str, Any] = {"run_dir": str(run_dir), "stages": stages}
    plan_file = run_dir / "plan" / "plan.json"
    if plan_file.is_file():
        plan = json.loads(plan_file.read_text())
        result["plan"] = {
            "families": [
                p["name"] for p in plan["parts"] if p["kind"] == "family" and p["enabled"]
            ],
            "left_out": {p["name"]: p["reason"] for p in plan["parts"] if not p["enabled"]},
            "settings": plan["settings"],
            "estimated_s": {s["name"]: s["seconds"] for s in plan["stages"] if not s["measured"]},
            "shape": plan["shape"],
        }
    trials_file = run_dir / "tune" / "trials.json"
    if trials_file.is_file() and plan_file.is_file():
        trials = json.loads(trials_file.read_text())
        with_baseline = {t["family"] for t in trials if t["number"] == "baseline"}
        tunable = set(json.loads(plan_file.read_text())["tune_trial_seconds"])
        result["tuning"] = {
            "baseline_trials": sorted(with_baseline),
            "tunable": sorted(tunable),
            "every_family_tried": tunable <= with_baseline,
            "trials": len(trials),
        }
    models_file = run_dir / "retrieval" / "models.json"
    if models_file.is_file():
        models = json.loads(models_file.read_text())
        result["fit_s"] = {name: info.get("fit_s") for name, info in models.items()}
        dense = models.get("dense")
        shape = result.get("plan", {}).get("shape", {})
        if dense and shape.get("text_items"):
            result["dense_items_per_s"] = round(shape["text_items"] / max(dense["fit_s"], 1e-9), 1)
    return result


def slope(x0: float, y0: float, x1: float, y1: float) -> float | None:
    """d log(y) / d log(x), None when a value is not positive."""
    if min(x0, y0, x1, y1) <= 0 or x0 == x1:
        return None
    return (math.log(y1) - math.log(y0)) / (math.log(x1) - math.log(x0))


def growth_table(results: list[dict[str, Any]]) -> list[str]:
    """Markdown: per stage and total, seconds per size and the log-log slope."""
    done = [r for r in results if r.get("stages")]
    if len(done) < 2:
        return ["(the growth table needs two sizes)"]
    events = [SIZES[r["size"]]["events"] for r in done]
    names = [name for name in done[0]["stages"] if all(name in r["stages"] for r in done)]
    header = "| stage | " + " | ".join(r["size"] for r in done) + " | slope first→last |"
    lines = [header, "|---" * (len(done) + 2) + "|"]
    rows = [(name, [r["stages"][name]["seconds"] for r in done]) for name in names]
    rows.append(("**total (wall)**", [r["wall_s"] for r in done]))
    for name, values in rows:
        value = slope(events[0], values[0], events[-1], values[-1])
        shown = "–" if value is None else f"{value:.2f}"
        lines.append(f"| {name} | " + " | ".join(f"{v:,.1f}" for v in values) + f" | {shown} |")
    return lines


def report(results: list[dict[str, Any]]) -> list[str]:
    """Markdown tables of every size, then the growth table and the targets."""
    lines: list[str] = []
    for r in results:
        lines.append(
            f"### {r['size']} ({r['engine']}): {r['wall_s'] / 60:.1f} min, peak RSS "
            f"{r['peak_rss_mb']:,} MB, exit {r['returncode']}"
        )
        gen = r["generate"]
        lines.append(
            f"generate: {gen['events']:,} events, {gen['users']:,} users, {gen['items']:,} "
            f"items in {gen['seconds']} s, {gen['peak_mb']:,} MB"
        )
        lines.append("| stage | s | peak MB |")
        lines.append("|---|---|---|")
        for name, stage in r.get("stages", {}).items():
            lines.append(f"| {name} | {stage['seconds']:,.1f} | {stage['peak_mb']:,.0f} |")
        plan = r.get("plan")
        if plan:
            lines.append(f"families: {', '.join(plan['families'])}")
            for name, reason in plan["left_out"].items():
                lines.append(f"- left out {name}: {reason}")
            lines.append(f"plan settings: {json.dumps(plan['settings'])}")
        if "tuning" in r:
            lines.append(
                f"every enabled family tuned at least once: {r['tuning']['every_family_tried']}"
            )
        if "dense_items_per_s" in r:
            lines.append(f"dense encoding: {r['dense_items_per_s']} items/s")
        lines.append("")
    lines.append("### Growth (log-log)")
    lines.extend(growth_table(results))
    lines.extend(
        f"10M: {r['wall_s'] / 60:.1f} min (target ≤ {TARGET_MINUTES_10M:.0f}), peak "
        f"{r['peak_rss_mb'] / 1024:.1f} GB (target ≤ {TARGET_PEAK_GB_10M:.0f})"
        for r in results
        if r["size"] == "10m"
    )
    return lines


def main() -> None:
    """Parse the arguments, run each size, print and save the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1m,10m,30m", help="comma list of 1m, 10m, 30m")
    parser.add_argument("--work", type=Path, default=Path("/tmp/shelfwise-scale"))
    parser.add_argument("--engine", choices=["local", "ray"], default="local")
    parser.add_argument("--set", dest="sets", action="append", default=[], help="KEY=VALUE")
    parser.add_argument("--json", action="store_true", help="print the JSON, not Markdown")
    parser.add_argument(
        "--report", action="store_true", help="print the saved results, run nothing"
    )
    args = parser.parse_args()
    out = ROOT / "benchmarks" / "results" / "scale.json"
    saved: dict[str, Any] = json.loads(out.read_text()) if out.is_file() else {"results": []}
    if not args.report:
        args.work.mkdir(parents=True, exist_ok=True)
        for size in args.sizes.split(","):
            if size not in SIZES:
                raise SystemExit(f"unknown size {size!r}; choose from {', '.join(SIZES)}")
            result = run_size(size, args.work, args.engine, args.sets)
            result["date"] = time.strftime("%Y-%m-%d", time.gmtime())
            result["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
            result["machine"] = (
                f"{platform.machine()}, {psutil.cpu_count()} cores, "
                f"{psutil.virtual_memory().total / 2**30:.0f} GB"
            )
            print(f"{size}: {result['wall_s']} s, peak {result['peak_rss_mb']} MB", flush=True)
            # one entry per (size, engine): a rerun replaces the earlier numbers; read
            # again first, as another engine's run may have saved since this one began
            saved = json.loads(out.read_text()) if out.is_file() else {"results": []}
            saved["results"] = [
                r for r in saved["results"] if (r["size"], r["engine"]) != (size, args.engine)
            ] + [result]
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(saved, indent=2))
    order = list(SIZES)
    results = sorted(
        (r for r in saved["results"] if r["engine"] == args.engine),
        key=lambda r: order.index(r["size"]),
    )
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print("\n".join(report(results)))


if __name__ == "__main__":
    main()
