"""Score a whole bundle, as served, on one run's frozen test split.

The promotion gate compares two bundles built from different data, code or config,
so it cannot reuse either run's stored numbers: both are re-scored here on the
challenger run's test split, through the serving engine (`Engine.recommend_from_history`
and `Engine.search`), in raw ids. Each test user is described by their events before
the test period (`evaluate.test_history`), so a bundle's own stored histories (which
may include the test period) never leak into its score. Items a bundle does not know
are simply absent from what it can recommend; users it does not know are scored from
their events all the same.

Latency is measured per request, one request at a time, on this process's threads,
after one untimed warm-up request: `p50_latency_ms` / `p99_latency_ms` for
recommendations, `search.p50_latency_ms` / `search.p99_latency_ms` for search.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from shelfwise._internal.artifacts import read_csr
from shelfwise.compute import Executor, LocalExecutor
from shelfwise.contracts import (
    ITEM_INDEX,
    QUERY,
    RAW_ITEM_ID,
    RAW_USER_ID,
    RELEVANCE,
    TIMESTAMP,
    USER_INDEX,
)
from shelfwise.evaluate.metrics import ranking_metrics
from shelfwise.evaluate.recommend import evaluation_users
from shelfwise.evaluate.search import QueryOutcome, summarise
from shelfwise.runtime.engine import Engine


@dataclass(frozen=True)
class FrozenTest:
    """A run's test split in raw ids: what every bundle is scored on.

    Attributes:
        users: raw user ids of the sampled test users.
        histories: each user's items before the test period, oldest first.
        excluded: per user, the valid items when histories are train-only (RecBole's
            protocol scores from train but never ranks train or valid items), else empty.
        weights: the matching event weights.
        targets: each user's test items.
        queries: labelled queries: query -> {raw item id: relevance}.
    """

    users: list[str]
    histories: list[list[str]]
    weights: list[list[float]]
    targets: list[list[str]]
    queries: dict[str, dict[str, float]] = field(default_factory=dict)
    excluded: list[list[str]] = field(default_factory=list)  # never ranked, beyond history


@dataclass(frozen=True)
class BundleScore:
    """One bundle's gate metrics and the request latencies behind them."""

    metrics: dict[str, float]
    latencies_ms: list[float]
    curves: dict[str, dict[str, float]]  # "ndcg" / "recall" -> {"K": value}


def load_frozen_test(
    features: Path,
    *,
    test_history: str,
    max_users: int | None,
    max_queries: int,
    seed: int,
    relevance_offset: float = 0.0,
    repeats: bool = False,
) -> FrozenTest:
    """Read the features stage's test split (a seeded sample of users and queries).

    With `repeats` (a bundle scored lets lists hold seen items: repeat policy "allow")
    the targets keep the items users already had (`test_targets_all.npz`), as the
    evaluate stage counts them (issue 15).
    """
    every = features / "test_targets_all.npz"
    targets = read_csr(every if repeats and every.is_file() else features / "test_targets.npz")
    users = evaluation_users(targets, max_users=max_users, seed=seed)
    raw_items = pl.read_parquet(features / "items.parquet", columns=[RAW_ITEM_ID])[RAW_ITEM_ID]
    raw_users = pl.read_parquet(features / "users.parquet", columns=[RAW_USER_ID])[RAW_USER_ID]
    item_ids: list[str] = raw_items.cast(pl.String).to_list()
    splits = ["train", "valid"] if test_history == "train_valid" else ["train"]
    events = (
        pl.scan_parquet(features / "interactions.parquet")
        .filter(pl.col("split").is_in(splits) & pl.col(USER_INDEX).is_in(users.tolist()))
        .sort([USER_INDEX, TIMESTAMP], maintain_order=True)
        .group_by(USER_INDEX, maintain_order=True)
        .agg(pl.col(ITEM_INDEX), pl.col("weight"))
        .collect()
    )
    by_user = {
        int(user): (list(items), list(weights)) for user, items, weights in events.iter_rows()
    }
    valid_items: dict[int, list[int]] = {}
    if test_history != "train_valid":  # as the evaluate stage: valid items are excluded too
        valid = (
            pl.scan_parquet(features / "interactions.parquet")
            .filter((pl.col("split") == "valid") & pl.col(USER_INDEX).is_in(users.tolist()))
            .group_by(USER_INDEX)
            .agg(pl.col(ITEM_INDEX))
            .collect()
        )
        valid_items = {int(user): list(items) for user, items in valid.iter_rows()}
    histories: list[list[str]] = []
    weights: list[list[float]] = []
    goals: list[list[str]] = []
    for user in users.tolist():
        items, values = by_user.get(user, ([], []))
        histories.append([item_ids[i] for i in items])
        weights.append([float(w) for w in values])
        row = targets[user]
        goals.append([item_ids[i] for i in row.indices[row.data > 0]])
    return FrozenTest(
        users=[str(raw_users[u]) for u in users.tolist()],
        histories=histories,
        weights=weights,
        targets=goals,
        queries=_labelled_queries(features, item_ids, max_queries, seed, relevance_offset),
        excluded=[[item_ids[i] for i in valid_items.get(user, [])] for user in users.tolist()],
    )


