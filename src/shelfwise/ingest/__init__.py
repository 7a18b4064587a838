"""ingest: raw catalog, events and labelled queries -> Parquet with shelfwise columns.

`run(ctx)` reads every configured source (`data.catalog`, `data.events`,
`data.queries`) in its format (csv, tsv, parquet, jsonl, RecBole atomic files,
sequence files; any of them gzipped), renames columns to the names in
`shelfwise.contracts` and writes one Parquet file per source plus the rows that could
not be parsed (`quarantine.parquet`). Values stay as read; `validate` casts them.
See docs/data.md for formats, aliases and reason codes.
"""

from __future__ import annotations

from shelfwise.ingest._mapping import ALIASES, SourceKind
from shelfwise.ingest.stage import INGEST_META, SourceRead, read_source, read_source_detailed, run

__all__ = [
    "ALIASES",
    "INGEST_META",
    "SourceKind",
    "SourceRead",
    "read_source",
    "read_source_detailed",
    "run",
]
