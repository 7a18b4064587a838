"""Search results for the report: the variants and relevance by query bucket.

Buckets group the search stage's per-query metrics (`search/per_query.parquet`) by

- language: `zh` (CJK characters only), `en` (Latin letters only), `mixed`, `other`;
- length: whitespace-separated terms, `1 term`, `2 terms`, `3+ terms`;
- frequency: how often the query was typed in the search events — `head` (the most
  frequent queries, together half of all searches), `torso` (the next 30%), `tail`
  (the rest) and `unseen` (never typed). Left out when there are no search events.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import polars as pl

from shelfwise.contracts import QUERY
from shelfwise.report._collect import NotRun, read_json

PER_QUERY_FILE: Final = "per_query.parquet"
HEAD_SHARE: Final = 0.5
TORSO_SHARE: Final = 0.8  # cumulative: head + torso cover 80% of searches
DIMENSIONS: Final = ("language", "length", "frequency")
WORST_QUERIES: Final = 10


@dataclass(frozen=True)
class BucketRow:
    """Mean of one metric over the queries of one bucket, per variant."""

    dimension: str
    bucket: str
    queries: int
    values: dict[str, float | None]  # variant -> mean


@dataclass(frozen=True)
class SearchSummary:
    """`search/search.json` plus the per-query buckets (when per-query rows exist)."""

    status: str
    reason: str | None
    labels: str | None
    served: str | None
    select_metric: str | None
    variants: dict[str, dict[str, Any]]
    bucket_metric: str | None  # e.g. "rerank/ndcg@10"
    buckets: list[BucketRow]
    buckets_note: str | None  # why buckets (or the frequency dimension) are missing
    worst: list[tuple[str, float]]  # served variant's lowest-scoring queries
    selection_reason: str | None = None  # why the served variant was picked
    latency_ms: dict[str, float] | None = None  # variant -> median ms per query (stage)


def collect_search(run_dir: Path) -> SearchSummary:
    """Search variants and relevance by query bucket."""
    report = read_json(run_dir / "search" / "search.json", run_dir)
    status = str(report.get("status", "evaluated"))
    if status == "skipped":
        raise NotRun("search skipped: no search index (no catalog text)")
    select_metric = report.get("select_metric")
    buckets: list[BucketRow] = []
    note: str | None = None
    bucket_metric: str | None = None
    worst: list[tuple[str, float]] = []
    per_query = run_dir / "search" / str(report.get("per_query", PER_QUERY_FILE))
    if status != "evaluated":
        note = "no evaluated queries"
    elif not per_query.is_file():
        note = "no per-query results (search/per_query.parquet): run written by an older version"
    else:
        frame = pl.read_parquet(per_query)
        mode, _, metric = str(select_metric or "rerank/ndcg@10").partition("/")
        if metric not in frame.columns:
            metric = "ndcg@10"
        bucket_metric = f"{mode}/{metric}"
        frequencies = _query_frequencies(run_dir / "features" / "search_events.parquet")
        if frequencies is None:
            note = "frequency buckets need search events; this run has none"
        rows = frame.filter(pl.col("mode") == mode)
        buckets = bucket_rows(rows, metric, frequencies)
        served = rows.filter(pl.col("variant") == str(report.get("served")))
        lowest = served.drop_nulls(metric).sort(metric, QUERY).head(WORST_QUERIES)
        worst = [(str(q), float(v)) for q, v in lowest.select(QUERY, metric).iter_rows()]
    return SearchSummary(
        status=status,
        reason=report.get("reason"),
        labels=report.get("labels"),
        served=report.get("served"),
        select_metric=select_metric,
        variants={str(k): dict(v) for k, v in (report.get("variants") or {}).items()},
        bucket_metric=bucket_metric,
        buckets=buckets,
        buckets_note=note,
        worst=worst,
        selection_reason=report.get("selection_reason"),
        latency_ms=report.get("latency_p50_ms"),
    )


def language(query: str) -> str:
    """`zh`, `en`, `mixed` or `other` from the scripts of the query's letters."""
    cjk = latin = False
    for char in query:
        if _is_cjk(char):
            cjk = True
        elif char.isalpha() and char.isascii():
            latin = True
        elif char.isalpha() and "LATIN" in unicodedata.name(char, ""):
            latin = True
    if cjk and latin:
        return "mixed"
    return "zh" if cjk else "en" if latin else "other"