def _labelled_queries(
    features: Path, item_ids: list[str], max_queries: int, seed: int, offset: float
) -> dict[str, dict[str, float]]:
    path = features / "queries.parquet"
    if not path.is_file():
        return {}
    labelled = pl.read_parquet(path)
    if labelled.is_empty() or RELEVANCE not in labelled.columns:
        return {}
    grouped: dict[str, dict[str, float]] = {}
    for query, item, grade in labelled.select(QUERY, ITEM_INDEX, RELEVANCE).iter_rows():
        grouped.setdefault(str(query), {})[item_ids[int(item)]] = max(float(grade) - offset, 0.0)
    names = sorted(grouped)
    if len(names) > max_queries:
        chosen = np.random.default_rng(seed).choice(len(names), size=max_queries, replace=False)
        names = sorted(names[i] for i in chosen)
    return {name: grouped[name] for name in names}


BLOCK_USERS = 256  # users answered per block (one unit of work; see `recommend_block`)


def recommend_block(
    engine: Engine, test: FrozenTest, start: int, stop: int, k: int
) -> tuple[list[list[str]], list[float]]:
    """Rows `start:stop` of the frozen test answered one request at a time, as served.

    A plain unit of work over plain data: the raw item ids recommended to each user and
    each request's latency in ms, so blocks of users can be answered anywhere.
    """
    excluded = test.excluded or [[] for _ in test.users]
    lists: list[list[str]] = []
    latencies: list[float] = []
    for row in range(start, min(stop, len(test.users))):
        started = time.perf_counter()
        result = engine.recommend_from_history(
            test.histories[row],
            k,
            weights=test.weights[row],
            raw_user_id=test.users[row],
            exclude=excluded[row],
        )
        latencies.append((time.perf_counter() - started) * 1000.0)
        lists.append([item.raw_item_id for item in result.items[:k]])
    return lists, latencies


# The engines a worker process loaded for `recommend_block_task`, by bundle folder: a
# worker answers many blocks of the same bundle and loads it once (one or two bundles
# per gate, so the cache stays small).
_worker_engines: dict[str, Engine] = {}


def recommend_block_task(
    rows: tuple[int, int], shared: tuple[Engine | str, FrozenTest, int]
) -> tuple[list[list[str]], list[float]]:
    """`recommend_block` as an executor's unit of work over plain data.

    `shared` is (the engine, or its bundle folder, the frozen test, k). A folder is
    loaded once per worker process (hash-verified, as the gate's own load): an engine
    holds threads and caches that do not travel, the bundle's files do.
    """
    source, test, k = shared
    if isinstance(source, str):
        fresh = source not in _worker_engines
        source = worker_engine(source)
        if fresh:
            _warm_up(source, test)
    return recommend_block(source, test, rows[0], rows[1], k)


def worker_engine(folder: str) -> Engine:
    """The bundle in `folder`, loaded (hash-verified) once per worker process."""
    if folder not in _worker_engines:
        from shelfwise.runtime.engine import load_engine

        _worker_engines[folder] = load_engine(Path(folder), verify=True)
    return _worker_engines[folder]


