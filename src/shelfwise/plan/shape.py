"""What the plan looks at: the data's shape (from the features folder) and the machine.

Everything here is read from files the features stage wrote, without loading the
interactions: the train matrix's row pointers, the sequences' row pointers, the catalog's
text columns (lengths only) and the manifest's counts. At 10M events that is under a
second and a few hundred MB (the train CSR itself).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import psutil

from shelfwise._internal.artifacts import read_manifest
from shelfwise.config import ShelfwiseConfig

GIB = 2**30
# A byte-pair token covers about four bytes of English product text; CJK text has about
# one token per character (three bytes), so bytes / 4 undercounts it by at most 25%.
BYTES_PER_TOKEN = 4.0


@dataclass(frozen=True)
class DataShape:
    """The sizes every choice of the plan depends on.

    Attributes:
        n_users: users in the id map (rows of every matrix).
        n_items: catalog items (columns).
        n_events: interaction rows, every split.
        train_events: train interaction rows.
        train_nnz: distinct (user, item) pairs of the train matrix.
        train_users: users with at least one train pair.
        pair_count: Σ over users of (train pairs)²: the item pairs that co-occur, an
            upper bound on the entries of the item-item Gram matrix (kNN, RP3beta, GF-CF).
        max_sequence: the longest train sequence.
        mean_sequence: mean train sequence length over users with one.
        users_with_two: users with at least two ordered train events (SASRec learns
            from these).
        valid_users: users with a validation target.
        test_users: users with a test target.
        text_items: items with text in the dense search fields.
        distinct_texts: distinct item texts (identical texts are encoded once).
        text_bytes: UTF-8 bytes of the distinct texts, each cut as dense search cuts it.
        title_bytes: UTF-8 bytes of the distinct titles (title vectors are encoded too).
        labelled_queries: distinct labelled queries.
        search_events: events that came from a search.
    """

    n_users: int
    n_items: int
    n_events: int
    train_events: int
    train_nnz: int
    train_users: int
    pair_count: int
    max_sequence: int
    mean_sequence: float
    users_with_two: int
    valid_users: int
    test_users: int
    text_items: int
    distinct_texts: int
    text_bytes: int
    title_bytes: int
    labelled_queries: int
    search_events: int

    @property
    def density(self) -> float:
        """Share of (user, item) cells with a train pair."""
        return self.train_nnz / max(self.n_users * self.n_items, 1)

    @property
    def text_tokens(self) -> int:
        """Estimated encoder tokens of the distinct item texts (bytes / 4)."""
        return int(self.text_bytes / BYTES_PER_TOKEN)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON, with the derived sizes."""
        return {
            **asdict(self),
            "density": self.density,
            "text_tokens": self.text_tokens,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> DataShape:
        """Read what `to_json` wrote (derived keys ignored)."""
        names = cls.__dataclass_fields__
        return cls(**{key: item for key, item in value.items() if key in names})


@dataclass(frozen=True)
class Resources:
    """What the run may use on this machine.

    Attributes:
        memory_bytes: the config's `plan.memory_gb`, else the cgroup limit or the RAM.
        cores: the config's `plan.cores`, else the CPUs this process may run on.
    """

    memory_bytes: int
    cores: int

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (the memory also in GiB, for people)."""
        return {**asdict(self), "memory_gb": round(self.memory_bytes / GIB, 1)}


def detect_resources(config: ShelfwiseConfig) -> Resources:
    """The machine's memory and cores, unless the config's `plan:` section fixes them."""
    memory = (
        int(config.plan.memory_gb * GIB) if config.plan.memory_gb is not None else _machine_memory()
    )
    cores = config.plan.cores if config.plan.cores is not None else _machine_cores()
    return Resources(memory_bytes=memory, cores=cores)


def _machine_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _machine_memory() -> int:
    """RAM, or a container's cgroup limit when lower (what a Kubernetes pod really has)."""
    total = int(psutil.virtual_memory().total)
    for path in (
        Path("/sys/fs/cgroup/memory.max"),
        Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
    ):
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


def measure_shape(features: Path, config: ShelfwiseConfig) -> DataShape:
    """Read the data's shape from a features folder (see the module docstring)."""
    manifest = read_manifest(features)
    counts = manifest.row_counts
    eval_users = manifest.extra.get("eval_users", {})
    with np.load(features / "train.npz", allow_pickle=False) as train:
        # CSR row pointers only: the pairs per user, without the values
        indptr = train["indptr"].astype(np.int64)
    row_sizes = np.diff(indptr)
    with np.load(features / "train_seq.npz", allow_pickle=False) as sequences:
        lengths = np.diff(sequences["indptr"].astype(np.int64))
    with_sequence = lengths[lengths > 0]
    texts = _text_sizes(features / "items.parquet", config)
    queries = pl.scan_parquet(features / "queries.parquet")
    labelled = (
        int(queries.select(pl.first().n_unique()).collect().item() or 0)
        if _has_rows(features / "queries.parquet")
        else 0
    )
    return DataShape(
        n_users=int(counts.get("users", row_sizes.size)),
        n_items=int(counts.get("items", 0)),
        n_events=int(counts.get("interactions", 0)),
        train_events=int(counts.get("train_events", 0)),
        train_nnz=int(indptr[-1]) if indptr.size else 0,
        train_users=int((row_sizes > 0).sum()),
        pair_count=int(np.square(row_sizes, dtype=np.float64).sum()),
        max_sequence=int(lengths.max(initial=0)),
        mean_sequence=float(with_sequence.mean()) if with_sequence.size else 0.0,
        users_with_two=int((lengths >= 2).sum()),
        valid_users=int(eval_users.get("valid", 0)),
        test_users=int(eval_users.get("test", 0)),
        labelled_queries=labelled,
        search_events=int(counts.get("search_events", 0)),
        **texts,
    )


def _has_rows(path: Path) -> bool:
    return path.is_file() and pl.scan_parquet(path).select(pl.len()).collect().item() > 0


def _text_sizes(items: Path, config: ShelfwiseConfig) -> dict[str, int]:
    """Items with text in the dense fields, their distinct texts and bytes (lazily)."""
    dense = config.models.dense
    columns = pl.scan_parquet(items).collect_schema().names()
    fields = [name for name in dense.fields if name in columns]
    if not fields:
        return {"text_items": 0, "distinct_texts": 0, "text_bytes": 0, "title_bytes": 0}
    # Whitespace is collapsed and fields joined by newlines before the cut, as dense
    # search does; close enough for a cost estimate.
    cleaned = [
        pl.col(name).cast(pl.String).str.replace_all(r"\s+", " ").str.strip_chars()
        for name in fields
    ]
    joined = (
        pl.concat_str(
            [pl.when(c.str.len_chars() > 0).then(c) for c in cleaned],
            separator="\n",
            ignore_nulls=True,
        )
        .str.slice(0, dense.max_chars)
        .alias("text")
    )
    frame = pl.scan_parquet(items).select(joined).filter(pl.col("text").str.len_chars() > 0)
    distinct = frame.unique()
    summary = distinct.select(pl.len().alias("n"), pl.col("text").str.len_bytes().sum().alias("b"))
    text_items = int(frame.select(pl.len()).collect().item())
    row = summary.collect().row(0)
    title_bytes = 0
    if "title" in fields and len(fields) > 1:
        title_bytes = int(
            pl.scan_parquet(items)
            .select(pl.col("title").cast(pl.String).str.slice(0, dense.max_chars))
            .drop_nulls()
            .unique()
            .select(pl.col("title").str.len_bytes().sum())
            .collect()
            .item()
            or 0
        )
    return {
        "text_items": text_items,
        "distinct_texts": int(row[0] or 0),
        "text_bytes": int(row[1] or 0),
        "title_bytes": title_bytes,
    }
