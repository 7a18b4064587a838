"""Recommendation benchmark: every model plus the AutoML pick on real data.

Runs the whole pipeline (no stage cache) through an example config and reports, per
model, the test metrics, train time, tune time and peak RSS of its fit, then the
AutoML pick (the model `evaluate` selected on the validation split):

| dataset | config | protocol |
|---|---|---|
| ml-100k | examples/ml-100k-recbole.yaml | RecBole 1.2.1 default, its exact split file |
| amazon-beauty | examples/amazon-beauty.yaml | leave-last-out, full ranking |
| taobao | examples/taobao-userbehavior.yaml | time split |

Usage:
    .venv/bin/python benchmarks/recommend.py --dataset ml-100k [--json] [--set KEY=VALUE ...]
With --json the output ends with one JSON line:
    {"dataset": ..., "models": {name: {"test": {...}, "train_s": ..., "tune_s": ...,
     "peak_rss_mb": ...}}, "automl": {"model": name, "test": {...}, "train_s": ...,
     "tune_s": ..., "total_s": ...}}
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from shelfwise.config import parse_overrides

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = {
    "ml-100k": ROOT / "examples" / "ml-100k-recbole.yaml",
    "amazon-beauty": ROOT / "examples" / "amazon-beauty.yaml",
    "taobao": ROOT / "examples" / "taobao-userbehavior.yaml",
}
REFERENCE = ROOT.parent / "shared" / "data" / "peer_results.json"
METRICS = ("recall@10", "ndcg@10", "mrr@10", "hit@10", "precision@10", "map@10")


def run(dataset: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Run the pipeline for `dataset` and collect the numbers."""
    from shelfwise.config import load_config
    from shelfwise.pipeline import run_pipeline

    home = Path(tempfile.mkdtemp(prefix=f"shelfwise-recommend-{dataset}-"))
    config = load_config(CONFIGS[dataset], environ={}, overrides={"home": str(home), **overrides})
    started = time.perf_counter()
    outcome = run_pipeline(config, use_cache=False, until="evaluate")
    total = time.perf_counter() - started
    metrics = json.loads((outcome.run_dir / "evaluate" / "metrics.json").read_text())
    fitted = json.loads((outcome.run_dir / "retrieval" / "models.json").read_text())
    tuned = json.loads((outcome.run_dir / "tune" / "best.json").read_text())
    models: dict[str, Any] = {}
    for name, test in metrics["recommendation"]["test"].items():
        info = fitted.get(name, {})
        models[name] = {
            "test": test,
            "train_s": info.get("fit_s"),
            "tune_s": tuned.get(name, {}).get("seconds", 0.0),
            "peak_rss_mb": info.get("peak_rss_mb"),
            "params": info.get("params"),
        }
    pick = metrics["selected"]["recommender"]
    stage_s = {name: m.timings_s.get("total", 0.0) for name, m in outcome.manifests.items()}
    automl = {
        "model": pick,
        "test": metrics["recommendation"]["test"].get(pick, {}),
        "valid": metrics["recommendation"]["valid"].get(pick, {}),
        "train_s": round(stage_s.get("retrieval", 0.0) + stage_s.get("evaluate", 0.0), 2),
        "tune_s": round(stage_s.get("tune", 0.0), 2),
        "total_s": round(total, 2),
        "blend": {k: v for k, v in metrics["blend"].items() if k != "trials"},
        "peak_rss_mb": max((m.peak_memory_mb or 0.0) for m in outcome.manifests.values()),
    }
    return {"dataset": dataset, "stage_s": stage_s, "models": models, "automl": automl}


def markdown(result: dict[str, Any]) -> str:
    """The result as a Markdown table."""
    lines = [
        f"### {result['dataset']}",
        "",
        "| model | " + " | ".join(METRICS) + " | train s | tune s | peak RSS MB |",
        "|---|" + "---|" * (len(METRICS) + 3),
    ]
    pick = result["automl"]["model"]
    for name, info in result["models"].items():
        label = f"**{name}** (AutoML pick)" if name == pick else name
        cells = " | ".join(f"{info['test'].get(m, float('nan')):.4f}" for m in METRICS)
        lines.append(
            f"| {label} | {cells} | {info['train_s']} | {info['tune_s']} | {info['peak_rss_mb']} |"
        )
    automl = result["automl"]
    lines.append("")
    lines.append(
        f"AutoML pick: {pick}; whole run (ingest → evaluate, tuning included) "
        f"{automl['total_s']} s; tune {automl['tune_s']} s; stages {result['stage_s']}"
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    """Parse flags, run, print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", choices=sorted(CONFIGS), required=True)
    parser.add_argument("--json", action="store_true", help="End with one JSON line.")
    parser.add_argument("--set", action="append", default=[], help="Config override KEY=VALUE.")
    args = parser.parse_args()
    overrides = parse_overrides(args.set)
    machine = (
        f"{platform.machine()}, {psutil.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB"
    )
    print(f"machine: {machine}; date: {time.strftime('%Y-%m-%d')}; dataset: {args.dataset}")
    result = run(args.dataset, overrides)
    print(markdown(result))
    if args.json:
        compact = {
            "dataset": result["dataset"],
            "models": {
                name: {k: v for k, v in info.items() if k != "params"}
                for name, info in result["models"].items()
            },
            "automl": result["automl"],
        }
        print(json.dumps(compact))


if __name__ == "__main__":
    main()
