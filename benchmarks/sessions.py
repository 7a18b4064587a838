"""Session protocol benchmark: the served session path against the protocol's baselines.

Data: `../shared/data/taobao-userbehavior` (users' events cut into sessions at 30
minutes of inactivity) and a generated shop (its own `session_id` column). Sessions
with >= 2 events; the last 10% by start time are test, the 10% before them valid
(model choice), the rest train. Targets: each test session's last item (and, second
protocol, every next item). HR@20 and MRR@20; repeat targets are counted, not dropped.

Rows:
- baselines: popularity, followers of the last item, the session's items again
  (most recent first) then the items that followed them;
- each session model offline (SKNN, V-SKNN, STAN grid, SASRec over sessions), fitted on
  train, scored on valid, the best by MRR@20 refitted on train + valid;
- served: that model in a bundle, asked through `POST /v1/recommend` with an inline
  `history` and the server's default settings (`ServeSettings()`, state folders in a
  temporary directory), on the last-item cases.

`--pipeline` measures what a shop gets instead (`benchmarks/_sessions_served.py`): the
whole pipeline with `split.method: session` (ingest, validate, AutoML, the session
model chosen on the valid sessions, package), the packaged bundle loaded by the runtime
engine and asked through the app with each test session's earlier items as an inline
`history`, against the trivial rule on the same test cases.

Run: .venv/bin/python benchmarks/sessions.py [--data taobao|generated|both] [--quick]
     .venv/bin/python benchmarks/sessions.py --pipeline [--taobao-users N]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

from shelfwise.contracts import ITEM_INDEX, ROW_NUMBER, SESSION_ID, TIMESTAMP, USER_INDEX
from shelfwise.evaluate.sessions import (
    BASELINES,
    SessionBaselines,
    SessionCases,
    as_histories,
    evaluate_sessions,
    select_model,
    session_cases,
    session_metrics,
)
from shelfwise.features.sessions import assign_sessions, session_sequences, session_split
from shelfwise.package.bundle import BundleSpec, write_bundle
from shelfwise.retrieval import PopularityRecommender, Recommender, UserHistories
from shelfwise.retrieval.session_knn import SKNNRecommender, STANRecommender, VSKNNRecommender
from shelfwise.runtime import load_engine
from shelfwise.serve import ServeSettings, create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's notice about httpx
    from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[1]
TAOBAO = ROOT.parent / "shared" / "data" / "taobao-userbehavior" / "UserBehavior.csv.gz"
K = 20


def taobao_events() -> tuple[pl.DataFrame, list[str]]:
    """Taobao's events as USER_INDEX, ITEM_INDEX, TIMESTAMP, ROW_NUMBER; raw item ids."""
    raw = pl.read_csv(
        TAOBAO,
        has_header=False,
        new_columns=["user", "item", "category", "behavior", "ts"],
        schema_overrides={"user": pl.String, "item": pl.String},
    )
    return _indexed(raw.rename({"user": "raw_user", "item": "raw_item", "ts": TIMESTAMP}))


def generated_events(users: int) -> tuple[pl.DataFrame, list[str]]:
    """A generated shop's events (the generator writes a session_id per visit)."""
    from shelfwise.sample import generate_shop

    with tempfile.TemporaryDirectory() as tmp:
        shop = generate_shop(Path(tmp), users=users, items=2000, events=users * 40, seed=7)
        events = pl.read_parquet(shop.events_path)
    frame = events.rename({"raw_user_id": "raw_user", "raw_item_id": "raw_item"})
    return _indexed(frame.with_columns(pl.col(TIMESTAMP).cast(pl.Int64)))


