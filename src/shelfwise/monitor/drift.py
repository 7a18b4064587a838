"""Drift between what a bundle was trained on and what shoppers do now.

Reference: the served bundle (its catalog, users, histories, and the catalog text
its search indexes). Current: the events of a recent window, read from the server's
durable event log (`shelfwise.stores.event_log.read_event_log`). Measures:

- `item_psi`: population stability index of item popularity. Bins are the bundle's
  `top_items` most popular items, one bin for the rest of its catalog and one for items
  it does not know; PSI = Σ (c − r) · ln(c / r) over bins of reference share r and
  current share c (a small ε keeps empty bins finite). Usual reading: < 0.1 stable,
  0.1–0.25 moderate shift, > 0.25 a different population.
- `unseen_user_share`: active users of the window the bundle does not know.
- `unseen_item_share`: events of the window on items the bundle does not know.
- `query_oov_rate`: query tokens (the search tokenizer's) absent from the catalog text.
- `score_psi` (optional, needs an engine): PSI of the top-1 recommendation score, bundle
  users scored from their stored history against window users scored from the
  window's events, on the reference's deciles.
- catalog changes (optional, needs the current catalog ids): items added and removed.

The module imports no training code: the server computes the same numbers for its
gauges (`shelfwise_serve_drift_*`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import polars as pl

from shelfwise.contracts import QUERY, RAW_ITEM_ID, RAW_USER_ID, TIMESTAMP

if TYPE_CHECKING:
    from shelfwise.runtime.engine import Engine

EPSILON: Final = 1e-4
PSI_WARN: Final = 0.1
PSI_DRIFT: Final = 0.25


@dataclass(frozen=True)
class Reference:
    """What the bundle knows: raw ids and item popularity (interactions per item)."""

    item_ids: list[str]
    user_ids: set[str]
    item_counts: np.ndarray[Any, np.dtype[np.float64]]
    vocabulary: set[str]

    @classmethod
    def from_bundle(cls, bundle: Path) -> Reference:
        """Read the reference from a bundle folder (no model is loaded)."""
        from shelfwise._internal.artifacts import read_csr
        from shelfwise.package.bundle import HISTORIES_FILE, ITEMS_FILE, USERS_FILE

        items = pl.read_parquet(bundle / ITEMS_FILE)
        users = pl.read_parquet(bundle / USERS_FILE, columns=[RAW_USER_ID])
        histories = read_csr(bundle / HISTORIES_FILE)
        counts = np.asarray((histories > 0).sum(axis=0), dtype=np.float64).ravel()
        text_columns = [c for c in ("title", "brand", "category") if c in items.columns]
        return cls(
            item_ids=[str(v) for v in items[RAW_ITEM_ID].to_list()],
            user_ids={str(v) for v in users[RAW_USER_ID].to_list()},
            item_counts=counts,
            vocabulary=catalog_vocabulary(items.select(text_columns).iter_rows()),
        )


@dataclass(frozen=True)
class DriftReport:
    """Drift numbers for one window (see the module docstring); None: not measurable."""

    window_start: int
    window_end: int
    events: int
    users: int
    item_psi: float | None
    unseen_user_share: float | None
    unseen_item_share: float | None
    query_oov_rate: float | None
    score_psi: float | None = None
    catalog_added: int | None = None
    catalog_removed: int | None = None
    status: str = "ok"
    reasons: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def catalog_vocabulary(rows: Iterable[Sequence[Any]]) -> set[str]:
    """Search tokens of the catalog text."""
    from shelfwise.text.tokenize import tokenize

    vocabulary: set[str] = set()
    for row in rows:
        for value in row:
            if value:
                vocabulary.update(tokenize(str(value)))
    return vocabulary


def population_stability_index(
    reference: np.ndarray[Any, Any], current: np.ndarray[Any, Any]
) -> float:
    """PSI of two count (or share) vectors over the same bins, ε-smoothed."""
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    if ref.shape != cur.shape or ref.size == 0:
        raise ValueError(f"bins differ: {ref.shape} vs {cur.shape}")
    ref = ref / ref.sum() if ref.sum() > 0 else np.full(ref.shape, 1.0 / ref.size)
    cur = cur / cur.sum() if cur.sum() > 0 else np.full(cur.shape, 1.0 / cur.size)
    ref = np.maximum(ref, EPSILON)
    cur = np.maximum(cur, EPSILON)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def measure(
    reference: Reference,
    events: pl.DataFrame,
    *,
    window: tuple[int, int],
    top_items: int = 200,
    engine: Engine | None = None,
    catalog_ids: Sequence[str] | None = None,
    score_users: int = 200,
) -> DriftReport:
    """Every drift number for one window of events."""
    interactions = events.filter(pl.col(RAW_ITEM_ID).is_not_null())
    users = events[RAW_USER_ID].drop_nulls().unique().to_list()
    item_psi = unseen_items = None
    if interactions.height:
        item_psi, unseen_items = _item_drift(
            reference, interactions[RAW_ITEM_ID].to_list(), top_items
        )
    unseen_users = (
        sum(1 for user in users if user not in reference.user_ids) / len(users) if users else None
    )
    queries = events[QUERY].drop_nulls().to_list() if QUERY in events.columns else []
    oov = query_oov_rate(queries, reference.vocabulary) if queries else None
    score = _score_psi(engine, reference, interactions, score_users) if engine is not None else None
    added = removed = None
    if catalog_ids is not None:
        known, now = set(reference.item_ids), set(map(str, catalog_ids))
        added, removed = len(now - known), len(known - now)
    report = DriftReport(
        window_start=window[0],
        window_end=window[1],
        events=events.height,
        users=len(users),
        item_psi=item_psi,
        unseen_user_share=unseen_users,
        unseen_item_share=unseen_items,
        query_oov_rate=oov,
        score_psi=score,
        catalog_added=added,
        catalog_removed=removed,
    )
    return _with_status(report)


def _item_drift(reference: Reference, items: list[str], top_items: int) -> tuple[float, float]:
    counts = reference.item_counts
    order = np.argsort(-counts, kind="stable")[: min(top_items, counts.size)]
    bins = {reference.item_ids[i]: b for b, i in enumerate(order.tolist())}
    known = set(reference.item_ids)
    n_bins = len(bins) + 2  # + the rest of the catalog + unknown items
    ref = np.zeros(n_bins)
    ref[: len(bins)] = counts[order]
    ref[len(bins)] = counts.sum() - counts[order].sum()
    cur = np.zeros(n_bins)
    unseen = 0
    for item in items:
        if item in bins:
            cur[bins[item]] += 1
        elif item in known:
            cur[len(bins)] += 1
        else:
            cur[len(bins) + 1] += 1
            unseen += 1
    return population_stability_index(ref, cur), unseen / len(items)


def query_oov_rate(queries: Iterable[str], vocabulary: set[str]) -> float | None:
    """Share of query tokens not in the catalog vocabulary (None without tokens)."""
    from shelfwise.text.tokenize import tokenize

    total = missing = 0
    for query in queries:
        for token in tokenize(query):
            total += 1
            missing += token not in vocabulary
    return missing / total if total else None


def _score_psi(
    engine: Engine, reference: Reference, interactions: pl.DataFrame, n_users: int
) -> float | None:
    rng = np.random.default_rng(0)
    known = sorted(reference.user_ids)
    if not known or interactions.height == 0:
        return None
    sample = [
        known[i] for i in rng.choice(len(known), size=min(n_users, len(known)), replace=False)
    ]
    ref_scores = [_top_score(engine.recommend(user, 1).items) for user in sample]
    grouped = (
        interactions.sort(TIMESTAMP).group_by(RAW_USER_ID, maintain_order=True).agg(RAW_ITEM_ID)
    )
    rows = grouped.head(n_users).iter_rows()
    cur_scores = [
        _top_score(engine.recommend_from_history(list(items), 1).items) for _, items in rows
    ]
    ref_values = np.array([s for s in ref_scores if s is not None])
    cur_values = np.array([s for s in cur_scores if s is not None])
    if ref_values.size < 10 or cur_values.size < 10:
        return None
    edges = np.unique(np.quantile(ref_values, np.linspace(0, 1, 11)[1:-1]))
    ref_bins = np.bincount(np.searchsorted(edges, ref_values), minlength=edges.size + 1)
    cur_bins = np.bincount(np.searchsorted(edges, cur_values), minlength=edges.size + 1)
    return population_stability_index(ref_bins, cur_bins)


def _top_score(items: Sequence[Any]) -> float | None:
    if not items:
        return None
    value = float(items[0].score)
    return value if math.isfinite(value) else None


def _with_status(report: DriftReport) -> DriftReport:
    reasons: list[str] = []
    status = "ok"
    for name, value in (("item_psi", report.item_psi), ("score_psi", report.score_psi)):
        if value is None:
            continue
        if value > PSI_DRIFT:
            reasons.append(f"{name} {value:.3f} > {PSI_DRIFT}")
            status = "drift"
        elif value > PSI_WARN:
            reasons.append(f"{name} {value:.3f} > {PSI_WARN}")
            status = "warn" if status == "ok" else status
    for name, value, limit in (
        ("unseen_item_share", report.unseen_item_share, 0.2),
        ("unseen_user_share", report.unseen_user_share, 0.5),
        ("query_oov_rate", report.query_oov_rate, 0.3),
    ):
        if value is not None and value > limit:
            reasons.append(f"{name} {value:.3f} > {limit}")
            status = "warn" if status == "ok" else status
    return DriftReport(**{**asdict(report), "status": status, "reasons": reasons})
