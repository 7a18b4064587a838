"""The run report: `runs/<run_id>/report.html`, one static page that opens offline.

`write_report(run_dir)` reads the run folder's stage outputs (validation counts,
metrics, AutoML trials, click model curves, search results, the gate decision,
bundle sizes, the compression table), draws the plots with matplotlib and writes a
single HTML file with the images embedded. Sections whose input is missing say
"not run"; the rest still renders.
"""

from __future__ import annotations

from shelfwise.report._write import REPORT_FILE, SECTION_TITLES, write_report

__all__ = ["REPORT_FILE", "SECTION_TITLES", "write_report"]
