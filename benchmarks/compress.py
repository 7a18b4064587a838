"""Compression benchmark: every variant of the served models, size / latency / quality.

Runs the pipeline (no stage cache) through the `compress` stage and prints the table
of `compress/compression.json`:

| dataset | config |
|---|---|
| ml-100k | examples/ml-100k-recbole.yaml (RecBole's exact split file) |
| shop | the generated sample shop (2,000 users, 2,000 items, 150k events), defaults |

Components: the served recommender (with its embedding matrices and, for a blend,
each component's bytes reported separately), the click model (students distilled
from a LightGBM teacher; quality = re-rank NDCG@10 on the ranking stage's held-out
valid users, AUC must stay within the budget too) and the dense search vectors.

Quality is the primary metric (NDCG@10) on the validation split with the train-only
fits; latency is the median time to score one validation user; size is the bytes of
the saved model folder (for the dense index: the serialized FAISS index, quality =
recall@10 against exact search).

Usage:
    .venv/bin/python benchmarks/compress.py --dataset ml-100k [--json] [--set KEY=VALUE ...]
With --json the output ends with one JSON line:
    {"dataset": ..., "selected": ..., "total_s": ..., "compression": {compression.json}}
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from shelfwise.config import parse_overrides

ROOT = Path(__file__).resolve().parent.parent
EMBEDDING_CACHE = ROOT / ".shelfwise" / "cache" / "embeddings"  # shared with search.py


def run(dataset: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Run the pipeline through `compress` and return the compression report."""
    from shelfwise.config import load_config
    from shelfwise.pipeline import run_pipeline

    home = Path(tempfile.mkdtemp(prefix=f"shelfwise-compress-{dataset}-"))
    values: dict[str, Any] = {"home": str(home), "models.dense.cache_dir": str(EMBEDDING_CACHE)}
    path: Path | None
    if dataset == "ml-100k":
        path = ROOT / "examples" / "ml-100k-recbole.yaml"
    else:
        from shelfwise.sample import generate_shop

        shop = generate_shop(home / "data", users=2000, items=2000, events=150_000)
        path = None
        values.update(
            {
                "data.catalog.path": str(shop.catalog_path),
                "data.events.path": str(shop.events_path),
                "data.queries.path": str(shop.queries_path),
                "compress.inactive_days": 30,
            }
        )
    values.update(overrides)
    config = load_config(path, environ={}, overrides=values)
    started = time.perf_counter()
    outcome = run_pipeline(config, use_cache=False, until="compress")
    total = time.perf_counter() - started
    report = json.loads((outcome.run_dir / "compress" / "compression.json").read_text())
    metrics = json.loads((outcome.run_dir / "evaluate" / "metrics.json").read_text())
    stage_s = {name: m.timings_s.get("total", 0.0) for name, m in outcome.manifests.items()}
    return {
        "dataset": dataset,
        "selected": metrics["selected"].get("recommender"),
        "blend": metrics.get("blend", {}).get("weights") if metrics["blend"].get("kept") else None,
        "total_s": round(total, 2),
        "compress_s": stage_s.get("compress"),
        "compression": report,
    }


def _table(result: dict[str, Any]) -> list[str]:
    report = result["compression"]
    lines = []
    for name, component in report["components"].items():
        metric = component.get("metric_name", f"{report['primary_metric']} (valid)")
        base = component["baseline"]
        lines += [
            "",
            f"### {name} (chosen: {component['chosen']})",
            "",
            f"| variant | kind | size bytes | ratio | embeddings ratio | {metric} | rel. loss | "
            "latency ms | within budget | notes |",
            "|---|---|---|---|---|---|---|---|---|---|",
            f"| baseline | - | {base['size_bytes']:,} | 1.00 | 1.00 | {base['metric']:.4f} | 0 | "
            f"{base['latency_ms']:.3f} | yes | |",
        ]
        for v in component["variants"]:
            mark = "**" if v["name"] == component["chosen"] else ""
            details = v.get("details", {})
            embeddings = details.get("embedding_ratio")
            lines.append(
                f"| {mark}{v['name']}{mark} | {v['kind']} | {v['size_bytes']:,} | "
                f"{v['compression_ratio']:.2f} | "
                f"{'-' if embeddings is None else f'{embeddings:.2f}'} | {v['metric']:.4f} | "
                f"{v['relative_loss']:+.2%} | {v['latency_ms']:.3f} | "
                f"{'yes' if v['within_budget'] else 'no'} | {_notes(v)} |"
            )
        lines += _component_lines(component)
        extra = {k: base[k] for k in ("auc", "retriever_metric", "model_file_bytes") if k in base}
        if extra:
            lines += ["", f"baseline (the served model): {extra}"]
        if component.get("note"):
            lines += ["", f"note: {component['note']}"]
    return lines


def _notes(variant: dict[str, Any]) -> str:
    details = variant.get("details", {})
    extra = [
        f"{key} {details[key]}"
        for key in ("auc", "auc_relative_loss", "teacher_correlation", "model_file_ratio")
        if key in details
    ]
    return "; ".join([variant["notes"], *extra]) if extra else str(variant["notes"])


def _component_lines(component: dict[str, Any]) -> list[str]:
    """Per blend component bytes of each variant (ratio to the uncompressed fit)."""
    base = component["baseline"].get("component_bytes") or {}
    if not base:
        return []
    lines = [
        "",
        "| variant | " + " | ".join(base) + " | embeddings |",
        "|---" * (len(base) + 2) + "|",
    ]
    embeddings = component["baseline"].get("embedding_bytes", 0)
    lines.append(
        "| baseline | " + " | ".join(f"{size:,}" for size in base.values()) + f" | {embeddings:,} |"
    )
    for v in component["variants"]:
        details = v.get("details", {})
        sizes = details.get("component_bytes", {})
        ratios = details.get("component_ratio", {})
        cells = [
            f"{sizes[name]:,} ({ratios.get(name, 0):.2f}x)" if name in sizes else "-"
            for name in base
        ]
        emb = details.get("embedding_bytes", 0)
        emb_ratio = details.get("embedding_ratio")
        emb_cell = f"{emb:,} ({emb_ratio:.2f}x)" if emb_ratio else f"{emb:,}"
        lines.append(f"| {v['name']} | " + " | ".join(cells) + f" | {emb_cell} |")
    return lines


def main() -> None:
    """Parse arguments, run, print the variants table (and a JSON line)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=("ml-100k", "shop"), default="ml-100k")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    machine = f"{platform.machine()}, {os.cpu_count()} cores, 1-min load {load:.1f} at start"
    result = run(args.dataset, parse_overrides(args.set))
    report = result["compression"]
    print(
        f"\n{args.dataset}: served {result['selected']}; budget "
        f"{report['budget_relative']:.1%} relative loss of {report['primary_metric']} on "
        f"valid; pipeline {result['total_s']} s, compress stage {result['compress_s']} s "
        f"({machine})"
    )
    print("\n".join(_table(result)))
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
