"""validate: ingested tables -> typed, checked tables plus a quarantine and a report.

`run(ctx)` reads ingest's parts batch by batch, casts every column to the contract
schemas in `shelfwise.contracts`, rejects rows that fail a check (each with a
`QuarantineReason` code: missing or NA ids, over-long text, bad values, duplicates,
unknown items), merges exact duplicate catalog rows, derives a catalog from the events
when none is configured, and stops the run with `RejectedShareError` when a source
rejects more than `data.max_rejected_share` of its rows, or `RowDropError` when it
shrank sharply since the last complete run. Cross-row checks run over hash buckets
on disk, so memory does not grow with the input. `validate_frames` is the same logic
over DataFrames in memory. See docs/data.md for every check and reason code.
"""

from __future__ import annotations

from shelfwise.validate._core import ValidationResult, validate_frames
from shelfwise.validate._report import report_table
from shelfwise.validate.stage import QUARANTINE_FILE, REJECTED_DIR, REPORT_FILE, run

__all__ = [
    "QUARANTINE_FILE",
    "REJECTED_DIR",
    "REPORT_FILE",
    "ValidationResult",
    "report_table",
    "run",
    "validate_frames",
]
