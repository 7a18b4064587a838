"""validate: ingested tables -> typed, checked tables plus a quarantine and a report.

`run(ctx)` casts every column to the contract schemas in `shelfwise.contracts`,
rejects rows that fail a check (each with a `QuarantineReason` code), merges exact
duplicate catalog rows, derives a catalog from the events when none is configured,
and stops the run with `RejectedShareError` when a source rejects more than
`data.max_rejected_share` of its rows. `validate_frames` is the same logic without
IO. See docs/data.md for every check and reason code.
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
