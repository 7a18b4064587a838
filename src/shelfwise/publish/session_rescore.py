"""Score a whole bundle, as served, on one run's frozen test *sessions* (issue 15).

A run with `split.method: session` (or `auto` resolved to it) holds out its last
sessions; the evaluate stage chose the bundle's session model (role "session") on the
valid ones. The gate judges that model the way a shopper meets it: each held-out
session's earlier items go through `runtime.sessions.recommend_session` as an inline
history — the code path `POST /v1/recommend` with `history` takes — with the server's
within-session repeat rule (`serve.session_repeats`), and the protocol's metrics are
computed on the answers (`evaluate.sessions.session_metrics`: HR@K / MRR@K, repeat
targets counted, never dropped). Metric names carry a `session.` prefix
(`session.hr@20`, `session.mrr@20`, `session.hr_repeat@20`, …, `session.cases`,
`session.p50_latency_ms`).

The protocol's trivial rule ("the session's items again, then the items that followed
them", `SessionBaselines.session_items`, fitted on the run's train + valid sessions) is
scored on the same cases: with no champion to compare with, the gate's `session.*`
delta rules compare the challenger with it (`gate.check_rules(baseline=...)`), so a
first version whose session model loses to the trivial rule is not promoted.

Cases are answered in blocks of `BLOCK_CASES` through the run's executor, as the user
re-scoring is (`rescore.score_bundle`); on Ray each worker loads the bundle once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import polars as pl

from shelfwise._internal.sequences import Sequences
from shelfwise.compute import Executor, LocalExecutor
from shelfwise.config import ShelfwiseConfig
from shelfwise.contracts import RAW_ITEM_ID
from shelfwise.evaluate.sessions import (
    SessionBaselines,
    SessionCases,
    evaluate_sessions,
    session_cases,
    session_metrics,
)
from shelfwise.features.sessions import read_session_files
from shelfwise.publish.rescore import worker_engine
from shelfwise.runtime.engine import Engine
from shelfwise.runtime.sessions import HistoryEvent, recommend_session, session_allows_repeats

PREFIX: Final = "session."
BASELINE: Final = "session_items"  # the trivial rule a first session model must match
BLOCK_CASES: Final = 256  # cases answered per unit of work (as the user blocks)


@dataclass(frozen=True)
class FrozenSessions:
    """A run's held-out session cases in raw ids: what every bundle is scored on.

    Attributes:
        prefixes: each case's session so far, oldest first.
        targets: the item each case should predict.
        repeats: whether the target repeats an item of its own prefix.
        case_rows: the sampled rows of the run's cases (for the baseline on the same).
    """

    prefixes: list[list[str]]
    targets: list[str]
    repeats: list[bool]
    case_rows: list[int]

    @property
    def n_cases(self) -> int:
        """Number of cases."""
        return len(self.targets)


def load_frozen_sessions(
    features: Path, *, targets: str, max_cases: int | None, seed: int
) -> FrozenSessions | None:
    """The features stage's test sessions as cases (a seeded sample of `max_cases`).

    Returns:
        None when the run has no sessions (its split is not `session`).
    """
    sessions = read_session_files(features)
    if sessions is None:
        return None
    cases = session_cases(sessions["test"], targets=targets)
    rows = np.arange(cases.n_cases, dtype=np.int64)
    if max_cases is not None and rows.size > max_cases:
        rows = np.sort(np.random.default_rng(seed).choice(rows, size=max_cases, replace=False))
    item_ids = _item_ids(features)
    prefixes = [[item_ids[i] for i in cases.prefixes.row(int(row)).tolist()] for row in rows]
    return FrozenSessions(
        prefixes=prefixes,
        targets=[item_ids[int(cases.targets[row])] for row in rows],
        repeats=[bool(cases.repeats[row]) for row in rows],
        case_rows=rows.tolist(),
    )


def _item_ids(features: Path) -> list[str]:
    column = pl.read_parquet(features / "items.parquet", columns=[RAW_ITEM_ID])[RAW_ITEM_ID]
    return [str(value) for value in column.cast(pl.String).to_list()]


def baseline_metrics(
    features: Path,
    frozen: FrozenSessions,
    k_values: list[int],
    *,
    targets: str,
    allow_repeats: bool,
) -> dict[str, float]:
    """The trivial rule's `session.*` metrics on the same sampled cases (item indices).

    Fitted on the run's train + valid sessions, as the evaluate stage's baselines are.
    """
    sessions = read_session_files(features)
    if sessions is None or not frozen.n_cases:
        return {}
    n_items = len(_item_ids(features))
    every = session_cases(sessions["test"], targets=targets)
    picked = np.asarray(frozen.case_rows, dtype=np.int64)
    cases = SessionCases(every.prefixes.take(picked), every.targets[picked], every.repeats[picked])
    train, valid = sessions["train"], sessions["valid"]
    both = Sequences.from_rows(
        [train.row(i) for i in range(train.n_users)] + [valid.row(i) for i in range(valid.n_users)]
    )
    scorer = SessionBaselines(both, n_items).scorer(BASELINE)
    found = evaluate_sessions(scorer, cases, n_items, k_values, exclude_seen=not allow_repeats)
    return {PREFIX + name: value for name, value in found.items()}


def allows_repeats(config: ShelfwiseConfig, engine: Engine) -> bool:
    """The server's within-session repeat rule for this bundle (`session_allows_repeats`)."""
    return session_allows_repeats(config.serve.session_repeats, config.serve.exclude_seen, engine)


