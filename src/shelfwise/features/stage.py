"""The features stage (see the package docstring for its outputs).

Memory: events are read a record batch at a time into compact numeric columns
(`_stream`); the peak holds those columns (about 30 bytes an event), one sorted copy,
and the matrices being built, so it grows with the outputs rather than with the input's
strings (10M generated events: 4.5 GB before, see benchmarks/RESULTS.md for after).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Final

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import scipy.sparse as sp

from shelfwise._internal.artifacts import (
    atomic_write_json,
    fsync_path,
    write_csr,
    write_parquet,
)
from shelfwise._internal.matrices import sequences, target_matrix, weighted_matrix
from shelfwise._internal.stage import StageContext, StageResult
from shelfwise.config import ShelfwiseConfig
from shelfwise.contracts import (
    EVENT_TYPE,
    ITEM_INDEX,
    POSITION,
    QUERY,
    RAW_ITEM_ID,
    RELEVANCE,
    ROW_NUMBER,
    SPLIT,
    TIMESTAMP,
    USER_INDEX,
    WEIGHT,
    SplitName,
)
from shelfwise.features._stream import BATCH_ROWS, read_compact, user_ids
from shelfwise.features.sessions import write_session_files
from shelfwise.features.split import assign_split

WRITE_ROWS: Final = 1_000_000  # interactions written a slice (one row group) at a time
# `<split>_targets_all.npz`: targets with items already in the history kept (repeats)
ALL_TARGETS_SUFFIX: Final = "_all"


def run(ctx: StageContext) -> StageResult:
    """Build id maps, the split and the matrices from the validated snapshot."""
    return build_features(ctx.config, ctx.inputs["validate"], ctx.out)


def build_features(
    config: ShelfwiseConfig, source: Path, out: Path, *, batch_rows: int = BATCH_ROWS
) -> StageResult:
    """Write the features of validate's folder `source` into `out`.

    Args:
        config: the run's config (split, seed, event weights, time decay).
        source: validate's folder.
        out: the folder to write into.
        batch_rows: events read at once; any value gives the same files.
    """
    catalog = pl.read_parquet(source / "catalog.parquet")
    queries = pl.read_parquet(source / "queries.parquet")
    items = catalog.with_row_index(ITEM_INDEX).with_columns(pl.col(ITEM_INDEX).cast(pl.Int64))
    item_ids = items.select(RAW_ITEM_ID, ITEM_INDEX)
    users = user_ids(source / "events.parquet")
    weights = {str(kind): float(w) for kind, w in config.models.event_weights.items()}
    compact = read_compact(
        source / "events.parquet",
        users,
        item_ids,
        weights,
        keep_split=config.split.method == "given",
        keep_sessions=config.split.method in ("session", "last_basket"),
        batch_rows=batch_rows,
    )
    interactions, split_info = assign_split(compact.frame, config.split, seed=config.seed)
    if config.split.method == "session":  # each split's sessions, one row each
        write_session_files(interactions, out)
    search_events = (
        compact.search.join(interactions.select(ROW_NUMBER, SPLIT), on=ROW_NUMBER, how="left")
        .sort(TIMESTAMP, ROW_NUMBER)
        .select(
            USER_INDEX,
            ITEM_INDEX,
            EVENT_TYPE,
            TIMESTAMP,
            QUERY,
            POSITION,
            pl.col(SPLIT).cast(pl.String),
        )
    )
    del compact
    # user, then time, then input order: the order sequences are read in
    interactions = interactions.sort(USER_INDEX, TIMESTAMP, ROW_NUMBER).select(
        USER_INDEX, ITEM_INDEX, EVENT_TYPE, TIMESTAMP, WEIGHT, SPLIT
    )

    n_users, n_items = users.height, items.height
    half_life = config.models.time_decay_half_life_days
    split_sets = {
        "train": (SplitName.TRAIN.value,),
        "train_valid": (SplitName.TRAIN.value, SplitName.VALID.value),
        "full": tuple(name.value for name in SplitName),
    }
    # One matrix in memory at a time: written as soon as it is built, then only the two
    # the targets subtract are kept.
    for name, chosen in split_sets.items():
        sequences(interactions, n_users, splits=chosen).save(out / f"{name}_seq.npz")
    histories = {}
    for name, chosen in split_sets.items():
        matrix = weighted_matrix(
            interactions, n_users, n_items, splits=chosen, half_life_days=half_life
        )
        write_csr(out / f"{name}.npz", matrix)
        if name != "full":
            histories[name] = matrix
    targets = {
        "valid": target_matrix(interactions, histories["train"], split=SplitName.VALID.value),
        "test": target_matrix(interactions, histories["train_valid"], split=SplitName.TEST.value),
    }
    # The same targets with repeats kept (items the user already has): what evaluation
    # counts when the repeat policy lets lists hold them (issue 15). Never dropped
    # silently: how many the repeat-free targets leave out is in the manifest.
    nothing_seen = sp.csr_matrix((n_users, n_items), dtype=np.float32)
    repeat_targets: dict[str, int] = {}
    for name in ("valid", "test"):
        split_name = SplitName.VALID.value if name == "valid" else SplitName.TEST.value
        every = target_matrix(interactions, nothing_seen, split=split_name)
        write_csr(out / f"{name}_targets{ALL_TARGETS_SUFFIX}.npz", every)
        repeat_targets[name] = int(every.nnz - targets[name].nnz)
    del histories
    for name, matrix in targets.items():
        write_csr(out / f"{name}_targets.npz", matrix)

    labelled = (
        queries.join(item_ids, on=RAW_ITEM_ID, how="inner")
        .select(QUERY, ITEM_INDEX, RELEVANCE)
        .sort(QUERY, ITEM_INDEX)
    )
    write_parquet(items, out / "items.parquet")
    write_parquet(users, out / "users.parquet")
    _write_interactions(interactions, out / "interactions.parquet")
    write_parquet(labelled, out / "queries.parquet")
    write_parquet(search_events, out / "search_events.parquet")
    atomic_write_json(out / "split.json", asdict(split_info))

    eval_users = {name: int((matrix.getnnz(axis=1) > 0).sum()) for name, matrix in targets.items()}
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
        extra={
            "split": asdict(split_info),
            "eval_users": eval_users,
            "repeat_targets": repeat_targets,
        },
        summary=(
            f"{n_users:,} users × {n_items:,} items; split {split_info.method}: "
            f"train {counts['train']:,} / valid {counts['valid']:,} / "
            f"test {counts['test']:,} events"
        ),
    )


def _write_interactions(interactions: pl.DataFrame, path: Path) -> None:
    """Write the sorted interactions a slice at a time, in the published dtypes.

    Indices as Int64 and types and splits as strings are what readers of
    `interactions.parquet` get; converting a slice at a time keeps those wide columns
    out of memory for all events at once.
    """
    published = [
        pl.col(USER_INDEX).cast(pl.Int64),
        pl.col(ITEM_INDEX).cast(pl.Int64),
        pl.col(EVENT_TYPE).cast(pl.String),
        pl.col(TIMESTAMP),
        pl.col(WEIGHT),
        pl.col(SPLIT).cast(pl.String),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    first = interactions.head(0).select(published).to_arrow()
    with pq.ParquetWriter(tmp, first.schema, compression="zstd") as writer:
        for start in range(0, max(interactions.height, 1), WRITE_ROWS):
            part = interactions.slice(start, WRITE_ROWS).select(published).to_arrow()
            writer.write_table(part.cast(first.schema))
    fsync_path(tmp)
    tmp.replace(path)
