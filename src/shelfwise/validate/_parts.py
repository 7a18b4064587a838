"""ingest's part files as validate reads them: slices of about `BATCH_BYTES` each.

Both engines cut the parts the same way, so every slice, its first sequence number and
hence every check gives the same rows: locally the driver reads the parts in order
(`read_slices`); with `compute.engine: ray` each part file is one block of a Ray Data
dataset (`part_blocks`: the file and the sequence number of its first row, from the
Parquet footers), read and sliced where it runs (`file_slices`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import polars as pl
import pyarrow.parquet as pq

from shelfwise.ingest.parts import PART_GLOB, read_parts

# In-memory size of one batch as read. Typed copies and checks take about 3x more:
# at 64 MiB, 30M events validated in 596 MB peak, but the widest catalog batches set
# the peak (measured: benchmarks/ingest_memory.py, RESULTS.md).
BATCH_BYTES: Final = 32 << 20

PartBlock = tuple[str, int]  # a part file and the sequence number of its first row


def sliced(parts: Iterator[pl.DataFrame]) -> Iterator[pl.DataFrame]:
    """Parts cut to about `BATCH_BYTES` in memory: a part of wide rows (catalog
    descriptions) is checked in slices, whatever batch size ingest wrote it with."""
    for part in parts:
        pieces = max(1, math.ceil(part.estimated_size() / BATCH_BYTES))
        step = max(1, math.ceil(part.height / pieces))
        for start in range(0, max(part.height, 1), step):
            yield part.slice(start, step)


def read_slices(folder: Path) -> Iterator[pl.DataFrame]:
    """A source folder's parts, in order, as slices (the local engine's reading)."""
    return sliced(read_parts(folder))


def part_files(folder: Path) -> list[Path]:
    """A source folder's part files in order (those `read_parts` reads)."""
    return sorted(folder.glob(PART_GLOB)) if folder.is_dir() else []


def part_blocks(files: list[Path]) -> list[PartBlock]:
    """Each part file with the sequence number of its first row (its footer's counts)."""
    blocks: list[PartBlock] = []
    first = 0
    for path in files:
        blocks.append((str(path), first))
        first += pq.read_metadata(path).num_rows
    return blocks


def file_slices(block: PartBlock) -> Iterator[tuple[int, pl.DataFrame]]:
    """A part file's slices, each with the sequence number of its first row."""
    path, sequence = block
    for raw in sliced(iter([pl.read_parquet(path)])):
        yield sequence, raw
        sequence += raw.height
