"""The served session path of a pipeline-built bundle against the protocol's baselines.

What a shop gets (issue 15's target: "the served session path beats 'show the
session's items again, then items that followed them' on HR@20 and MRR@20"):

1. the whole pipeline with `split.method: session` (30-minute inactivity cut, or the
   data's own `session_id`; the last 10% of sessions with >= 2 events by start time
   are test, the 10% before them valid), up to `package`: ingest, validate, AutoML of
   the user-level models, the session model chosen on the valid sessions (SKNN /
   V-SKNN / STAN grid of `shelfwise.evaluate.sessions.session_models`), the bundle;
2. that bundle loaded by the runtime engine (`load_engine`) and served by the app
   (`create_app`, in-process `TestClient`, the server's default settings with state in
   a temporary folder), asked `POST /v1/recommend` with each test session's earlier
   items as an inline `history` and `k` 20 (`include_out_of_stock`: the protocol asks
   for the next click whatever today's stock);
3. the baselines scored on the same test cases (the pipeline's own split), fitted on
   the train + valid sessions.

Called by `benchmarks/sessions.py --pipeline`; numbers in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from shelfwise._internal.sequences import Sequences
from shelfwise.config import ShelfwiseConfig, load_config
from shelfwise.evaluate.sessions import (
    BASELINES,
    SessionBaselines,
    SessionCases,
    evaluate_sessions,
    session_cases,
    session_metrics,
)
from shelfwise.features.sessions import read_session_files
from shelfwise.pipeline import run_pipeline
from shelfwise.runtime import Engine, load_engine
from shelfwise.serve import ServeSettings, create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's notice about httpx
    from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[1]
TAOBAO = ROOT.parent / "shared" / "data" / "taobao-userbehavior" / "UserBehavior.csv.gz"
TAOBAO_CONFIG = ROOT / "examples" / "taobao-userbehavior.yaml"
K = 20
LABELS = {
    "popularity": "popularity",
    "followers": "followers of the last item",
    "session_items": "session's items, then their followers (the trivial rule)",
}


def taobao_events(folder: Path, users: int) -> Path:
    """Taobao's header-less CSV, cut to its first `users` users (0: all) when asked."""
    if users <= 0:
        return TAOBAO
    names = ["user", "item", "category", "behavior", "timestamp"]
    frame = pl.read_csv(TAOBAO, has_header=False, new_columns=names, infer_schema=False)
    first = frame["user"].unique(maintain_order=True).head(users).to_list()
    out = folder / "events.csv"
    frame.filter(pl.col("user").is_in(first)).write_csv(out, include_header=False)
    return out


def pipeline_config(name: str, home: Path, data: dict[str, str]) -> ShelfwiseConfig:
    """The shop's config with the session protocol; everything else the defaults,
    except dense text search (what this measures never reads it)."""
    overrides: dict[str, Any] = {
        "home": str(home),
        "project": f"sessions-{name}",
        **data,
        "split.method": "session",
        "split.session_gap_minutes": 30.0,
        "split.test_fraction": 0.1,
        "split.valid_fraction": 0.1,
        "split.session_targets": "last",
        "evaluate.k_values": [10, K],
        "models.dense.enabled": False,
    }
    source = TAOBAO_CONFIG if name.startswith("taobao") else None
    return load_config(source, environ={}, overrides=overrides)


def served_ranks(engine: Engine, cases: SessionCases, raw: list[str], folder: Path) -> Any:
    """(n_cases, K) item indices the app lists for each case, and p50/p95 ms per request."""
    settings = ServeSettings(
        bundle_path=None,
        max_k=100,
        default_k=K,
        event_log_dir=folder / "events",
        catalog_log_dir=folder / "catalog",
    )
    index = {item: i for i, item in enumerate(raw)}
    ranked = np.full((cases.n_cases, K), -1, dtype=np.int64)
    times: list[float] = []
    personalised = 0
    with TestClient(create_app(settings, engine=engine)) as client:
        for case in range(cases.n_cases):
            history = [raw[int(i)] for i in cases.prefixes.row(case)][-200:]
            body = {"history": history, "k": K, "filters": {"include_out_of_stock": True}}
            started = time.perf_counter()
            answer = client.post("/v1/recommend", json=body)
            times.append((time.perf_counter() - started) * 1000.0)
            answer.raise_for_status()
            found = answer.json()
            personalised += found["personalisation"] == "session"
            listed = [index[item["item_id"]] for item in found["items"]]
            ranked[case, : len(listed)] = listed
    times.sort()
    timing = {
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[int(0.95 * len(times))], 2),
        "personalised": personalised,
    }
    return ranked, timing