def _indexed(frame: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    items = sorted(frame["raw_item"].unique().to_list())
    item_index = pl.DataFrame({"raw_item": items, ITEM_INDEX: np.arange(len(items))})
    users = pl.DataFrame({"raw_user": sorted(frame["raw_user"].unique().to_list())})
    users = users.with_row_index(USER_INDEX).with_columns(pl.col(USER_INDEX).cast(pl.Int64))
    keep = [c for c in (SESSION_ID,) if c in frame.columns]
    indexed = (
        frame.with_row_index(ROW_NUMBER)
        .join(item_index, on="raw_item", how="left")
        .join(users, on="raw_user", how="left")
        .select(USER_INDEX, ITEM_INDEX, TIMESTAMP, ROW_NUMBER, *keep)
    )
    return indexed, items


def candidates(quick: bool) -> dict[str, Callable[[], Recommender]]:
    """The session models and their small grids."""
    grid: dict[str, Callable[[], Recommender]] = {
        "sknn r=1": lambda: SKNNRecommender(reminders=1.0),
        "sknn r=2": lambda: SKNNRecommender(reminders=2.0),
    }
    # reminders 1 is the default; 2 ranks the session's items above more neighbours;
    # followers (f) add the items that followed the session's last item
    for followers in (0.0, 1.0):
        grid[f"vsknn r=2 f={followers:g}"] = lambda f=followers: VSKNNRecommender(
            reminders=2.0, followers=f
        )
        for l1, reminders in ((1.0, 1.0), (4.0, 2.0)):
            grid[f"stan l1={l1:g} r={reminders:g} f={followers:g}"] = (
                lambda l1=l1, r=reminders, f=followers: STANRecommender(
                    lambda_position=l1, lambda_neighbour=l1, reminders=r, followers=f
                )
            )
    if not quick:
        from shelfwise.retrieval.sasrec import SASRecRecommender

        grid["sasrec"] = lambda: SASRecRecommender(
            max_len=50, hidden=64, epochs=30, patience=3, num_threads=2
        )
    return grid


def rows_of(sequences: object, n_items: int) -> UserHistories:
    """Training sessions as `UserHistories` (rows in start order)."""
    return as_histories(sequences, n_items)  # type: ignore[arg-type]


def run(name: str, events: pl.DataFrame, raw_items: list[str], quick: bool) -> dict[str, object]:
    """Every row of the benchmark on one data set."""
    n_items = len(raw_items)
    sessions = session_split(assign_sessions(events), test_fraction=0.1, valid_fraction=0.1)
    train = session_sequences(sessions, splits=("train",)).sequences
    train_valid = session_sequences(sessions, splits=("train", "valid")).sequences
    valid = session_cases(session_sequences(sessions, splits=("valid",)).sequences)
    tests = {
        mode: session_cases(session_sequences(sessions, splits=("test",)).sequences, targets=mode)
        for mode in ("last", "every")
    }
    result: dict[str, object] = {
        "data": name,
        "events": events.height,
        "items": n_items,
        "train_sessions": train.n_users,
        "test_cases": {mode: cases.n_cases for mode, cases in tests.items()},
    }
    rows: dict[str, dict[str, float]] = {}
    baselines = SessionBaselines(train_valid, n_items)
    for baseline in BASELINES:
        for mode, cases in tests.items():
            rows[f"{baseline} ({mode})"] = evaluate_sessions(
                baselines.scorer(baseline), cases, n_items, [K]
            )
            _progress(name, f"{baseline} ({mode})", rows)
    started = time.perf_counter()
    best, chosen = select_model(candidates(quick), as_histories(train, n_items), valid, k=K)
    result["selection_seconds"] = round(time.perf_counter() - started, 1)
    result["valid"] = {model: {m: round(v, 4) for m, v in s.items()} for model, s in chosen.items()}
    result["chosen"] = best
    model = candidates(quick)[best]()
    model.fit(as_histories(train_valid, n_items))
    for mode, cases in tests.items():
        rows[f"{best} offline ({mode})"] = evaluate_sessions(model, cases, n_items, [K])
        _progress(name, f"{best} offline ({mode})", rows)
    # the server answers the primary protocol (last item); "every" is the same model
    rows["served (last)"] = served(model, best, train_valid, raw_items, tests["last"])
    _progress(name, "served (last)", rows)
    result["rows"] = {
        row: {m: round(v, 4) for m, v in metrics.items() if m.endswith(f"@{K}") or "repeat" in m}
        for row, metrics in rows.items()
    }
    return result


def _progress(data: str, row: str, rows: dict[str, dict[str, float]]) -> None:
    """One finished row on stderr, so a long run shows its numbers as they come."""
    found = rows[row]
    print(
        f"{data} | {row}: HR@{K} {found[f'hr@{K}']:.4f} MRR@{K} {found[f'mrr@{K}']:.4f} "
        f"(cases {found['cases']:.0f}, repeat targets {found['repeat_targets']:.0f})",
        file=sys.stderr,
        flush=True,
    )


def served(
    model: Recommender,
    family: str,
    train: object,
    raw_items: list[str],
    cases: SessionCases,
) -> dict[str, float]:
    """The cases asked of the server (`POST /v1/recommend`, inline history, defaults)."""
    n_items = len(raw_items)
    histories = as_histories(train, n_items)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model.save(folder / "model")
        popular = PopularityRecommender()
        popular.fit(histories.rows)
        popular.save(folder / "popularity")
        spec = BundleSpec(
            items=pl.DataFrame({"raw_item_id": raw_items}),
            users=pl.DataFrame({"raw_user_id": [f"s{i}" for i in range(histories.n_users)]}),
            histories=sp.csr_matrix(histories.rows),
            sequences=histories.sequences,
            components={
                "recommender": (model.name, folder / "model"),
                "popular": ("popularity", folder / "popularity"),
            },
            metrics={model.name: {}},
            data_fingerprint="sessions-benchmark",
            lineage={"run_id": f"sessions-{family}"},
            project="sessions",
        )
        write_bundle(spec, folder / "bundle")
        engine = load_engine(folder / "bundle")
        # defaults, except where state goes: nothing of this machine's server state
        # (a live catalog log, an event log) may leak into the measurement
        settings = ServeSettings(
            bundle_path=None,
            max_k=100,
            default_k=K,
            event_log_dir=folder / "events",
            catalog_log_dir=folder / "catalog",
        )
        ranked = np.full((cases.n_cases, K), -1, dtype=np.int64)
        index = {raw: i for i, raw in enumerate(raw_items)}
        with TestClient(create_app(settings, engine=engine)) as client:
            for case in range(cases.n_cases):
                history = [raw_items[int(i)] for i in cases.prefixes.row(case)][-200:]
                answer = client.post("/v1/recommend", json={"history": history, "k": K})
                answer.raise_for_status()
                found = [index[item["item_id"]] for item in answer.json()["items"]]
                ranked[case, : len(found)] = found
    return session_metrics(ranked, cases, [K])


def main() -> None:
    """Run and print JSON (paste the table into benchmarks/RESULTS.md)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", choices=["taobao", "generated", "both"], default="both")
    parser.add_argument("--quick", action="store_true", help="skip SASRec")
    parser.add_argument("--generated-users", type=int, default=3000)
    parser.add_argument(
        "--pipeline",
        action="store_true",
        help="the served path of a pipeline-built bundle (see _sessions_served.py)",
    )
    parser.add_argument(
        "--taobao-users", type=int, default=0, help="--pipeline: Taobao's first N users (0: all)"
    )
    args = parser.parse_args()
    if args.pipeline:
        from _sessions_served import main as served_main

        served_main(args.data, args.taobao_users, args.generated_users)
        return
    results = []
    if args.data in ("taobao", "both"):
        events, items = taobao_events()
        results.append(run("taobao-userbehavior", events, items, args.quick))
    if args.data in ("generated", "both"):
        events, items = generated_events(args.generated_users)
        results.append(run("generated", events, items, args.quick))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
