"""The features stage (see the package docstring for its outputs)."""

from __future__ import annotations

from dataclasses import asdict

import polars as pl

from shelfwise._internal.artifacts import atomic_write_json, write_csr, write_parquet
from shelfwise._internal.matrices import sequences, target_matrix, weighted_matrix
from shelfwise._internal.stage import StageContext, StageResult
from shelfwise.contracts import (
    EVENT_TYPE,
    ITEM_INDEX,
    POSITION,
    QUERY,
    RAW_ITEM_ID,
    RAW_USER_ID,
    RELEVANCE,
    ROW_NUMBER,
    SPLIT,
    TIMESTAMP,
    USER_INDEX,
    WEIGHT,
    SplitName,
)
from shelfwise.features.split import assign_split


def run(ctx: StageContext) -> StageResult:
    """Build id maps, the split and the matrices from the validated snapshot."""
    source = ctx.inputs["validate"]
    catalog = pl.read_parquet(source / "catalog.parquet")
    events = pl.read_parquet(source / "events.parquet")
    queries = pl.read_parquet(source / "queries.parquet")

    items = catalog.with_row_index(ITEM_INDEX).with_columns(pl.col(ITEM_INDEX).cast(pl.Int64))
    item_ids = items.select(RAW_ITEM_ID, ITEM_INDEX)
    users = (
        events.select(RAW_USER_ID)
        .unique()
        .sort(RAW_USER_ID)
        .with_row_index(USER_INDEX)
        .with_columns(pl.col(USER_INDEX).cast(pl.Int64))
        .select(USER_INDEX, RAW_USER_ID)
    )
    weights = {str(kind): float(w) for kind, w in ctx.config.models.event_weights.items()}
    interactions = (
        events.with_row_index(ROW_NUMBER)
        .join(users, on=RAW_USER_ID, how="left")
        .join(item_ids, on=RAW_ITEM_ID, how="left")
        .with_columns(
            pl.col(EVENT_TYPE).replace_strict(weights, default=0.0).cast(pl.Float32).alias(WEIGHT)
        )
    )
    interactions, split_info = assign_split(interactions, ctx.config.split, seed=ctx.config.seed)
    search_events = _search_events(interactions)
    # user, then time, then input order: the order sequences are read in
    interactions = interactions.sort(USER_INDEX, TIMESTAMP, ROW_NUMBER).select(
        USER_INDEX, ITEM_INDEX, EVENT_TYPE, TIMESTAMP, WEIGHT, SPLIT
    )

    n_users, n_items = users.height, items.height
    half_life = ctx.config.models.time_decay_half_life_days
    split_sets = {
        "train": (SplitName.TRAIN.value,),
        "train_valid": (SplitName.TRAIN.value, SplitName.VALID.value),
        "full": tuple(name.value for name in SplitName),
    }
    matrices = {
        name: weighted_matrix(
            interactions, n_users, n_items, splits=chosen, half_life_days=half_life
        )
        for name, chosen in split_sets.items()
    }
    for name, chosen in split_sets.items():
        sequences(interactions, n_users, splits=chosen).save(ctx.out / f"{name}_seq.npz")
    matrices["valid_targets"] = target_matrix(
        interactions, matrices["train"], split=SplitName.VALID.value
    )
    matrices["test_targets"] = target_matrix(
        interactions, matrices["train_valid"], split=SplitName.TEST.value
    )

    labelled = (
        queries.join(item_ids, on=RAW_ITEM_ID, how="inner")
        .select(QUERY, ITEM_INDEX, RELEVANCE)
        .sort(QUERY, ITEM_INDEX)
    )

    write_parquet(items, ctx.out / "items.parquet")
    write_parquet(users, ctx.out / "users.parquet")
    write_parquet(interactions, ctx.out / "interactions.parquet")
    write_parquet(labelled, ctx.out / "queries.parquet")
    write_parquet(search_events, ctx.out / "search_events.parquet")
    for name, matrix in matrices.items():
        write_csr(ctx.out / f"{name}.npz", matrix)
    atomic_write_json(ctx.out / "split.json", asdict(split_info))

    eval_users = {
        name: int((matrices[f"{name}_targets"].getnnz(axis=1) > 0).sum())
        for name in ("valid", "test")
    }
    counts = split_info.counts
    return StageResult(
        row_counts={
            "items": n_items,
            "users": n_users,
            "interactions": interactions.height,
            **{f"{name}_events": count for name, count in counts.items()},
            "queries": labelled.height,
            "search_events": search_events.height,
        },
        extra={"split": asdict(split_info), "eval_users": eval_users},
        summary=(
            f"{n_users:,} users × {n_items:,} items; split {split_info.method}: "
            f"train {counts['train']:,} / valid {counts['valid']:,} / "
            f"test {counts['test']:,} events"
        ),
    )


def _search_events(interactions: pl.DataFrame) -> pl.DataFrame:
    """Events that came from a search (non-empty query): the search re-ranker's labels."""
    position = (
        pl.col(POSITION).cast(pl.Int64)
        if POSITION in interactions.columns
        else pl.lit(None, dtype=pl.Int64).alias(POSITION)
    )
    if QUERY not in interactions.columns:
        return pl.DataFrame(
            schema={
                USER_INDEX: pl.Int64,
                ITEM_INDEX: pl.Int64,
                EVENT_TYPE: pl.String,
                TIMESTAMP: pl.Int64,
                QUERY: pl.String,
                POSITION: pl.Int64,
                SPLIT: pl.String,
            }
        )
    return (
        interactions.filter(pl.col(QUERY).str.strip_chars().str.len_chars() > 0)
        .sort(TIMESTAMP, ROW_NUMBER)
        .select(USER_INDEX, ITEM_INDEX, EVENT_TYPE, TIMESTAMP, QUERY, position, SPLIT)
    )