def measure(name: str, data: dict[str, str]) -> dict[str, Any]:
    """One shop: the pipeline, the served path and the baselines on the same cases."""
    home = Path(tempfile.mkdtemp(prefix=f"shelfwise-sessions-{name}-"))
    config = pipeline_config(name, home, data)
    started = time.perf_counter()
    run_dir = run_pipeline(config, use_cache=False, until="package").run_dir
    seconds = round(time.perf_counter() - started, 1)
    report = json.loads((run_dir / "evaluate" / "metrics.json").read_text())["sessions"]
    bundle = run_dir / "package" / "bundle"
    components = json.loads((bundle / "manifest.json").read_text())["components"]
    sessions = read_session_files(run_dir / "features")
    if sessions is None:
        raise SystemExit(f"{name}: the run wrote no sessions (split.method is not session?)")
    raw = pl.read_parquet(run_dir / "features" / "items.parquet")["raw_item_id"].to_list()
    n_items = len(raw)
    train, valid = sessions["train"], sessions["valid"]
    both = Sequences.from_rows(
        [train.row(i) for i in range(train.n_users)] + [valid.row(i) for i in range(valid.n_users)]
    )
    cases = session_cases(sessions["test"], targets="last")
    rows: dict[str, dict[str, float]] = {}
    baselines = SessionBaselines(both, n_items)
    for baseline in BASELINES:
        rows[LABELS[baseline]] = evaluate_sessions(baselines.scorer(baseline), cases, n_items, [K])
        _progress(name, LABELS[baseline], rows)
    chosen = report.get("chosen")
    offline = report["results"].get(f"session:{chosen}")
    if offline is not None:
        rows[f"{chosen}, evaluate stage (offline)"] = offline
    engine = load_engine(bundle)
    ranked, timing = served_ranks(engine, cases, raw, home)
    rows["served: POST /v1/recommend, inline history"] = session_metrics(ranked, cases, [K])
    _progress(name, "served: POST /v1/recommend, inline history", rows)
    trivial = rows[LABELS["session_items"]]
    served = rows["served: POST /v1/recommend, inline history"]
    return {
        "data": name,
        "pipeline_seconds": seconds,
        "items": n_items,
        "sessions": {split: rows_.n_users for split, rows_ in sessions.items()},
        "test_cases": cases.n_cases,
        "repeat_targets": int(cases.repeats.sum()),
        "components": components,
        "chosen": chosen,
        "valid_mrr": report.get("valid"),
        "serving": timing,
        "gain_over_trivial_rule": {
            metric: round(served[f"{metric}@{K}"] / trivial[f"{metric}@{K}"] - 1.0, 4)
            for metric in ("hr", "mrr")
            if trivial[f"{metric}@{K}"] > 0
        },
        "rows": {
            row: {m: round(v, 4) for m, v in found.items() if m.endswith(f"@{K}") or "repeat" in m}
            for row, found in rows.items()
        },
    }


def _progress(data: str, row: str, rows: dict[str, dict[str, float]]) -> None:
    found = rows[row]
    print(
        f"{data} | {row}: HR@{K} {found[f'hr@{K}']:.4f} MRR@{K} {found[f'mrr@{K}']:.4f} "
        f"(cases {found['cases']:.0f}, repeat targets {found['repeat_targets']:.0f})",
        file=sys.stderr,
        flush=True,
    )


def main(data: str, taobao_users: int, generated_users: int) -> None:
    """Run the shops asked for and print JSON."""
    results = []
    scratch = Path(tempfile.mkdtemp(prefix="shelfwise-sessions-data-"))
    if data in ("taobao", "both"):
        events = taobao_events(scratch, taobao_users)
        results.append(measure("taobao-userbehavior", {"data.events.path": str(events)}))
    if data in ("generated", "both"):
        from shelfwise.sample import generate_shop

        shop = generate_shop(
            scratch / "shop",
            users=generated_users,
            items=2000,
            events=generated_users * 40,
            seed=7,
        )
        paths = {
            "data.catalog.path": str(shop.catalog_path),
            "data.events.path": str(shop.events_path),
            "data.queries.path": str(shop.queries_path),
        }
        results.append(measure("generated", paths))
    print(json.dumps(results, indent=1))
