"""Pipeline benchmark: per-stage time, peak memory and metrics on real and generated data.

Runs the whole pipeline (no stage cache) once per dataset, each in its own process so
peak-memory numbers don't mix:

- every config in examples/ whose data exists under ../shared/data
- `shop-1m`: the generated bilingual shop with 1,000,000 events

Usage:
    .venv/bin/python benchmarks/pipeline.py                  # all
    .venv/bin/python benchmarks/pipeline.py ml-100k shop-1m  # some
Results are printed as Markdown and written to benchmarks/results/pipeline.json.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SHOP_1M = {"users": 50_000, "items": 20_000, "events": 1_000_000, "seed": 42}


def run_one(name: str) -> dict[str, Any]:
    """Run one dataset in this process and return its numbers."""
    from shelfwise.config import load_config
    from shelfwise.pipeline import run_pipeline

    home = Path(tempfile.mkdtemp(prefix=f"shelfwise-bench-{name}-"))
    generate_s = None
    if name == "shop-1m":
        from shelfwise.sample import generate_shop

        started = time.perf_counter()
        shop = generate_shop(home / "data", **SHOP_1M)  # type: ignore[arg-type]
        generate_s = time.perf_counter() - started
        config = load_config(
            None,
            environ={},
            overrides={
                "project": name,
                "home": str(home / "state"),
                "data.catalog.path": str(shop.catalog_path),
                "data.events.path": str(shop.events_path),
                "data.queries.path": str(shop.queries_path),
            },
        )
    else:
        config = load_config(
            EXAMPLES / f"{name}.yaml", environ={}, overrides={"home": str(home / "state")}
        )
    started = time.perf_counter()
    outcome = run_pipeline(config, use_cache=False)
    total = time.perf_counter() - started
    metrics = json.loads((outcome.run_dir / "evaluate" / "metrics.json").read_text())
    stages = {
        stage: {
            "seconds": manifest.timings_s.get("total"),
            "peak_memory_mb": manifest.peak_memory_mb,
            "rows": manifest.row_counts,
        }
        for stage, manifest in outcome.manifests.items()
    }
    return {
        "dataset": name,
        "total_s": round(total, 2),
        "generate_s": None if generate_s is None else round(generate_s, 2),
        "stages": stages,
        "selected": metrics["selected"],
        "headline": metrics["headline"],
        "recommendation_test": metrics["recommendation"].get("test", {}),
        "search": metrics["search"],
    }


def markdown(result: dict[str, Any]) -> str:
    """One dataset's numbers as Markdown."""
    lines = [f"### {result['dataset']}", ""]
    if result.get("generate_s") is not None:
        lines.append(f"Data generation: {result['generate_s']} s")
    lines += [
        f"Pipeline total: {result['total_s']} s (no cache)",
        "",
        "| stage | s | peak RSS MB | rows |",
        "|---|---|---|---|",
    ]
    for stage, info in result["stages"].items():
        rows = ", ".join(f"{k} {v:,}" for k, v in list(info["rows"].items())[:4])
        lines.append(f"| {stage} | {info['seconds']} | {info['peak_memory_mb']} | {rows} |")
    lines += [
        "",
        "| model (test) | recall@10 | ndcg@10 | mrr@10 | hit@10 | precision@10 |",
        "|---|---|---|---|---|---|",
    ]
    for model, values in result["recommendation_test"].items():
        cells = " | ".join(
            f"{values.get(m + '@10', float('nan')):.4f}"
            for m in ("recall", "ndcg", "mrr", "hit", "precision")
        )
        lines.append(f"| {model} | {cells} |")
    for model, values in result["search"].items():
        lines.append(
            f"\nsearch {model}: {values['queries']} queries, rerank ndcg@10 "
            f"{values['rerank'].get('ndcg@10', float('nan')):.4f}, full ndcg@10 "
            f"{values['full'].get('ndcg@10', float('nan')):.4f}"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    """Run each dataset in a child process, print Markdown, save JSON."""
    if argv[:1] == ["--one"]:
        print(json.dumps(run_one(argv[1])))
        return
    available = [p.stem for p in sorted(EXAMPLES.glob("*.yaml"))] + ["shop-1m"]
    names = argv or available
    machine = (
        f"{platform.machine()}, {psutil.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}"
    )
    print(f"machine: {machine}; date: {time.strftime('%Y-%m-%d')}\n")
    results = []
    for name in names:
        child = subprocess.run(
            [sys.executable, __file__, "--one", name], capture_output=True, text=True, check=False
        )
        if child.returncode != 0:
            print(f"### {name}\n\nfailed:\n```\n{child.stderr[-2000:]}\n```\n")
            continue
        result = json.loads(child.stdout.strip().splitlines()[-1])
        results.append(result)
        print(markdown(result))
    out = ROOT / "benchmarks" / "results" / "pipeline.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