def length(query: str) -> str:
    """`1 term`, `2 terms` or `3+ terms` (whitespace-separated)."""
    terms = len(query.split())
    return "1 term" if terms <= 1 else "2 terms" if terms == 2 else "3+ terms"


def frequency_buckets(counts: dict[str, int]) -> dict[str, str]:
    """Query -> head / torso / tail by cumulative share of searches (most frequent first)."""
    total = sum(counts.values())
    buckets: dict[str, str] = {}
    covered = 0
    for query, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        share_before = covered / total if total else 1.0
        buckets[query] = (
            "head"
            if share_before < HEAD_SHARE
            else "torso"
            if share_before < TORSO_SHARE
            else "tail"
        )
        covered += count
    return buckets


def bucket_rows(
    frame: pl.DataFrame, metric: str, frequencies: dict[str, int] | None
) -> list[BucketRow]:
    """Mean `metric` per bucket and variant over the rows of one mode."""
    if not frame.height:
        return []
    queries = frame[QUERY].unique().to_list()
    by_frequency = frequency_buckets(frequencies) if frequencies is not None else None
    labels: dict[str, list[str]] = {"language": [], "length": [], "frequency": []}
    for query in queries:
        labels["language"].append(language(query))
        labels["length"].append(length(query))
        if by_frequency is not None:
            labels["frequency"].append(by_frequency.get(_normal(query), "unseen"))
    table = pl.DataFrame({QUERY: queries, **{k: v for k, v in labels.items() if v}})
    joined = frame.join(table, on=QUERY, how="left")
    variants = frame["variant"].unique(maintain_order=True).to_list()
    rows: list[BucketRow] = []
    for dimension in DIMENSIONS:
        if dimension not in joined.columns:
            continue
        grouped = (
            joined.group_by(dimension, "variant")
            .agg(pl.col(metric).mean().alias("mean"), pl.len().alias("queries"))
            .sort(dimension)
        )
        for (bucket,), part in grouped.group_by(dimension, maintain_order=True):
            means = dict(zip(part["variant"].to_list(), part["mean"].to_list(), strict=True))
            rows.append(
                BucketRow(
                    dimension=dimension,
                    bucket=str(bucket),
                    queries=max(int(n) for n in part["queries"].to_list()),
                    values={variant: means.get(variant) for variant in variants},
                )
            )
    return sorted(rows, key=lambda row: (DIMENSIONS.index(row.dimension), _order(row.bucket)))


def _query_frequencies(path: Path) -> dict[str, int] | None:
    if not path.is_file():
        return None
    events = pl.read_parquet(path, columns=[QUERY])
    if not events.height:
        return None
    counts = events.group_by(QUERY).len()
    totals: dict[str, int] = {}
    for query, count in counts.iter_rows():
        key = _normal(str(query))
        totals[key] = totals.get(key, 0) + int(count)
    return totals


def _normal(query: str) -> str:
    return " ".join(query.casefold().split())


def _is_cjk(char: str) -> bool:
    code = ord(char)
    return (
        0x4E00 <= code <= 0x9FFF  # CJK unified ideographs
        or 0x3400 <= code <= 0x4DBF  # extension A
        or 0x3040 <= code <= 0x30FF  # kana
        or 0xAC00 <= code <= 0xD7AF  # hangul
        or 0xF900 <= code <= 0xFAFF  # compatibility ideographs
    )


_BUCKET_ORDER: Final = ("zh", "en", "mixed", "other", "1 term", "2 terms", "3+ terms")
_BUCKET_ORDER_FREQUENCY: Final = ("head", "torso", "tail", "unseen")


def _order(bucket: str) -> int:
    for order in (_BUCKET_ORDER, _BUCKET_ORDER_FREQUENCY):
        if bucket in order:
            return order.index(bucket)
    return len(_BUCKET_ORDER)


__all__ = [
    "BucketRow",
    "SearchSummary",
    "bucket_rows",
    "collect_search",
    "frequency_buckets",
    "language",
    "length",
]
