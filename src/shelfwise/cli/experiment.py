"""`shelfwise experiment plan`: how many lists an experiment needs before it starts."""

from __future__ import annotations

import json
import math
from typing import Annotated

import typer
from rich.table import Table

from shelfwise.cli.app import ConfigOption, SetOption, console, guard, load_cli_config

experiment_app = typer.Typer(
    help="Plan live experiments between model versions: sample sizes and duration for the "
    "sequential test that `canary judge` applies (valid however often it looks).",
    no_args_is_help=True,
)


@experiment_app.command("plan")
def plan(
    baseline: Annotated[
        float, typer.Option(help="The champion's current rate, e.g. CTR 0.05 (clicks per list).")
    ],
    lists_per_day: Annotated[
        float | None,
        typer.Option(help="Lists the challenger's share will serve per day (for a duration)."),
    ] = None,
    power: Annotated[float, typer.Option(help="Chance of detecting a true lift of --mde.")] = 0.8,
    mde: Annotated[
        float | None,
        typer.Option(help="Smallest relative lift worth detecting (default: canary.mde)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    config: ConfigOption = None,
    sets: SetOption = None,
) -> None:
    """Lists per side the experiment needs: the sequential test's (what `canary judge`
    uses), and a one-look z-test's for comparison; days at --lists-per-day."""
    from shelfwise.experiments import fixed_sample_size, sequential_sample_size

    def body() -> None:
        cfg = load_cli_config(config, sets)
        relative = mde if mde is not None else cfg.canary.mde
        absolute = baseline * relative
        alpha = cfg.canary.alpha
        rows = {
            "sequential": sequential_sample_size(baseline, absolute, alpha=alpha, power=power),
            "fixed_horizon": fixed_sample_size(baseline, absolute, alpha=alpha, power=power),
        }
        result = {
            "baseline": baseline,
            "mde_relative": relative,
            "alpha": alpha,
            "power": power,
            "lists_per_side": rows,
            "days": {
                name: math.ceil(n / lists_per_day) if lists_per_day else None
                for name, n in rows.items()
            },
        }
        if as_json:
            console.print_json(json.dumps(result))
            return
        table = Table(
            title=f"baseline {baseline:g}, lift ≥ {relative:.1%}, α {alpha:g}, power {power:g}"
        )
        for column in ("test", "lists per side", "days"):
            table.add_column(column)
        for name, n in rows.items():
            days = result["days"][name]  # type: ignore[index]
            label = "sequential (canary judge)" if name == "sequential" else "one look only"
            table.add_row(label, f"{n:,}", "" if days is None else str(days))
        console.print(table)

    guard(body)
