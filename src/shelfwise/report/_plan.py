"""The report's plan section: what ran where, what was left out and why, estimate vs actual."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shelfwise.report._collect import read_json
from shelfwise.report._html import Markup, join, paragraph, table


def render_plan(run_dir: Path) -> Markup:
    """The plan's stage and part tables, with each finished stage's measured seconds.

    Raises:
        NotRun: the run has no plan (it stopped before, or predates the plan stage).
    """
    plan = read_json(run_dir / "plan" / "plan.json", run_dir)
    shape, resources = plan["shape"], plan["resources"]
    intro = paragraph(
        f"{shape['n_users']:,} users × {shape['n_items']:,} items, {shape['n_events']:,} "
        f"events (density {shape['density']:.2e}), {shape['text_items']:,} items with text; "
        f"{resources['cores']} cores, {resources['memory_gb']} GB. Only settings left at their "
        "defaults were adapted; the config's own values always win."
    )
    stages = table(
        ["stage", "runs", "where", "estimated s", "measured s", "peak MB", "reason"],
        [_stage_row(run_dir, row) for row in plan["stages"]],
    )
    parts = table(
        ["model / index", "runs", "where", "estimated s per fit", "estimated MB", "reason"],
        [
            [
                row["name"],
                "yes" if row["enabled"] else "no",
                row["where"],
                row["seconds"] if row["enabled"] else "",
                row["memory_mb"] if row["enabled"] else "",
                row["reason"],
            ]
            for row in plan["parts"]
        ],
    )
    settings = plan.get("settings") or {}
    chosen = paragraph(
        "settings the plan chose: "
        + (
            ", ".join(f"{key} = {json.dumps(value)}" for key, value in sorted(settings.items()))
            or "none (every default fits)"
        )
    )
    return join([intro, stages, parts, chosen])


def _stage_row(run_dir: Path, row: dict[str, Any]) -> list[object]:
    measured, peak = "", ""
    manifest = run_dir / row["name"] / "manifest.json"
    if manifest.is_file():
        document = json.loads(manifest.read_text(encoding="utf-8"))
        measured = document.get("timings_s", {}).get("total", "")
        peak = document.get("peak_memory_mb") or ""
    return [
        row["name"],
        "yes" if row["enabled"] else "no",
        row["where"],
        "" if row["measured"] else row["seconds"],
        measured,
        peak,
        row["reason"],
    ]
