"""Wide rows (catalog descriptions) make smaller batches: memory per batch is capped.

Issue 13: 250,000 catalog rows with descriptions were 70 MB a batch, so ingest's peak
grew with the catalog; batches now hold at most `batch_rows` rows and about 16 MiB.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from shelfwise.config import SourceConfig
from shelfwise.contracts import ROW_NUMBER
from shelfwise.ingest._source import _BATCH_MEMORY, SourceStream


def test_wide_rows_are_cut_into_batches_of_bounded_memory(tmp_path: Path) -> None:
    rows = 60
    catalog = pl.DataFrame(
        {
            "item_id": [f"i{n}" for n in range(rows)],
            # three distinct texts: dictionary-encoded, the file holds them once, while
            # memory holds every row's copy (~24 MB)
            "description": ["x" * 400_000 + str(n % 3) for n in range(rows)],
        }
    )
    path = tmp_path / "catalog.parquet"
    catalog.write_parquet(path, row_group_size=rows)  # one row group, small when encoded
    stream = SourceStream(SourceConfig(path=str(path)), "catalog", batch_rows=1_000)
    batches = [batch.data for batch in stream if batch.data.height]
    assert len(batches) >= 2
    assert all(batch.estimated_size() <= 1.1 * _BATCH_MEMORY for batch in batches)
    together = pl.concat(batches)
    assert together[ROW_NUMBER].to_list() == list(range(1, rows + 1))  # none lost
    assert stream.rows == rows
    assert stream.parse_rejected == 0
