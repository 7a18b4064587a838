"""Repeat purchases (issue 15): the AutoML pick with `learn` on a generated grocery shop.

Generates a grocery shop (`shelfwise generate --domain grocery`: staples bought again
on item-specific cycles, orders with a session_id), runs the pipeline with the
next-basket protocol (`split.method: last_basket`: each user's last order is test)
three times (policy `learn`, `exclude`, `allow`), and reports recall@10 / NDCG@10 of
the last basket for:

* (a) the user's own most-bought items (`buy_again` with decay 1 and no repurchase
  cycle, then nothing), from the `allow` run;
* (b) the best exclude-seen model: the `exclude` run's AutoML pick;
* the `learn` run's AutoML pick (the target: ≥ 5% above the better of (a) and (b));

with recall on repeat and on new items and the share of repeats in the lists. Then it
times the served recommend path on the `learn` bundle (precomputed lists, repeats
allowed) against the same bundle served with seen items excluded (its own
precomputed lists), through `live_recommend`, what POST /v1/recommend calls: p50 and
p95 over `--requests` known users, one thread, after a warm-up.

`--click-model` measures the click model's repurchase-cycle features instead: the
`learn` run up to the ranking stage (its click model re-ranks the AutoML pick's top
100, seen items included when `learn` resolves to `allow`, with the two features
`days_since_user_bought_item` and `repurchase_cycle_ratio`), then the ranking stage
again on the same upstream folders with `ranking.repurchase_features: false`. For
each: recall@10 / NDCG@10 of the last basket (repeats counted) over the test users'
candidates in the retriever's order and re-ranked by the click model, the held-out
decision (`rerank`: whether serving re-ranks), test AUC and the two features' share
of LightGBM's gain.

Usage:
    .venv/bin/python benchmarks/repeat.py [--users 1000] [--items 600] [--seed 7]
        [--requests 2000] [--json] [--click-model]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

METRICS = ("recall@10", "ndcg@10", "recall_repeat@10", "recall_explore@10", "repeat_share@10")


def _config(data: Path, home: Path, policy: str, extra: dict[str, Any]) -> Any:
    from shelfwise.config import load_config

    overrides: dict[str, Any] = {
        "home": str(home),
        "project": f"grocery-{policy}",
        "data.events.path": str(data / "events.parquet"),
        "data.catalog.path": str(data / "catalog.parquet"),
        "split.method": "last_basket",
        "models.repeat_policy": policy,
        "models.dense.enabled": False,  # text search is not what this measures
        # an order export holds purchases only: the fake-order rule "purchases without
        # prior views" would quarantine every order (see the report of issue 15's run)
        "data.fake_traffic.enabled": False,
        "evaluate.primary_metric": "recall@10",
        **extra,
    }
    config_file = home / "shelfwise.yaml"
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text("project: grocery\n", encoding="utf-8")
    return load_config(config_file, environ={}, overrides=overrides)


def run_policy(data: Path, policy: str, until: str, extra: dict[str, Any]) -> dict[str, Any]:
    """Run the pipeline with `policy`; the evaluate stage's metrics and the run folder."""
    from shelfwise.pipeline import run_pipeline

    home = Path(tempfile.mkdtemp(prefix=f"shelfwise-repeat-{policy}-"))
    config = _config(data, home, policy, extra)
    started = time.perf_counter()
    outcome = run_pipeline(config, use_cache=False, until=until)
    metrics = json.loads((outcome.run_dir / "evaluate" / "metrics.json").read_text())
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "metrics": metrics,
        "run_dir": outcome.run_dir,
    }


def _row(metrics: dict[str, Any], model: str) -> dict[str, float]:
    test = metrics["recommendation"]["test"].get(model, {})
    return {name: round(float(test.get(name, float("nan"))), 4) for name in METRICS}


def time_serving(bundles: dict[str, Path], requests: int, seed: int) -> dict[str, Any]:
    """p50/p95 ms of `live_recommend` for known users of each bundle, its own policy.

    Each bundle is loaded and precomputed as the server does (100,000 users), then
    asked for the same users one request at a time, after a warm-up of 200 requests.
    """
    from shelfwise.runtime import load_engine
    from shelfwise.runtime.realtime import live_recommend
    from shelfwise.stores import UserState

    result: dict[str, Any] = {}
    for label, bundle in bundles.items():
        engine = load_engine(bundle, verify=False)
        lists = engine.precompute(100_000)
        users = list(engine.user_index)
        rng = np.random.default_rng(seed)
        chosen = [users[i] for i in rng.integers(0, len(users), requests)]
        state = UserState()
        for user in chosen[:200]:
            live_recommend(engine, state, user, 10)
        times = []
        fallbacks = 0
        for user in chosen:
            started = time.perf_counter()
            answer = live_recommend(engine, state, user, 10)
            times.append((time.perf_counter() - started) * 1000.0)
            fallbacks += answer.fallback is not None
        times.sort()
        result[label] = {
            "policy": engine.repeat_policy,
            "recommender": engine.manifest.components.get("recommender"),
            "precomputed_users": 0 if lists is None else lists.n_precomputed,
            "p50_ms": round(statistics.median(times), 3),
            "p95_ms": round(times[int(0.95 * len(times))], 3),
            "fallbacks": fallbacks,
        }
    result["ratio_p50"] = round(result["learn"]["p50_ms"] / result["exclude"]["p50_ms"], 3)
    return result


