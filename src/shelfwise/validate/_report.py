"""The validation report as a rich table, and the message of a failed threshold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from shelfwise.config.fake_traffic import FakeTrafficConfig
from shelfwise.validate._bots import FakeTrafficCheck

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
    fake = report.get("fake_traffic") or {}
    if fake.get("checked"):
        notes.append(fake_traffic_line(fake))
    notes += [f"warning: {warning}" for warning in report.get("warnings", [])]
    table.caption = "\n".join(notes)
    table.caption_justify = "left"
    return table


def fake_traffic_line(fake: dict[str, Any]) -> str:
    """One line on the fake-traffic check: events flagged, share, users per pattern."""
    users = ", ".join(f"{name} {count:,}" for name, count in fake["users_by_pattern"].items())
    reasons = ", ".join(f"{name} {count:,}" for name, count in fake["events_by_reason"].items())
    return (
        f"fake traffic: {fake['events_flagged']:,} events ({fake['share']:.2%}) quarantined"
        + (f" ({reasons}); users by pattern: {users}" if users else "")
        + " (not counted toward the threshold; data.fake_traffic)"
    )


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


def fake_traffic_report(
    check: FakeTrafficCheck | None, events: dict[str, Any] | None, config: FakeTrafficConfig
) -> dict[str, Any]:
    """The report's `fake_traffic` entry: flagged users per pattern, events per reason,
    their share of the events; a warning above `warn_share`, or when the flags were
    withheld (above `max_share`)."""
    if check is None or events is None:
        return {"checked": False}
    warn_share = config.warn_share
    flagged = sum(check.events_by_reason.values())
    share = flagged / events["rows_in"] if events["rows_in"] else 0.0
    report: dict[str, Any] = {
        "checked": True,
        "users_by_pattern": dict(sorted(check.users_by_pattern.items())),
        "events_by_reason": dict(sorted(check.events_by_reason.items())),
        "events_flagged": flagged,
        "share": round(share, 6),
    }
    if check.withheld:
        withheld = check.withheld / max(check.events_checked, 1)
        report["withheld"] = check.withheld
        report["warning"] = (
            f"{check.withheld:,} events ({withheld:.0%}) look like bots or fake orders, more "
            f"than data.fake_traffic.max_share {config.max_share:.0%}: none were quarantined, "
            "as the rules likely do not fit how this shop logs events (impressions as views, "
            "bulk imports, generated data); adjust the data.fake_traffic thresholds, or set "
            "data.fake_traffic.enabled: false to silence this"
        )
    elif share > warn_share:
        report["warning"] = (
            f"{flagged:,} events ({share:.1%}) quarantined as suspected bots or fake orders, "
            f"above data.fake_traffic.warn_share {warn_share:.0%}: does the shop log "
            "impressions as views, or bulk imports? Check the quarantine; raise the "
            "data.fake_traffic thresholds or set data.fake_traffic.enabled: false"
        )
    return report