def score_bundle(
    engine: Engine,
    test: FrozenTest,
    k_values: list[int],
    *,
    bundle_bytes: int,
    executor: Executor | None = None,
    bundle_path: Path | None = None,
) -> BundleScore:
    """The gate metrics of one loaded bundle on a frozen test split.

    Users are answered a block of `BLOCK_USERS` at a time (`recommend_block`); only
    their ranked ids are kept, so memory grows with the sample, never with the shop.

    Args:
        executor: where the user blocks are answered (`shelfwise.compute`); None or the
            local one = here, with `engine`. On Ray each worker loads the bundle from
            `bundle_path` once (the folder must be readable where the workers run: the
            run folder on shared storage, as on the loopback cluster), and latencies
            are measured in the workers, one request at a time each.
        bundle_path: the bundle's folder; needed with a Ray executor.
    """
    k_max = max(k_values)
    vocabulary: dict[str, int] = {}
    ranked = np.full((len(test.users), k_max), -1, dtype=np.int64)
    rows: list[int] = []
    columns: list[int] = []
    latencies: list[float] = []
    _warm_up(engine, test)
    executor = executor or LocalExecutor()
    source: Engine | str = engine
    if executor.name != "local":
        if bundle_path is None:
            raise ValueError("score_bundle on a cluster needs bundle_path (workers load it)")
        source = str(bundle_path.resolve())
    starts = range(0, len(test.users), BLOCK_USERS)
    answered = executor.imap(
        recommend_block_task,
        [(start, start + BLOCK_USERS) for start in starts],
        (source, test, k_max),
        what="gate user block",
    )
    for start, (lists, block_latencies) in zip(starts, answered, strict=True):
        latencies.extend(block_latencies)
        for row, items in enumerate(lists, start):
            for position, raw_item_id in enumerate(items):
                ranked[row, position] = vocabulary.setdefault(raw_item_id, len(vocabulary))
            for goal in test.targets[row]:
                rows.append(row)
                columns.append(vocabulary.setdefault(goal, len(vocabulary)))
    metrics: dict[str, float] = {}
    if rows:
        truth = sp.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, columns)),
            shape=(len(test.users), max(len(vocabulary), 1)),
        )
        truth.data[:] = 1.0  # duplicates summed: relevance is binary
        metrics.update(ranking_metrics(ranked, truth, k_values))
    if latencies:
        metrics["p50_latency_ms"] = float(np.percentile(latencies, 50))
        metrics["p99_latency_ms"] = float(np.percentile(latencies, 99))
    if test.queries and engine.has_search:
        search_latencies: list[float] = []
        metrics.update(_search_metrics(engine, test.queries, k_values, search_latencies))
        metrics["search.p50_latency_ms"] = float(np.percentile(search_latencies, 50))
        metrics["search.p99_latency_ms"] = float(np.percentile(search_latencies, 99))
    metrics["bundle_mb"] = bundle_bytes / 1e6
    curves = {
        name: {str(k): metrics[f"{name}@{k}"] for k in k_values if f"{name}@{k}" in metrics}
        for name in ("ndcg", "recall")
    }
    return BundleScore(metrics=metrics, latencies_ms=latencies, curves=curves)


def _warm_up(engine: Engine, test: FrozenTest) -> None:
    """One untimed request of each kind: lazy loads (query encoder, caches) happen here."""
    if test.users:
        engine.recommend_from_history(test.histories[0], 10, weights=test.weights[0])
    if test.queries and engine.has_search:
        engine.search(next(iter(test.queries)), 10)


def _search_metrics(
    engine: Engine,
    queries: dict[str, dict[str, float]],
    k_values: list[int],
    latencies: list[float],
) -> dict[str, float]:
    outcomes: list[QueryOutcome] = []
    for query, judged in queries.items():
        started = time.perf_counter()
        result = engine.search(query, max(k_values))
        latencies.append((time.perf_counter() - started) * 1000.0)
        outcomes.append(
            QueryOutcome(
                reranked=[],
                retrieved=[judged.get(item.raw_item_id, 0.0) for item in result.items],
                judged=list(judged.values()),
            )
        )
    summary: dict[str, Any] = summarise(outcomes, k_values)
    found: dict[str, float] = {}
    for key, value in summary.items():
        if key.startswith("full/") and isinstance(value, int | float):
            found["search." + key.removeprefix("full/")] = float(value)
    return found


def folder_bytes(path: Path) -> int:
    """Total size of the files under a folder."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
