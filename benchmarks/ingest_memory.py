"""Ingest + validate memory and time at 1M, 10M and 30M events (issue 13, target:
ingest+validate peak RSS at 30M events within 1.2x of the 1M-event peak), and the
generator's own time and peak memory (it must stream 30M events).

Shops are generated with users and items scaled as in issue 13: 1M events -> 75k users
/ 20k items, 10M -> 750k / 200k, 30M -> 2.25M / 600k; `30m-small` puts 30M events on the
1M shop's users and items, to show what grows with events alone; `catalog-600k` the 30M
shop's 600k items with 20k events, what grows with the catalog. Every step runs in its own
process, so one step's memory never shows up in another's peak:

1. `generate_shop` (peak RSS of the process: `ru_maxrss`);
2. the pipeline until ingest (the stage's `peak_memory_mb` from its manifest);
3. the same run resumed until validate (a fresh process: validate's own peak).

With `--engine ray` the stages run with `compute.engine: ray` on a Ray started inside
the stage's process (`address: local`, 2 CPUs): ingest parses the files and validate
checks ingest's parts as Ray Data datasets. The stage's own peak is then the driver's;
`tree peak MB` adds Ray's processes (raylet, workers): the highest sum of proportional
set sizes (PSS: shared pages, such as the object store's, split between the processes
that map them) of the stage's process and all its descendants, sampled every 0.2 s;
`driver USS MB` is the stage process's own pages (its RSS also counts the pages of Ray's
object store it has read, which grow with the store's use, not with its own memory).

Usage:
    .venv/bin/python benchmarks/ingest_memory.py                # 1m, 10m, 30m
    .venv/bin/python benchmarks/ingest_memory.py 1m --engine ray --reuse --scratch /tmp/x
    .venv/bin/python benchmarks/ingest_memory.py 1m 10m --format csv
    .venv/bin/python benchmarks/ingest_memory.py --scratch /big/disk --reuse  # shops kept
Results are printed as Markdown and written to benchmarks/results/ingest_memory.json.
Disk: ~3 GB of scratch for 30M events (removed unless --keep).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHOPS = {
    "1m": {"users": 75_000, "items": 20_000, "events": 1_000_000},
    "10m": {"users": 750_000, "items": 200_000, "events": 10_000_000},
    "30m": {"users": 2_250_000, "items": 600_000, "events": 30_000_000},
    # 30M events over the 1M shop's users and items: what grows with events alone
    "30m-small": {"users": 75_000, "items": 20_000, "events": 30_000_000},
    # the 30M shop's catalog with few events: what grows with the catalog alone
    "catalog-600k": {"users": 2_000, "items": 600_000, "events": 20_000},
}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def generate(folder: str, size: str, file_format: str) -> dict[str, Any]:
    """Child process: generate one shop."""
    from shelfwise.sample import generate_shop

    started = time.perf_counter()
    shop = generate_shop(Path(folder), seed=42, file_format=file_format, **SHOPS[size])  # type: ignore[arg-type]
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "peak_mb": round(_peak_mb(), 1),
        "events": shop.n_events,
        "users": shop.n_users,
        "items": shop.n_items,
        "events_bytes": shop.events_path.stat().st_size,
    }


class _TreePeak:
    """The highest PSS sum of this process and its descendants, sampled in a thread."""

    def __init__(self, interval_s: float = 0.2) -> None:
        import threading

        self.peak_mb = 0.0
        self.own_uss_mb = 0.0  # this process's own pages (RSS also counts Ray's store)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval_s,), daemon=True)
        self._thread.start()

    def _run(self, interval_s: float) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for process in [me, *me.children(recursive=True)]:
                try:
                    memory = process.memory_full_info()
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                total += memory.pss
                if process is me:
                    self.own_uss_mb = max(self.own_uss_mb, memory.uss / 2**20)
            self.peak_mb = max(self.peak_mb, total / 2**20)
            self._stop.wait(interval_s)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return round(self.peak_mb, 1)


def stage(
    folder: str, until: str, file_format: str, engine: str = "local", sets: str = "{}"
) -> dict[str, Any]:
    """Child process: run the pipeline until `until` (resuming the run if one exists)."""
    from shelfwise.config import load_config
    from shelfwise.pipeline import run_pipeline

    tree = _TreePeak()
    ray = {"compute.engine": "ray", "compute.address": "local", "compute.num_cpus": 2}

    data = Path(folder) / "data"
    config = load_config(
        None,
        environ={},
        overrides={
            "project": "ingest-memory",
            "home": str(Path(folder) / "state"),
            "data.catalog.path": str(data / f"catalog.{file_format}"),
            "data.events.path": str(data / f"events.{file_format}"),
            "data.queries.path": str(data / f"queries.{file_format}"),
            **(ray if engine == "ray" else {}),
            **json.loads(sets),
        },
    )
    resume = "latest" if until == "validate" else None
    started = time.perf_counter()
    outcome = run_pipeline(config, until=until, resume=resume)  # a fresh home: no cache
    manifest = outcome.manifests[until]
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "stage_seconds": manifest.timings_s.get("total"),
        "peak_mb": manifest.peak_memory_mb,
        "process_peak_mb": round(_peak_mb(), 1),
        "tree_peak_mb": tree.stop(),
        "driver_uss_peak_mb": round(tree.own_uss_mb, 1),
        "rows": manifest.row_counts,
    }


def _child(*args: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    result = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{args} failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure(
    size: str,
    file_format: str,
    scratch: Path,
    *,
    keep: bool,
    reuse: bool,
    engine: str = "local",
    sets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    folder = scratch / f"shop-{size}-{file_format}"
    generated = folder / "generate.json"
    row: dict[str, Any] = {"shop": size, "format": file_format, "engine": engine}
    if sets:
        row["set"] = sets
    given = json.dumps(sets or {})
    if reuse and generated.is_file():  # the same shop again: only ingest and validate
        shutil.rmtree(folder / "state", ignore_errors=True)
        row["generate"] = json.loads(generated.read_text())
    else:
        shutil.rmtree(folder, ignore_errors=True)
        row["generate"] = _child("generate", str(folder / "data"), size, file_format)
        generated.write_text(json.dumps(row["generate"]))
    row["ingest"] = _child("stage", str(folder), "ingest", file_format, engine, given)
    row["validate"] = _child("stage", str(folder), "validate", file_format, engine, given)
    if not keep:
        shutil.rmtree(folder, ignore_errors=True)
    return row


def _markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| shop | events | users | items | generate s | generate peak MB | ingest s "
        "| ingest peak MB | validate s | validate peak MB | ingest+validate peak MB "
        "| tree peak MB | driver USS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        gen, ing, val = row["generate"], row["ingest"], row["validate"]
        both = max(ing["peak_mb"] or 0, val["peak_mb"] or 0)
        row["ingest_validate_peak_mb"] = both
        tree = max(ing.get("tree_peak_mb", 0), val.get("tree_peak_mb", 0))
        uss = max(ing.get("driver_uss_peak_mb", 0), val.get("driver_uss_peak_mb", 0))
        lines.append(
            f"| {row['shop']} ({row['format']}, {row.get('engine', 'local')}) "
            f"| {gen['events']:,} | {gen['users']:,} "
            f"| {gen['items']:,} | {gen['seconds']:.0f} | {gen['peak_mb']:,.0f} "
            f"| {ing['stage_seconds']:.0f} | {ing['peak_mb']:,.0f} | {val['stage_seconds']:.0f} "
            f"| {val['peak_mb']:,.0f} | {both:,.0f} | {tree:,.0f} | {uss:,.0f} |"
        )
    firsts: dict[str, dict[str, Any]] = {}
    for row in rows:  # each engine against its own first shop
        first = firsts.setdefault(row.get("engine", "local"), row)
        if first is row:
            continue
        ratio = row["ingest_validate_peak_mb"] / first["ingest_validate_peak_mb"]
        lines.append(
            f"\ningest+validate peak at {row['shop']} / at {first['shop']} "
            f"({row.get('engine', 'local')}): {ratio:.2f}x (target at 30m: <= 1.2x)"
        )
    return "\n".join(lines)


def _override(text: str) -> tuple[str, Any]:
    key, _, value = text.partition("=")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, *rest = sys.argv[2:]
        result = generate(*rest) if kind == "generate" else stage(*rest)
        print(json.dumps(result))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", nargs="*", default=["1m", "10m", "30m"], choices=list(SHOPS))
    parser.add_argument("--format", default="parquet", choices=["parquet", "csv", "jsonl"])
    parser.add_argument("--scratch", type=Path, default=None, help="Folder for the shops.")
    parser.add_argument(
        "--engine",
        default="local",
        choices=["local", "ray", "both"],
        help="compute.engine of the stages; both: local then ray on each shop (implies --keep).",
    )
    parser.add_argument("--keep", action="store_true", help="Keep the generated shops.")
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        help="KEY=VALUE config override of the stages (VALUE as JSON, else text), e.g. "
        "data.fake_traffic.enabled=false",
    )
    parser.add_argument(
        "--reuse", action="store_true", help="Reuse shops kept in --scratch (implies --keep)."
    )
    args = parser.parse_args()
    sets = dict(_override(text) for text in args.sets)
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="shelfwise-ingest-memory-"))
    rows = []
    engines = ["local", "ray"] if args.engine == "both" else [args.engine]
    for size in args.sizes:
        for number, engine in enumerate(engines):
            keep = args.keep or args.reuse or number < len(engines) - 1
            reuse = args.reuse or number > 0
            rows.append(
                measure(
                    size, args.format, scratch, keep=keep, reuse=reuse, engine=engine, sets=sets
                )
            )
            print(json.dumps(rows[-1]), flush=True)
    print(_markdown(rows))
    out = ROOT / "benchmarks" / "results" / "ingest_memory.json"
    out.parent.mkdir(exist_ok=True)
    machine = {"cpus": os.cpu_count(), "platform": platform.platform()}
    out.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
