"""The search stage: assemble hybrid search, train its LambdaMART re-ranker, pick a variant.

Stage inputs: `features` (items, labelled queries, search events, the split) and
`retrieval` (the fitted `bm25` and `dense` indexes). Outputs:

| file | content |
|---|---|
| `model/` | the served `HybridSearch` (retrievers, re-ranker when kept, item table) |
| `search.json` | per variant NDCG@K / MRR / Recall@K (rerank, full), ms per query, the pick, why |
| `per_query.parquet` | the same metrics per label group, variant and mode |

Labels come from labelled queries when there are any, else from search events of the
train and valid periods (click 1, cart 2, purchase 3, inverse propensity weights
by position; see `search_labels`), grouped per (user, query) so the user's category
and brand affinity can be learned. Variants compared on the same queries:

- `bm25`, `dense`: each retriever alone;
- `hybrid`: reciprocal rank fusion of the two;
- `hybrid+lambdamart`: the fused candidates (plus, in rerank mode, every judged item)
  ordered by LambdaMART, evaluated with K-fold cross-validation **by query**: every
  query is scored by a model that never saw it. It learns to rank for retrieval: its
  training lists are each query's judged items plus the top `search.train_candidates`
  fused candidates, the unjudged ones as weak negatives (`search.weak_negative_*`).

Each variant's median latency per query is timed on the would-be served model, and
`search.selection.select_variant` picks: full-catalog NDCG@10 by default, the fastest
within `search.select_tolerance`, LambdaMART only when it beats every unlearned variant
by more than that (docs/search.md). The re-ranker is then refitted on every query.
Without labels or events the fused order is served unevaluated (nothing to measure it
on), and the report says so.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import polars as pl

from shelfwise._internal import progress
from shelfwise._internal.artifacts import atomic_write_json, read_csr, write_parquet
from shelfwise._internal.stage import StageContext, StageResult
from shelfwise.contracts import (
    ITEM_INDEX,
    QUERY,
    RELEVANCE,
    SPLIT,
    USER_INDEX,
    WEIGHT,
    SplitName,
)
from shelfwise.errors import EmptyDataError
from shelfwise.evaluate.search import QueryOutcome, query_metrics, summarise
from shelfwise.retrieval.bm25 import BM25Search
from shelfwise.retrieval.dense import DenseSearch
from shelfwise.retrieval.stage import TITLE_VECTORS, feature_encoder_folders
from shelfwise.search.features import (
    SEARCH_FEATURE_NAMES,
    SearchItemTable,
    item_popularity,
)
from shelfwise.search.hybrid import FeatureEncoder, HybridSearch, QueryView, item_frame
from shelfwise.search.labels import GRADE, labels_from_events, labels_from_queries
from shelfwise.search.lambdamart import SearchReranker, default_label_gain, query_folds
from shelfwise.search.selection import LEARNED_VARIANTS, select_variant, time_variants

MODEL_DIR: Final = "model"
REPORT_FILE: Final = "search.json"
PER_QUERY_FILE: Final = "per_query.parquet"
VARIANTS: Final = ("bm25", "dense", "hybrid", "hybrid+lambdamart")
_USER_SEPARATOR: Final = "\u241f"  # joins user and query into one label group key


@dataclass(frozen=True)
class _Group:
    """One label group: a query (and, for event labels, the user who typed it)."""

    query: str
    user: int | None
    items: np.ndarray[Any, np.dtype[np.int64]]  # judged (labelled) items
    grades: np.ndarray[Any, np.dtype[np.int64]]
    weights: np.ndarray[Any, np.dtype[np.float64]]


@dataclass(frozen=True)
class _Rows:
    """Training rows of every group, stacked."""

    features: np.ndarray[Any, np.dtype[np.float32]]
    grades: np.ndarray[Any, np.dtype[np.int64]]
    weights: np.ndarray[Any, np.dtype[np.float64]]
    groups: np.ndarray[Any, np.dtype[np.int64]]
    items: np.ndarray[Any, np.dtype[np.int64]]
    in_fused: np.ndarray[Any, np.dtype[np.bool_]]  # row is one of the fused candidates
    judged: np.ndarray[Any, np.dtype[np.bool_]]  # row is a labelled item of its group
    feature_names: tuple[str, ...] = SEARCH_FEATURE_NAMES  # the columns of `features`


def run(ctx: StageContext) -> StageResult:
    """Assemble, train, evaluate and save hybrid search."""
    config = ctx.config.search
    models = ctx.inputs["retrieval"]
    lexical = BM25Search.load(models / "bm25") if (models / "bm25").is_dir() else None
    dense = DenseSearch.load(models / "dense") if (models / "dense").is_dir() else None
    titles = None
    if dense is not None and (models / TITLE_VECTORS).is_dir():  # features only
        titles = DenseSearch.load(models / TITLE_VECTORS, encoder=dense.encoder)
    if lexical is None and dense is None:
        atomic_write_json(ctx.out / REPORT_FILE, {"status": "skipped"})
        return StageResult(summary="skipped: no search index (no catalog text)")
    extras = _feature_encoders(models) if dense is not None else []
    features = ctx.inputs["features"]
    hybrid = _assemble(ctx, features, lexical, dense, titles, extras)
    groups, source = _label_groups(ctx, features)
    if not groups:
        hybrid.save(ctx.out / MODEL_DIR)
        reason = "no labelled queries and no search events: fused order served, not evaluated"
        atomic_write_json(
            ctx.out / REPORT_FILE, {"status": "unevaluated", "served": "hybrid", "reason": reason}
        )
        return StageResult(extra={"served": "hybrid"}, summary=f"hybrid served; {reason}")

    started = time.perf_counter()
    histories = _histories(features) if source == "search_events" else None
    views = [
        hybrid.view(group.query)
        for group in progress.track(groups, "search: retrieving candidates", total=len(groups))
    ]
    weak = (
        (config.weak_negative_grade, config.weak_negative_weight)
        if source == "labelled_queries"
        else (0, 1.0)
    )
    rows = _rows(hybrid, groups, views, histories, depth=config.train_candidates, weak=weak)
    build_s = time.perf_counter() - started

    k_values = sorted({*ctx.config.evaluate.k_values, 10})
    k_max = max(k_values)
    started = time.perf_counter()
    outcomes: dict[str, list[QueryOutcome]] = {}
    for variant in ("bm25", "dense", "hybrid"):
        if (variant == "bm25" and lexical is None) or (variant == "dense" and dense is None):
            continue
        outcomes[variant] = list(_plain_outcomes(hybrid, variant, groups, views, k_max))
    # Training lists are what retrieval returns (judged items plus the top
    # `train_candidates` fused ones): unjudged candidates are weak negatives, weighted
    # `weak_negative_weight` (0: judged items only). Trained on judged pairs alone the
    # ranker ordered judged items well and let unjudged ones rise: 0.284 against BM25's
    # 0.382 full-catalog NDCG@10 on a real store (issue 16). Event labels: every shown
    # candidate without a click is a negative.
    trainable = rows.weights > 0
    fold_model: SearchReranker | None = None
    if config.enabled and len(groups) >= config.folds and rows.grades[trainable].any():
        out_of_fold, fold_model = _cross_validated(ctx, rows, trainable)
        outcomes["hybrid+lambdamart"] = list(_reranked_outcomes(groups, rows, out_of_fold, k_max))
    reports: dict[str, Any] = {
        variant: summarise(results, k_values) for variant, results in outcomes.items()
    }
    write_parquet(_per_query(groups, outcomes, k_values), ctx.out / PER_QUERY_FILE)
    evaluate_s = time.perf_counter() - started

    started = time.perf_counter()
    candidates_by_variant = {
        variant: _served(hybrid, variant, fold_model if variant in LEARNED_VARIANTS else None)
        for variant in reports
    }
    latency_ms = time_variants(
        candidates_by_variant, [group.query for group in groups], config.latency_queries
    )
    latency_s = time.perf_counter() - started
    selection = select_variant(
        reports, latency_ms, select_metric=config.select_metric, tolerance=config.select_tolerance
    )
    select_metric, served = selection.metric, selection.served
    mode, _, metric = select_metric.partition("/")
    reranker = None
    if served == "hybrid+lambdamart":
        reranker = _reranker(ctx, rows, trainable).fit(
            rows.features[trainable],
            rows.grades[trainable],
            rows.groups[trainable],
            rows.weights[trainable],
        )
    final = _served(hybrid, served, reranker)
    final.save(ctx.out / MODEL_DIR)
    report = {
        "status": "evaluated",
        "labels": source,
        "groups": len(groups),
        "rows": int(rows.grades.size),
        "folds": config.folds,
        "select_metric": select_metric,
        "select_tolerance": config.select_tolerance,
        "served": served,
        "selection_reason": selection.reason,
        "latency_p50_ms": {name: round(value, 3) for name, value in latency_ms.items()},
        "training": {
            "train_candidates": config.train_candidates,
            "weak_negative_weight": config.weak_negative_weight
            if source == "labelled_queries"
            else None,
            "weak_negative_grade": config.weak_negative_grade
            if source == "labelled_queries"
            else None,
            "judged_rows": int(rows.judged.sum()),
            "weak_negative_rows": int((~rows.judged & trainable).sum()),
        },
        "variants": reports,
        "per_query": PER_QUERY_FILE,
        "feature_importance": reranker.feature_importance() if reranker is not None else None,
        "timings_s": {
            "candidates": round(build_s, 3),
            "evaluate": round(evaluate_s, 3),
            "latency": round(latency_s, 3),
        },
    }
    atomic_write_json(ctx.out / REPORT_FILE, report)
    value = reports[served][mode].get(metric, 0.0)
    return StageResult(
        row_counts={"label_groups": len(groups), "training_rows": int(rows.grades.size)},
        extra={"served": served, "metrics": {name: r[mode] for name, r in reports.items()}},
        summary=f"served {served}: {select_metric} {value:.4f} on {len(groups)} "
        f"{'queries' if source == 'labelled_queries' else 'query groups'} ("
        + ", ".join(f"{name} {r[mode].get(metric, 0.0):.4f}" for name, r in reports.items())
        + f"); {selection.reason}",
    )


def _per_query(
    groups: list[_Group], outcomes: dict[str, list[QueryOutcome]], k_values: list[int]
) -> pl.DataFrame:
    """One row per (label group, variant, mode): query, user (event labels), metrics.

    Recall@K is null for a group without a relevant item.
    """
    names = [f"ndcg@{k}" for k in k_values] + [f"recall@{k}" for k in k_values] + ["mrr"]
    columns: dict[str, list[Any]] = {
        name: [] for name in (QUERY, USER_INDEX, "variant", "mode", *names)
    }
    for variant, results in outcomes.items():
        for group, result in zip(groups, results, strict=True):
            for mode, values in query_metrics(result, k_values).items():
                columns[QUERY].append(group.query)
                columns[USER_INDEX].append(group.user)
                columns["variant"].append(variant)
                columns["mode"].append(mode)
                for name in names:
                    columns[name].append(values.get(name))
    schema: dict[str, Any] = {QUERY: pl.String, USER_INDEX: pl.Int64}
    schema.update({"variant": pl.String, "mode": pl.String})
    schema.update(dict.fromkeys(names, pl.Float64))
    return pl.DataFrame(columns, schema=schema)


def _feature_encoders(models: Path) -> list[FeatureEncoder]:
    """The feature encoders the retrieval stage fitted (`models.dense.feature_encoders`)."""
    extras: list[FeatureEncoder] = []
    while True:
        items_dir, titles_dir = feature_encoder_folders(len(extras) + 1)
        if not (models / items_dir).is_dir():
            return extras
        items = DenseSearch.load(models / items_dir)
        titles = None
        if (models / titles_dir).is_dir():
            titles = DenseSearch.load(models / titles_dir, encoder=items.encoder)
        extras.append(FeatureEncoder(items, titles))


def _assemble(
    ctx: StageContext,
    features: Path,
    lexical: BM25Search | None,
    dense: DenseSearch | None,
    titles: DenseSearch | None,
    extras: list[FeatureEncoder] | None = None,
) -> HybridSearch:
    items = pl.read_parquet(features / "items.parquet")
    interactions = pl.read_parquet(features / "interactions.parquet")
    popularity = None
    if interactions.height:
        train = interactions.filter(pl.col(SPLIT) == SplitName.TRAIN.value)
        popularity = item_popularity(train, items.height)
    frame = item_frame(items, popularity)
    return HybridSearch(
        lexical=lexical,
        dense=dense,
        titles=titles,
        table=SearchItemTable.from_frame(frame, popularity),
        items=frame,
        rrf_k=ctx.config.search.rrf_k,
        depth=ctx.config.models.dense.candidates,
        candidates=ctx.config.search.candidates,
        extras=extras or (),
    )


def _label_groups(ctx: StageContext, features: Path) -> tuple[list[_Group], str]:
    """Label groups from labelled queries, else from train/valid search events."""
    config = ctx.config.search
    queries = pl.read_parquet(features / "queries.parquet")
    if queries.height:
        offset = ctx.config.evaluate.relevance_offset
        shifted = queries.with_columns((pl.col(RELEVANCE) - offset).clip(lower_bound=0.0))
        frame = labels_from_queries(shifted).frame
        source = "labelled_queries"
    else:
        path = features / "search_events.parquet"
        events = pl.read_parquet(path) if path.is_file() else pl.DataFrame()
        if events.height:
            events = events.filter(pl.col(SPLIT) != SplitName.TEST.value)
        if not events.height:
            return [], "none"
        keyed = events.with_columns(
            pl.concat_str(
                pl.col(USER_INDEX).cast(pl.String), pl.lit(_USER_SEPARATOR), pl.col(QUERY)
            ).alias(QUERY)
        )
        try:
            frame = labels_from_events(keyed, position_bias_power=config.position_bias_power).frame
        except EmptyDataError:
            return [], "none"
        source = "search_events"
    keys = frame[QUERY].unique(maintain_order=True)
    if keys.len() > config.max_queries:
        keys = keys.sample(config.max_queries, seed=ctx.config.seed).sort()
        frame = frame.filter(pl.col(QUERY).is_in(keys.implode()))
    groups: list[_Group] = []
    for (key,), part in frame.group_by(QUERY, maintain_order=True):
        text, user = str(key), None
        if source == "search_events":
            user_text, _, text = text.partition(_USER_SEPARATOR)
            user = int(user_text)
        groups.append(
            _Group(
                query=text,
                user=user,
                items=part[ITEM_INDEX].to_numpy().astype(np.int64),
                grades=part[GRADE].to_numpy().astype(np.int64),
                weights=part[WEIGHT].to_numpy().astype(np.float64),
            )
        )
    return groups, source


def _histories(features: Path) -> Any:
    """Train-period histories (CSR users × items) for user affinity."""
    return read_csr(features / "train.npz")


def _rows(
    hybrid: HybridSearch,
    groups: list[_Group],
    views: list[QueryView],
    histories: Any,
    *,
    depth: int | None = None,
    weak: tuple[int, float] = (0, 1.0),
) -> _Rows:
    """Features of each group's judged items plus its top `depth` fused candidates.

    The unjudged candidates get `weak` = (grade, weight): weak negatives for labelled
    queries, plain negatives (0, 1) for event labels. `in_fused` marks the candidates
    served re-ranking sees (`hybrid.candidates`), which the full-catalog evaluation
    orders.
    """
    depth = hybrid.candidates if depth is None else depth
    weak_grade, weak_weight = weak
    blocks, grades, weights, numbers, items, in_fused, judged = [], [], [], [], [], [], []
    for number, (group, view) in enumerate(zip(groups, views, strict=True)):
        fused = view.fused[: hybrid.candidates]
        retrieved = view.fused[: max(depth, hybrid.candidates)]
        extra = retrieved[~np.isin(retrieved, group.items)]
        chosen = np.concatenate([group.items, extra])
        history = None
        if histories is not None and group.user is not None:
            history = np.asarray(histories[group.user].indices, dtype=np.int64)
        blocks.append(hybrid.features(view, chosen, history))
        extra_weight = np.full(extra.size, weak_weight)
        extra_weight[~np.isin(extra, view.fused[:depth])] = 0.0  # past `depth`: not trained
        grades.append(np.concatenate([group.grades, np.full(extra.size, weak_grade, np.int64)]))
        weights.append(np.concatenate([group.weights, extra_weight]))
        numbers.append(np.full(chosen.size, number, dtype=np.int64))
        items.append(chosen)
        in_fused.append(np.isin(chosen, fused))
        judged.append(np.arange(chosen.size) < group.items.size)
    return _Rows(
        features=np.vstack(blocks),
        grades=np.concatenate(grades),
        weights=np.concatenate(weights),
        groups=np.concatenate(numbers),
        items=np.concatenate(items),
        in_fused=np.concatenate(in_fused),
        judged=np.concatenate(judged),
        feature_names=hybrid.feature_names,
    )


def _plain_outcomes(
    hybrid: HybridSearch,
    variant: str,
    groups: list[_Group],
    views: list[QueryView],
    k_max: int,
) -> Iterator[QueryOutcome]:
    for group, view in zip(groups, views, strict=True):
        grades = group.grades.astype(np.float64)
        if variant == "bm25":
            assert view.bm25 is not None  # noqa: S101 - variant only runs with BM25
            scores = view.bm25[group.items].astype(np.float64)
            retrieved = view.lexical[:k_max]
        elif variant == "dense":
            scores = hybrid.dense.vectors[group.items] @ view.query_vector  # type: ignore[union-attr]
            retrieved = view.semantic[:k_max]
        else:
            scores = hybrid.rank(view, group.items)
            retrieved = view.fused[:k_max]
        yield _outcome(group.items, grades, scores, retrieved)


def _reranked_outcomes(
    groups: list[_Group], rows: _Rows, scores: np.ndarray[Any, np.dtype[np.float64]], k_max: int
) -> Iterator[QueryOutcome]:
    for number, group in enumerate(groups):
        mine = rows.groups == number
        judged = mine.copy()
        judged[np.flatnonzero(mine)[group.items.size :]] = False
        candidates = mine & rows.in_fused
        order = np.lexsort((rows.items[candidates], -scores[candidates]))[:k_max]
        yield _outcome(
            group.items,
            group.grades.astype(np.float64),
            scores[judged],
            rows.items[candidates][order],
        )


def _outcome(
    items: np.ndarray[Any, np.dtype[np.int64]],
    grades: np.ndarray[Any, np.dtype[np.float64]],
    scores: Any,
    retrieved: np.ndarray[Any, np.dtype[np.int64]],
) -> QueryOutcome:
    order = np.lexsort((items, -np.asarray(scores, dtype=np.float64)))
    lookup = dict(zip(items.tolist(), grades.tolist(), strict=True))
    return QueryOutcome(
        reranked=grades[order].tolist(),
        retrieved=[lookup.get(int(item), 0.0) for item in retrieved],
        judged=grades.tolist(),
    )


def _cross_validated(
    ctx: StageContext, rows: _Rows, trainable: np.ndarray[Any, np.dtype[np.bool_]]
) -> tuple[np.ndarray[Any, np.dtype[np.float64]], SearchReranker | None]:
    """Out-of-fold scores of every row: folds by query, fitted on trainable rows only.

    Also returns the last fold's model (what the served ranker costs per query is
    timed on it before the pick).
    """
    folds = query_folds(rows.groups, ctx.config.search.folds, seed=ctx.config.seed)
    scores = np.zeros(rows.grades.size, dtype=np.float64)
    model: SearchReranker | None = None
    for fold in np.unique(folds):
        held_out = folds == fold
        fit = ~held_out & trainable
        if not rows.grades[fit].any():
            continue
        model = _reranker(ctx, rows, fit).fit(
            rows.features[fit], rows.grades[fit], rows.groups[fit], rows.weights[fit]
        )
        scores[held_out] = model.predict(rows.features[held_out])
    return scores, model


def _reranker(
    ctx: StageContext, rows: _Rows, fit: np.ndarray[Any, np.dtype[np.bool_]]
) -> SearchReranker:
    """LambdaMART with strong regularisation: a few hundred queries are easy to overfit.

    Chosen by cross-validation on CrowdFlower (benchmarks/RESULTS.md): small trees,
    many rows per leaf (scaled down for small label sets), bagging, L2.
    """
    n_rows = int(fit.sum())
    return SearchReranker(
        feature_names=rows.feature_names,
        label_gain=default_label_gain(max(int(rows.grades.max()), 1)),
        seed=ctx.config.seed,
        num_boost_round=300,
        params={
            "num_leaves": 7,
            "min_data_in_leaf": max(5, min(100, n_rows // 100)),
            "learning_rate": 0.03,
            "feature_fraction": 0.7,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "lambda_l2": 10.0,
        },
    )


def _served(hybrid: HybridSearch, variant: str, reranker: SearchReranker | None) -> HybridSearch:
    """The served model for the chosen variant (one retriever alone is a hybrid of one).

    Feature encoders only feed the re-ranker: without one they are dropped, so serving
    does not encode each query for nothing.
    """
    if variant == "bm25":
        parts: dict[str, Any] = {"lexical": hybrid.lexical, "dense": None}
    elif variant == "dense":
        parts = {"lexical": None, "dense": hybrid.dense}
    else:
        parts = {"lexical": hybrid.lexical, "dense": hybrid.dense}
    extras = hybrid.extras if reranker is not None else ()
    return hybrid.replace(**parts, reranker=reranker, extras=extras)


__all__ = ["MODEL_DIR", "PER_QUERY_FILE", "REPORT_FILE", "VARIANTS", "run"]
