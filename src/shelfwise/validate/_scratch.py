"""Validate's bucket files: written once in pieces, read once whole, then deleted.

Why Arrow IPC streams and not Parquet: a Parquet writer keeps every row group's
metadata in memory until it closes the file, and a bucket gets one small row group
per input batch. With buckets growing with the source (`_engine.bucket_count`) and
batches too, that memory grew with the square of the rows: ~5 KB per row group,
150 writers x 300 batches held 234 MB (measured), which is what made validate's
peak at 30M events 1.28x the 1M peak (benchmarks/RESULTS.md). An IPC *stream* has no
footer, so a writer holds nothing of what it wrote; uncompressed, its pages are as
cheap to write as the plain Parquet pages they replace.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import polars as pl
import pyarrow as pa


class ScratchFile:
    """Append DataFrames to one Arrow IPC stream file, with the first frame's schema.

    Use as a context manager; on exit the file is complete (an empty stream with the
    schema when only empty frames were written; no file when nothing was).
    """

    def __init__(self, path: Path) -> None:
        """Nothing is opened until the first frame."""
        self.path = path
        self.rows = 0
        self._schema: dict[str, pl.DataType] | None = None
        self._sink: pa.OSFile | None = None
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None
        self._arrow_schema: pa.Schema | None = None

    def __enter__(self) -> ScratchFile:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return self

    def write(self, frame: pl.DataFrame) -> None:
        """Append `frame` (cast to the first frame's schema)."""
        if self._schema is None:
            self._schema = dict(frame.schema)
        if frame.is_empty():
            return
        table = frame.cast(self._schema).to_arrow()  # type: ignore[arg-type]
        if self._writer is None:
            self._arrow_schema = table.schema
            self._sink = pa.OSFile(str(self.path), "wb")
            self._writer = pa.ipc.new_stream(self._sink, table.schema)
        else:
            table = table.cast(self._arrow_schema)
        self._writer.write_table(table)
        self.rows += frame.height

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._writer is not None and self._sink is not None:
            self._writer.close()
            self._sink.close()
        elif exc_type is None and self._schema is not None:
            pl.DataFrame(schema=self._schema).write_ipc_stream(self.path)


def read_scratch(path: Path, columns: list[str] | None = None) -> pl.DataFrame:
    """A bucket file written by `ScratchFile`, whole (or `columns` of it)."""
    return pl.read_ipc_stream(path, columns=columns)
