"""ingest: raw catalog, events and labelled queries -> Parquet with shelfwise columns.

`run(ctx)` streams every configured source (`data.catalog`, `data.events`,
`data.queries`) in its format (csv, tsv, parquet, jsonl, RecBole atomic files,
sequence files; any of them gzipped; UTF-8, UTF-16, GB18030, cp1252 or Latin-1),
renames columns to the names in `shelfwise.contracts` and writes each source as
Parquet parts of `data.batch_rows` rows plus the rows that could not be parsed
(`quarantine.parquet`), so memory does not grow with the input. A cut or corrupt
file stops the run (`input-damaged`) unless `data.allow_partial_files` is set.
Values stay as read; `validate` casts them. See docs/data.md for formats, aliases
and reason codes.
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
