"""The validation report as a rich table, and the message of a failed threshold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

_TOP_REASONS = 3


def report_table(report: dict[str, Any]) -> Table:
    """Render a `report.json` dict as a table: one row per source.

    Sources above `max_rejected_share` are shown in red.
    """
    threshold = float(report.get("max_rejected_share", 1.0))
    table = Table(title="Validation", title_justify="left")
    for header in ("Source", "Rows in", "Accepted", "Quarantined", "Merged", "Rejected"):
        table.add_column(header, justify="left" if header == "Source" else "right")
    table.add_column("Top reasons")
    for kind, counts in report.get("sources", {}).items():
        share = float(counts["rejected_share"])
        table.add_row(
            kind,
            f"{counts['rows_in']:,}",
            f"{counts['accepted']:,}",
            f"{counts['quarantined']:,}",
            f"{counts.get('merged', 0):,}",
            f"{share:.2%}",
            _top_reasons(counts.get("by_reason", {})),
            style="red" if share > threshold else None,
        )
    if report.get("catalog_derived"):
        table.add_row(
            "catalog",
            "-",
            f"{report.get('catalog_items', 0):,}",
            "-",
            "-",
            "-",
            "derived from events",
            style="dim",
        )
    notes = [f"threshold {threshold:.2%} (data.max_rejected_share)"]
    notes += [f"warning: {warning}" for warning in report.get("warnings", [])]
    table.caption = "\n".join(notes)
    table.caption_justify = "left"
    return table


def _top_reasons(by_reason: dict[str, int]) -> str:
    ranked = sorted(by_reason.items(), key=lambda item: (-item[1], item[0]))
    shown = [f"{reason} {count:,}" for reason, count in ranked[:_TOP_REASONS]]
    if len(ranked) > _TOP_REASONS:
        shown.append(f"+{len(ranked) - _TOP_REASONS} more")
    return ", ".join(shown) or "-"


def threshold_message(report: dict[str, Any], quarantine_path: Path) -> str:
    """Why the run stopped: counts per reason, share vs threshold, where to look."""
    threshold = float(report["max_rejected_share"])
    lines = []
    for kind in report["over_threshold"]:
        counts = report["sources"][kind]
        reasons = ", ".join(
            f"{reason} {count:,}"
            for reason, count in sorted(counts["by_reason"].items(), key=lambda i: (-i[1], i[0]))
        )
        lines.append(
            f"{kind}: {counts['quarantined']:,} of {counts['rows_in']:,} rows rejected "
            f"({counts['rejected_share']:.2%} > data.max_rejected_share {threshold:.2%}): {reasons}"
        )
    worst = max(float(report["sources"][k]["rejected_share"]) for k in report["over_threshold"])
    suggestion = min(1.0, round(worst + 0.01, 2))
    lines.append(
        f"Inspect the rejected rows in {quarantine_path} (report beside it), then fix the "
        f"data or the column mapping, or accept more rejects by raising the threshold: "
        f"`data: {{max_rejected_share: {suggestion}}}` in shelfwise.yaml or "
        f"SHELFWISE_DATA__MAX_REJECTED_SHARE={suggestion}"
    )
    return "too many rows rejected by validation\n" + "\n".join(lines)
