"""`shelfwise plan`: what a run would do with this data on this machine, and why.

Runs the pipeline up to the plan stage (reusing finished stages of earlier runs with
the same inputs), then prints one row per stage and per part (model family, search
index): on or off, where it runs, the reason, and the estimated time and memory.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from shelfwise._internal import progress
from shelfwise.cli.app import (
    ConfigOption,
    SetOption,
    console,
    guard,
    load_cli_config,
    stage_printer,
)


def plan(
    config: ConfigOption = None,
    sets: SetOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print plan.json (and the run id) instead of tables.")
    ] = False,
) -> None:
    """Show what a run will train, where, why, and its estimated time and memory."""
    from shelfwise.pipeline import run_pipeline
    from shelfwise.plan import load_plan

    def body() -> None:
        cfg = load_cli_config(config, sets)
        progress.enable(console.is_terminal and not as_json)
        printer = None if as_json else stage_printer()
        outcome = run_pipeline(cfg, until="plan", on_event=printer)
        folder = outcome.run_dir / "plan"
        if as_json:
            document = json.loads((folder / "plan.json").read_text(encoding="utf-8"))
            typer.echo(json.dumps({"run_id": outcome.run_id, **document}, indent=2))
            return
        chosen = load_plan(folder)
        console.print(_table("Stages", [vars(c) for c in chosen.stages]))
        console.print(_table("Models and search indexes", [vars(c) for c in chosen.parts]))
        if chosen.settings:
            console.print("settings the plan chose (your own values always win):")
            for key, value in sorted(chosen.settings.items()):
                console.print(f"  {key}: {json.dumps(value)}", highlight=False)
        total = sum(c.seconds for c in chosen.stages if not c.measured)
        console.print(
            f"estimated ≈{total / 60:.1f} min for the remaining stages on "
            f"{chosen.resources.cores} cores, {chosen.resources.memory_bytes / 2**30:.1f} GB "
            f"(run {outcome.run_id}; `shelfwise run` reuses its stages)"
        )

    guard(body)


def _table(title: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for column, justify in (
        ("name", "left"),
        ("enabled", "left"),
        ("where", "left"),
        ("time", "right"),
        ("memory", "right"),
        ("reason", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        measured = row.get("measured", False)
        seconds, memory = float(row.get("seconds", 0.0)), float(row.get("memory_mb", 0.0))
        mark = "" if measured else "≈"
        table.add_row(
            row["name"],
            "[green]yes[/green]" if row["enabled"] else "[red]no[/red]",
            row.get("where", "local"),
            f"{mark}{_duration(seconds)}" if row["enabled"] and seconds else "",
            f"{mark}{memory:,.0f} MB" if row["enabled"] and memory else "",
            escape(str(row["reason"])),
        )
    return table


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