def session_block(
    engine: Engine, frozen: FrozenSessions, start: int, stop: int, k: int, allow_repeats: bool
) -> tuple[list[list[str]], list[float]]:
    """Cases `start:stop` answered one request at a time through the served session path.

    One untimed request first: a block may be the first work of a fresh worker.
    """
    stop = min(stop, frozen.n_cases)
    if start < stop:
        recommend_session(engine, _history(frozen.prefixes[start]), k, allow_repeats=allow_repeats)
    lists: list[list[str]] = []
    latencies: list[float] = []
    for row in range(start, stop):
        started = time.perf_counter()
        answer = recommend_session(
            engine, _history(frozen.prefixes[row]), k, allow_repeats=allow_repeats
        )
        latencies.append((time.perf_counter() - started) * 1000.0)
        lists.append([item.raw_item_id for item in answer.items[:k]])
    return lists, latencies


def _history(prefix: list[str]) -> list[HistoryEvent]:
    return [HistoryEvent(raw_item_id) for raw_item_id in prefix]  # views, in order


def session_block_task(
    rows: tuple[int, int], shared: tuple[Engine | str, FrozenSessions, int, bool]
) -> tuple[list[list[str]], list[float]]:
    """`session_block` as an executor's unit of work over plain data.

    `shared` is (the engine, or its bundle folder, the cases, k, allow_repeats); a folder
    is loaded once per worker process (`rescore.worker_engine`).
    """
    source, frozen, k, allow_repeats = shared
    engine = worker_engine(source) if isinstance(source, str) else source
    return session_block(engine, frozen, rows[0], rows[1], k, allow_repeats)


def score_sessions(
    engine: Engine,
    frozen: FrozenSessions,
    k_values: list[int],
    *,
    allow_repeats: bool,
    executor: Executor | None = None,
    bundle_path: Path | None = None,
) -> dict[str, float]:
    """The `session.*` gate metrics of one loaded bundle on the frozen cases.

    Args:
        engine: the loaded bundle.
        frozen: the cases (`load_frozen_sessions`).
        k_values: cut-offs.
        allow_repeats: the within-session repeat rule (`allows_repeats`).
        executor: where blocks of cases are answered (None: here).
        bundle_path: the bundle's folder; needed with a Ray executor.

    Raises:
        ValueError: a cluster executor without `bundle_path`.
    """
    if not frozen.n_cases:
        return {}
    k_max = max(k_values)
    executor = executor or LocalExecutor()
    source: Engine | str = engine
    if executor.name != "local":
        if bundle_path is None:
            raise ValueError("score_sessions on a cluster needs bundle_path (workers load it)")
        source = str(bundle_path.resolve())
    starts = range(0, frozen.n_cases, BLOCK_CASES)
    answered = executor.imap(
        session_block_task,
        [(start, start + BLOCK_CASES) for start in starts],
        (source, frozen, k_max, allow_repeats),
        what="gate session block",
    )
    # ranked in a vocabulary of raw ids: a bundle may know items the run does not
    vocabulary = {item: index for index, item in enumerate(dict.fromkeys(frozen.targets))}
    ranked = np.full((frozen.n_cases, k_max), -1, dtype=np.int64)
    latencies: list[float] = []
    for start, (lists, block_latencies) in zip(starts, answered, strict=True):
        latencies.extend(block_latencies)
        for row, items in enumerate(lists, start):
            for position, raw_item_id in enumerate(items):
                ranked[row, position] = vocabulary.setdefault(raw_item_id, len(vocabulary))
    cases = SessionCases(
        prefixes=_empty_prefixes(frozen.n_cases),
        targets=np.array([vocabulary[target] for target in frozen.targets], dtype=np.int64),
        repeats=np.array(frozen.repeats, dtype=np.bool_),
    )
    metrics = {
        PREFIX + name: value for name, value in session_metrics(ranked, cases, k_values).items()
    }
    metrics[PREFIX + "p50_latency_ms"] = float(np.percentile(latencies, 50))
    metrics[PREFIX + "p99_latency_ms"] = float(np.percentile(latencies, 99))
    return metrics


def _empty_prefixes(n_cases: int) -> Sequences:
    # `session_metrics` reads only targets and repeats
    return Sequences(indptr=np.zeros(n_cases + 1, dtype=np.int64), items=np.zeros(0, np.int64))


__all__ = [
    "BASELINE",
    "BLOCK_CASES",
    "PREFIX",
    "FrozenSessions",
    "allows_repeats",
    "baseline_metrics",
    "load_frozen_sessions",
    "score_sessions",
    "session_block",
    "session_block_task",
]
