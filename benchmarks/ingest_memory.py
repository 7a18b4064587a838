"""Ingest + validate memory and time at 1M, 10M and 30M events (issue 13, target:
ingest+validate peak RSS at 30M events within 1.2x of the 1M-event peak), and the
generator's own time and peak memory (it must stream 30M events).

Shops are generated with users and items scaled as in issue 13: 1M events -> 75k users
/ 20k items, 10M -> 750k / 200k, 30M -> 2.25M / 600k; `30m-small` puts 30M events on the
1M shop's users and items, to show what grows with events alone. Every step runs in its own
process, so one step's memory never shows up in another's peak:

1. `generate_shop` (peak RSS of the process: `ru_maxrss`);
2. the pipeline until ingest (the stage's `peak_memory_mb` from its manifest);
3. the same run resumed until validate (a fresh process: validate's own peak).

Usage:
    .venv/bin/python benchmarks/ingest_memory.py                # 1m, 10m, 30m
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


def stage(folder: str, until: str, file_format: str) -> dict[str, Any]:
    """Child process: run the pipeline until `until` (resuming the run if one exists)."""
    from shelfwise.config import load_config
    from shelfwise.pipeline import run_pipeline

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
    size: str, file_format: str, scratch: Path, *, keep: bool, reuse: bool
) -> dict[str, Any]:
    folder = scratch / f"shop-{size}-{file_format}"
    generated = folder / "generate.json"
    row: dict[str, Any] = {"shop": size, "format": file_format}
    if reuse and generated.is_file():  # the same shop again: only ingest and validate
        shutil.rmtree(folder / "state", ignore_errors=True)
        row["generate"] = json.loads(generated.read_text())
    else:
        shutil.rmtree(folder, ignore_errors=True)
        row["generate"] = _child("generate", str(folder / "data"), size, file_format)
        generated.write_text(json.dumps(row["generate"]))
    row["ingest"] = _child("stage", str(folder), "ingest", file_format)
    row["validate"] = _child("stage", str(folder), "validate", file_format)
    if not keep:
        shutil.rmtree(folder, ignore_errors=True)
    return row


def _markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| shop | events | users | items | generate s | generate peak MB | ingest s "
        "| ingest peak MB | validate s | validate peak MB | ingest+validate peak MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        gen, ing, val = row["generate"], row["ingest"], row["validate"]
        both = max(ing["peak_mb"] or 0, val["peak_mb"] or 0)
        row["ingest_validate_peak_mb"] = both
        lines.append(
            f"| {row['shop']} ({row['format']}) | {gen['events']:,} | {gen['users']:,} "
            f"| {gen['items']:,} | {gen['seconds']:.0f} | {gen['peak_mb']:,.0f} "
            f"| {ing['stage_seconds']:.0f} | {ing['peak_mb']:,.0f} | {val['stage_seconds']:.0f} "
            f"| {val['peak_mb']:,.0f} | {both:,.0f} |"
        )
    first = rows[0]["ingest_validate_peak_mb"]
    for row in rows[1:]:
        ratio = row["ingest_validate_peak_mb"] / first
        lines.append(
            f"\ningest+validate peak at {row['shop']} / at {rows[0]['shop']}: {ratio:.2f}x "
            f"(target at 30m: <= 1.2x)"
        )
    return "\n".join(lines)


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
    parser.add_argument("--keep", action="store_true", help="Keep the generated shops.")
    parser.add_argument(
        "--reuse", action="store_true", help="Reuse shops kept in --scratch (implies --keep)."
    )
    args = parser.parse_args()
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="shelfwise-ingest-memory-"))
    rows = []
    for size in args.sizes:
        keep = args.keep or args.reuse
        rows.append(measure(size, args.format, scratch, keep=keep, reuse=args.reuse))
        print(json.dumps(rows[-1]), flush=True)
    print(_markdown(rows))
    out = ROOT / "benchmarks" / "results" / "ingest_memory.json"
    out.parent.mkdir(exist_ok=True)
    machine = {"cpus": os.cpu_count(), "platform": platform.platform()}
    out.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