def _click_model_row(report: dict[str, Any]) -> dict[str, Any]:
    """The ranking stage's report cut to what the comparison reads."""
    if report.get("status") != "trained":
        return {"status": report.get("status"), "reason": report.get("reason")}
    test = report["rerank_test"]
    chosen = report["models"][report["selected_model"]]
    importance = chosen.get("training", {}).get("feature_importance", {})
    return {
        "model": report["selected_model"],
        "features": len(report["features"]),
        "repeat_policy": report.get("repeat_policy"),
        "rerank": report["rerank"],
        "test_auc": round(float(report["test"]["auc"]), 4),
        "retriever_order": {m: round(test["retriever"][m], 4) for m in ("recall@10", "ndcg@10")},
        "reranked": {m: round(test["reranked"][m], 4) for m in ("recall@10", "ndcg@10")},
        "holdout_ndcg@10": {
            "retriever": round(report["rerank_holdout"]["retriever"]["ndcg@10"], 4),
            "reranked": round(report["rerank_holdout"]["reranked"]["ndcg@10"], 4),
        },
        "repurchase_gain_share": {
            name: importance[name]
            for name in ("days_since_user_bought_item", "repurchase_cycle_ratio")
            if name in importance
        },
        "test_users": report["data"]["test_users"],
    }


def click_model_ablation(data: Path) -> dict[str, Any]:
    """The click model with and without the repurchase features (module docstring)."""
    from shelfwise._internal.stage import StageContext
    from shelfwise.ranking.stage import run as run_ranking

    learn = run_policy(data, "learn", "ranking", {})
    run_dir = learn["run_dir"]
    with_features = json.loads((run_dir / "ranking" / "ranking.json").read_text())
    home = Path(tempfile.mkdtemp(prefix="shelfwise-repeat-ablation-"))
    config = _config(data, home, "learn", {"ranking.repurchase_features": False})
    out = home / "ranking"
    out.mkdir(parents=True)
    started = time.perf_counter()
    run_ranking(
        StageContext(
            config=config,
            run_dir=run_dir,
            inputs={name: run_dir / name for name in ("features", "retrieval", "evaluate")},
            out=out,
        )
    )
    without = json.loads((out / "ranking.json").read_text())
    selected = learn["metrics"]["selected"]
    return {
        "served_recommender": selected["recommender"],
        "repeat_policy": selected.get("repeat_policy"),
        "evaluate_test": _row(learn["metrics"], selected["recommender"]),
        "with_repurchase_features": _click_model_row(with_features),
        "without_repurchase_features": _click_model_row(without),
        "seconds": {
            "learn_run": learn["seconds"],
            "ranking_without": round(time.perf_counter() - started, 1),
        },
    }


def main() -> None:
    """Generate, run, print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--items", type=int, default=600)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--click-model",
        action="store_true",
        help="compare the click model with and without its repurchase features",
    )
    args = parser.parse_args()
    from shelfwise.sample.grocery import generate_grocery

    machine = (
        f"{platform.machine()}, {psutil.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB"
    )
    print(f"machine: {machine}; date: {time.strftime('%Y-%m-%d')}")
    data = Path(tempfile.mkdtemp(prefix="shelfwise-grocery-"))
    shop = generate_grocery(data, users=args.users, items=args.items, seed=args.seed)
    print(f"grocery shop: {shop.n_users} users, {shop.n_items} items, {shop.n_events} purchases")
    if args.click_model:
        ablation = click_model_ablation(data)
        print(json.dumps(ablation, indent=2))
        if args.json:
            print(json.dumps(ablation))
        return
    # (a): buy_again as plain counts, no repurchase cycle: "the user's most-bought items"
    extra = {"models.buy_again.params.decay": 1.0, "models.buy_again.params.cycle_weight": 0.0}
    allow = run_policy(data, "allow", "evaluate", extra)
    exclude = run_policy(data, "exclude", "package", {})
    learn = run_policy(data, "learn", "package", {})
    own = _row(allow["metrics"], "buy_again")
    best_exclude_name = exclude["metrics"]["selected"]["recommender"]
    best_exclude = _row(exclude["metrics"], best_exclude_name)
    pick_name = learn["metrics"]["selected"]["recommender"]
    pick = _row(learn["metrics"], pick_name)
    bar = max(own["recall@10"], best_exclude["recall@10"])
    result: dict[str, Any] = {
        "shop": {"users": shop.n_users, "items": shop.n_items, "purchases": shop.n_events},
        "own_most_bought": own,
        "best_exclude_seen": {"model": best_exclude_name, **best_exclude},
        "learn_pick": {
            "model": pick_name,
            "policy": learn["metrics"]["selected"].get("repeat_policy"),
            "reason": learn["metrics"]["repeat"].get("policy", {}).get("reason"),
            **pick,
        },
        "gain_over_better_baseline": round(pick["recall@10"] / bar - 1.0, 4) if bar else None,
        "seconds": {
            "allow": allow["seconds"],
            "exclude": exclude["seconds"],
            "learn": learn["seconds"],
        },
    }
    bundles = {
        name: run["run_dir"] / "package" / "bundle"
        for name, run in (("learn", learn), ("exclude", exclude))
    }
    result["serving"] = time_serving(bundles, args.requests, args.seed)
    print(json.dumps(result, indent=2))
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
