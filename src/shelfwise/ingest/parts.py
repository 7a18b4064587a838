"""Parquet written and read batch by batch: the ingest folder's layout and its writer.

ingest writes each source as a folder of part files (`<kind>/part-000000.parquet`,
one per batch): the parts of a JSON-lines or Parquet source may differ in column
types, which one Parquet file cannot hold, and validate casts each part on its own.
`ParquetAppender` writes one Parquet file row group by row group (the quarantine,
and validate's contract tables), so neither stage holds a whole table.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Final

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

PART_GLOB: Final = "part-*.parquet"


def part_path(folder: Path, index: int) -> Path:
    """The path of part `index` of a source folder."""
    return folder / f"part-{index:06d}.parquet"


def read_parts(folder: Path) -> Iterator[pl.DataFrame]:
    """The parts of a source folder in order (nothing when the folder is missing)."""
    if not folder.is_dir():
        return
    for path in sorted(folder.glob(PART_GLOB)):
        yield pl.read_parquet(path)


class ParquetAppender:
    """Append DataFrames to one Parquet file as row groups, with one fixed schema.

    Args:
        path: the file to write (its folder is created).
        schema: the polars schema; every frame is cast to it. None: the first frame's.

    Use as a context manager; on exit the file is complete (an empty table with the
    schema when nothing was appended and a schema is known). Each `write` is one row
    group, whose metadata (~5 KB) the writer holds until it closes: fine for one output
    file; many files fed small batches at once are Arrow IPC streams instead
    (`validate/_scratch.py`).
    """

    def __init__(self, path: Path, schema: dict[str, pl.DataType] | None = None) -> None:
        self.path = path
        self.schema = schema
        self.rows = 0
        self.row_groups = 0
        self._writer: pq.ParquetWriter | None = None
        self._arrow_schema: pa.Schema | None = None

    def __enter__(self) -> ParquetAppender:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return self

    def write(self, frame: pl.DataFrame) -> None:
        """Append `frame` (nothing happens for an empty one, except fixing the schema)."""
        if self.schema is None:
            self.schema = dict(frame.schema)
        if frame.is_empty():
            return
        table = frame.select(
            [pl.col(name).cast(dtype) for name, dtype in self.schema.items()]
        ).to_arrow()
        if self._writer is None:
            self._arrow_schema = table.schema
            self._writer = pq.ParquetWriter(self.path, table.schema, compression="zstd")
        else:
            table = table.cast(self._arrow_schema)
        self._writer.write_table(table)
        self.rows += frame.height
        self.row_groups += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._writer is not None:
            self._writer.close()
        elif exc_type is None and self.schema is not None:
            pl.DataFrame(schema=self.schema).write_parquet(self.path)
