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
fits; latency is the median time to score one validation user, each variant timed in
turn with the uncompressed model ("latency ratio": variant / uncompressed, which
`compress.max_latency_ratio` bounds); size is the bytes of
the saved model folder (for the dense index: the serialized FAISS index, quality =
recall@10 against exact search).

`--sasrec-onnx` instead times SASRec's ONNX graphs against torch at Amazon Beauty's
size (12,101 items, 256-d, 1 block; weights from one epoch on random sequences: only
latency is measured), each graph timed in turn with torch on the same 200 one-user
requests, and prints what the default latency budget decides.

Usage:
    .venv/bin/python benchmarks/compress.py --dataset ml-100k [--json] [--set KEY=VALUE ...]
    .venv/bin/python benchmarks/compress.py --sasrec-onnx [--json]
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
            "latency ms | latency ratio | within budget | notes |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
            f"| baseline | - | {base['size_bytes']:,} | 1.00 | 1.00 | {base['metric']:.4f} | 0 | "
            f"{base['latency_ms']:.3f} | 1.00 | yes | |",
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
                f"{_ratio(v.get('latency_ratio'))} | "
                f"{'yes' if v['within_budget'] else 'no'} | {_notes(v)} |"
            )
        if component.get("reason"):
            lines += ["", f"chosen {component['chosen']}: {component['reason']}"]
        lines += _component_lines(component)
        extra = {k: base[k] for k in ("auc", "retriever_metric", "model_file_bytes") if k in base}
        if extra:
            lines += ["", f"baseline (the served model): {extra}"]
        if component.get("note"):
            lines += ["", f"note: {component['note']}"]
    return lines


def _ratio(value: float | None) -> str:
    """A variant's latency over the uncompressed model's, timed in turn ("-": unknown)."""
    return "-" if value is None else f"{value:.2f}"


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


def sasrec_onnx_latency(n_items: int = 12_101, hidden: int = 256) -> dict[str, Any]:
    """Paired torch vs ONNX (float32, int8) latency of one SASRec, and the verdicts."""
    import numpy as np

    from shelfwise._internal.sequences import Sequences
    from shelfwise.compress.measure import paired_median_ms
    from shelfwise.compress.onnx_export import export_sasrec
    from shelfwise.compress.select import LatencyBudget
    from shelfwise.config import CompressConfig
    from shelfwise.retrieval.sasrec import SASRecRecommender

    rng = np.random.default_rng(0)
    rows = [rng.integers(0, n_items, size=int(rng.integers(3, 30))) for _ in range(500)]
    sequences = Sequences.from_rows(rows)
    model = SASRecRecommender(hidden=hidden, blocks=1, epochs=1, negatives=64, num_threads=1)
    model.fit_sequences(sequences, n_items)
    folder = Path(tempfile.mkdtemp(prefix="shelfwise-sasrec-onnx-")) / "sasrec"
    model.save(folder)
    requests = [sequences.take(np.array([user])) for user in range(200)]
    defaults = CompressConfig()
    budget = LatencyBudget(
        defaults.max_latency_ratio, defaults.max_latency_ms, defaults.latency_tolerance_ms
    )
    graphs: dict[str, Any] = {}
    for name, quantize in (("onnx_float32", False), ("onnx_int8", True)):
        graph = export_sasrec(model, folder, quantize=quantize)
        torch_ms, onnx_ms = paired_median_ms(
            lambda i: model.score_sequences(requests[i]),
            lambda i, g=graph: g.score_sequences(requests[i]),
            len(requests),
        )
        graphs[name] = {
            "torch_ms": torch_ms,
            "onnx_ms": onnx_ms,
            "ratio": round(onnx_ms / torch_ms, 2),
            "rejected": budget.why_not(onnx_ms, torch_ms),
        }
    return {"n_items": n_items, "hidden": hidden, "graphs": graphs}


def main() -> None:
    """Parse arguments, run, print the variants table (and a JSON line)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=("ml-100k", "shop"), default="ml-100k")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument(
        "--sasrec-onnx", action="store_true", help="time SASRec's ONNX graphs against torch"
    )
    args = parser.parse_args()
    load = os.getloadavg()[0]
    machine = f"{platform.machine()}, {os.cpu_count()} cores, 1-min load {load:.1f} at start"
    if args.sasrec_onnx:
        timings = sasrec_onnx_latency()
        print(f"\nSASRec {timings['n_items']} items x {timings['hidden']} ({machine})")
        print("\n| graph | torch ms | onnx ms | ratio | latency budget |\n|---|---|---|---|---|")
        for name, row in timings["graphs"].items():
            verdict = row["rejected"] or "within"
            print(
                f"| {name} | {row['torch_ms']:.3f} | {row['onnx_ms']:.3f} | "
                f"{row['ratio']:.2f} | {verdict} |"
            )
        if args.json:
            print(json.dumps(timings))
        return
    result = run(args.dataset, parse_overrides(args.set))
    report = result["compression"]
    print(
        f"\n{args.dataset}: served {result['selected']}; budget "
        f"{report['budget_relative']:.1%} relative loss of {report['primary_metric']} on "
        f"valid, latency {report.get('latency_budget')}; pipeline {result['total_s']} s, "
        f"compress stage {result['compress_s']} s ({machine})"
    )
    print("\n".join(_table(result)))
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
