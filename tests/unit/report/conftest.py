"""A fake run folder with every input the report reads, in the shapes the stages write.

The gate and compression files follow the schemas agreed for issue 5 (their stages are
written in parallel). Names are hostile on purpose: a `<script>` model and query, and
a mathtext-breaking `$` in a model name.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from shelfwise.config import ShelfwiseConfig
from shelfwise.plan import Choice, DataShape, Resources, make_plan

HOSTILE_MODEL = "<script>alert('model')</script>"
HOSTILE_QUERY = "<script>alert('query')</script>"
MATHTEXT_MODEL = r"x$\frac{$y"
K_VALUES = (5, 10, 20)


def _write_plan(run: Path) -> None:
    """A plan for a 10M-event shop that left user_knn out (as `shelfwise plan` writes it)."""
    shape = DataShape(
        n_users=747_768,
        n_items=200_000,
        n_events=10_000_000,
        train_events=8_000_000,
        train_nnz=6_500_000,
        train_users=700_000,
        pair_count=120_000_000,
        max_sequence=300,
        mean_sequence=12.0,
        users_with_two=600_000,
        valid_users=90_000,
        test_users=90_000,
        text_items=200_000,
        distinct_texts=200_000,
        text_bytes=38_000_000,
        title_bytes=6_000_000,
        labelled_queries=300,
        search_events=1_800_000,
    )
    plan = make_plan(ShelfwiseConfig(), shape, Resources(24 * 2**30, 2))
    stages = [Choice("features", "stage", True, "done", seconds=60.0, measured=True)]
    replace(plan, stages=stages).save(run / "plan")


def _write(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value), encoding="utf-8")


def _manifest(stage: str, seconds: float, summary: str, **rows: int) -> dict[str, Any]:
    return {
        "stage": stage,
        "code_version": "0.1.0+test",
        "timings_s": {"total": seconds},
        "peak_memory_mb": 120.5,
        "reused_from": None,
        "row_counts": rows,
        "extra": {"summary": summary},
    }


def _metrics(scale: float) -> dict[str, float]:
    values: dict[str, float] = {}
    for k in K_VALUES:
        values[f"ndcg@{k}"] = round(scale * (0.5 + k / 100), 4)
        values[f"recall@{k}"] = round(scale * (0.3 + k / 50), 4)
        values[f"hit@{k}"] = round(min(1.0, scale * (0.6 + k / 40)), 4)
    return values


def _curve(points: int, power: float) -> dict[str, dict[str, list[float]]]:
    grid = [i / (points - 1) for i in range(points)]
    return {
        "roc": {"fpr": grid, "tpr": [x**power for x in grid]},
        "pr": {"recall": grid[::-1], "precision": [0.05 + 0.9 * (1 - x) ** 2 for x in grid[::-1]]},
    }


def _search_files(run: Path) -> None:
    variants = ("bm25", "dense", "hybrid", "hybrid+lambdamart")
    summary = {
        name: {
            "queries": 6,
            "rerank": {"ndcg@10": 0.8 + i / 50, "mrr": 0.9, "recall@10": 0.6},
            "full": {"ndcg@10": 0.7 + i / 50, "mrr": 0.8, "recall@10": 0.5},
        }
        for i, name in enumerate(variants)
    }
    _write(
        run / "search" / "search.json",
        {
            "status": "evaluated",
            "labels": "labelled_queries",
            "served": "hybrid+lambdamart",
            "select_metric": "rerank/ndcg@10",
            "selection_reason": "hybrid+lambdamart beats every unlearned variant",
            "latency_p50_ms": {"bm25": 1.5, "hybrid+lambdamart": 23.25},
            "variants": summary,
            "per_query": "per_query.parquet",
        },
    )
    _write(run / "search" / "manifest.json", _manifest("search", 1.5, "served hybrid+lambdamart"))
    queries = ["laptop", "笔记本电脑", "nike 运动鞋", "red running shoes", "dress", HOSTILE_QUERY]
    rows: dict[str, list[Any]] = {
        "query": [],
        "user_index": [],
        "variant": [],
        "mode": [],
        "ndcg@10": [],
        "recall@10": [],
        "mrr": [],
    }
    for v, variant in enumerate(variants):
        for q, query in enumerate(queries):
            for mode in ("rerank", "full"):
                rows["query"].append(query)
                rows["user_index"].append(None)
                rows["variant"].append(variant)
                rows["mode"].append(mode)
                rows["ndcg@10"].append(0.5 + 0.05 * v + 0.04 * q)
                rows["recall@10"].append(None if q == 0 else 0.5)
                rows["mrr"].append(1.0)
    schema = {"user_index": pl.Int64, "recall@10": pl.Float64}
    pl.DataFrame(rows, schema_overrides=schema).write_parquet(run / "search" / "per_query.parquet")
    events = ["dress"] * 10 + ["laptop"] * 6 + ["笔记本电脑"] * 3 + [HOSTILE_QUERY]
    (run / "features").mkdir(parents=True, exist_ok=True)
    pl.DataFrame({"query": events}).write_parquet(run / "features" / "search_events.parquet")


def _gate(decision: str = "refused") -> dict[str, Any]:
    return {
        "decision": decision,
        "challenger": {"version": "3", "run_id": "20260101-000000-bbbbbb"},
        "champion": {"version": "2", "run_id": "20251231-000000-aaaaaa"},
        "rules": [
            {
                "metric": "ndcg@10",
                "rule": "min_delta",
                "threshold": -0.005,
                "challenger": 0.21,
                "champion": 0.23,
                "delta": -0.02,
                "passed": False,
                "message": "ndcg@10 fell by 0.0200 (0.2100 < 0.2300 - 0.005)",
            },
            {
                "metric": "p99_latency_ms",
                "rule": "max",
                "threshold": 30.0,
                "challenger": 12.5,
                "champion": 14.0,
                "delta": -1.5,
                "passed": True,
                "message": "p99 12.5 ms <= 30 ms",
            },
        ],
        "metrics": {
            "challenger": {
                "ndcg@10": 0.21,
                "recall@20": 0.4,
                "p99_latency_ms": 12.5,
                "bundle_mb": 1.8,
            },
            "champion": {
                "ndcg@10": 0.23,
                "recall@20": 0.41,
                "p99_latency_ms": 14.0,
                "bundle_mb": 2.1,
            },
        },
        "latency_ms": {
            "challenger": [1.0 + (i % 17) * 0.7 for i in range(200)],
            "champion": [1.5 + (i % 13) * 0.9 for i in range(200)],
        },
        "k_values": list(K_VALUES),
        "curves": {
            "challenger": {
                "ndcg": {"5": 0.18, "10": 0.21, "20": 0.25},
                "recall": {"5": 0.2, "10": 0.3, "20": 0.4},
            },
            "champion": {
                "ndcg": {"5": 0.19, "10": 0.23, "20": 0.26},
                "recall": {"5": 0.21, "10": 0.31, "20": 0.41},
            },
        },
    }


def _compression() -> dict[str, Any]:
    return {
        "primary_metric": "ndcg@10",
        "budget_relative": 0.01,
        "components": {
            "als": {
                "baseline": {"size_bytes": 4_000_000, "metric": 0.22, "latency_ms": 2.0},
                "chosen": "int8",
                "variants": [
                    {
                        "name": "int8",
                        "kind": "quantization",
                        "size_bytes": 1_000_000,
                        "compression_ratio": 4.0,
                        "metric": 0.219,
                        "relative_loss": 0.0045,
                        "latency_ms": 1.8,
                        "within_budget": True,
                        "notes": "per-row scales",
                    },
                    {
                        "name": "pq16",
                        "kind": "faiss-pq",
                        "size_bytes": 250_000,
                        "compression_ratio": 16.0,
                        "metric": 0.19,
                        "relative_loss": 0.136,
                        "latency_ms": 1.1,
                        "within_budget": False,
                        "notes": "",
                    },
                ],
            },
            HOSTILE_MODEL: {
                "baseline": {"size_bytes": 50_000, "metric": 0.9, "latency_ms": None},
                "chosen": "baseline",
                "variants": [],
            },
        },
    }


def build_fake_run(root: Path) -> Path:
    """Write a complete fake run folder under `root` and return it."""
    run = root / "runs" / "20260101-000000-bbbbbb"
    _write(
        run / "run.json",
        {
            "run_id": run.name,
            "status": "complete",
            "started_at": 1_767_225_600.0,
            "updated_at": 1_767_225_660.0,
            "bundle_version": 3,
            "config_hash": "c" * 64,
        },
    )
    _write(run / "ingest" / "manifest.json", _manifest("ingest", 0.2, "read files"))
    _write(
        run / "ingest" / "ingest.json",
        {
            "sources": {
                "catalog": {"rows": 150, "parse_rejected": 0, "format": "parquet"},
                "events": {"rows": 8010, "parse_rejected": 3, "format": "csv"},
            },
            "warnings": [],
        },
    )
    _write(run / "validate" / "manifest.json", _manifest("validate", 0.1, "validated"))
    _write(
        run / "validate" / "report.json",
        {
            "max_rejected_share": 0.05,
            "catalog_derived": False,
            "sources": {
                "catalog": {
                    "rows_in": 150,
                    "accepted": 150,
                    "quarantined": 0,
                    "merged": 0,
                    "rejected_share": 0.0,
                    "by_reason": {},
                },
                "events": {
                    "rows_in": 8007,
                    "accepted": 8000,
                    "quarantined": 7,
                    "merged": 0,
                    "rejected_share": 0.00087,
                    "by_reason": {"unknown-item": 5, "<b>bad-timestamp</b>": 2},
                },
            },
            "warnings": ["3 events in the future"],
        },
    )
    _write(
        run / "features" / "manifest.json",
        {
            **_manifest("features", 0.05, "278 users × 150 items", users=278, items=150),
            "extra": {
                "split": {"method": "time", "test_cutoff": 1_734_166_499, "counts": {"train": 6400}}
            },
        },
    )
    _write_plan(run)
    trials = [
        {
            "family": family,
            "number": number,
            "params": {"l2": 10.0 * (i + 1)},
            "seconds": 0.01,
            "state": "COMPLETE",
            "value": 0.1 + 0.01 * i,
        }
        for family in ("ease", "als")
        for i, number in enumerate(("baseline", 0, 1))
    ]
    _write(run / "tune" / "trials.json", trials)
    _write(
        run / "tune" / "best.json",
        {
            f: {
                "baseline_value": 0.1,
                "value": 0.12,
                "params": {"l2": 30.0},
                "trials": 3,
                "seconds": 0.03,
            }
            for f in ("ease", "als")
        },
    )
    _write(run / "tune" / "manifest.json", _manifest("tune", 0.4, "tuned"))
    models = {"als": 0.4, "blend": 0.42, HOSTILE_MODEL: 0.3, MATHTEXT_MODEL: 0.2}
    _write(
        run / "evaluate" / "metrics.json",
        {
            "recommendation": {
                split: {name: _metrics(scale) for name, scale in models.items()}
                for split in ("valid", "test")
            }
            | {"users": {"valid": 103, "test": 107}},
            "selected": {
                "primary_metric": "ndcg@10",
                "recommender": "blend",
                "split": "valid",
                "value": 0.2,
            },
            "blend": {
                "candidates": ["als", HOSTILE_MODEL],
                "kept": True,
                "valid_value": 0.2,
                "best_single_valid_value": 0.19,
            },
        },
    )
    _write(run / "evaluate" / "manifest.json", _manifest("evaluate", 2.0, "evaluated"))
    classifier = {
        "auc": 0.67,
        "log_loss": 0.11,
        "threshold": 0.05,
        "precision": 0.08,
        "recall": 0.11,
        "f1": 0.09,
        "rows": 1000,
        "positives": 25,
        "positive_rate": 0.025,
    }
    _write(
        run / "ranking" / "ranking.json",
        {
            "status": "trained",
            "selected_model": "lightgbm",
            "retriever": "blend",
            "rerank": False,
            "retriever_test_auc": 0.6,
            "models": {
                "lightgbm": {"test": classifier, "holdout": classifier},
                "mlp": {"test": classifier | {"auc": 0.63}},
            },
            "rerank_test": {"retriever": {"ndcg@10": 0.22}, "reranked": {"ndcg@10": 0.19}},
        },
    )
    _write(
        run / "ranking" / "curves.json",
        {
            "selected": "lightgbm",
            "test": {
                "lightgbm": _curve(21, 0.5),
                "mlp": _curve(21, 0.7),
                "retriever": _curve(11, 0.8),
            },
        },
    )
    _write(run / "ranking" / "manifest.json", _manifest("ranking", 3.0, "click model"))
    _search_files(run)
    _write(run / "gate" / "gate.json", _gate())
    _write(run / "compress" / "compression.json", _compression())
    bundle = run / "package" / "bundle"
    _write(
        bundle / "manifest.json",
        {"components": {"recommender": "blend", "search": "hybrid", "popular": "popularity"}},
    )
    for name, size in (
        ("blend/components/als/item_factors.npy", 30_000),
        ("hybrid/bm25/index.npy", 80_000),
        ("popularity/item_scores.npy", 800),
    ):
        path = bundle / "models" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0" * size)
    (bundle / "items.parquet").write_bytes(b"\0" * 5_000)
    _write(run / "package" / "manifest.json", _manifest("package", 0.05, "bundle"))
    return run


@pytest.fixture
def fake_run(tmp_path: Path) -> Path:
    """A complete fake run folder (fresh per test: tests may delete parts of it)."""
    return build_fake_run(tmp_path)


@pytest.fixture(scope="module")
def fake_report(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The report of a complete fake run, written once per module (read-only)."""
    from shelfwise.report import write_report

    run = build_fake_run(tmp_path_factory.mktemp("report"))
    return write_report(run).read_text(encoding="utf-8")
