"""Closing the loop: `retrain` and `canary judge`."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from shelfwise._internal import progress
from shelfwise.cli.app import (
    ConfigOption,
    SetOption,
    console,
    guard,
    load_cli_config,
    stage_printer,
)


def retrain(
    config: ConfigOption = None,
    sets: SetOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Retrain even without new events in the log.")
    ] = False,
) -> None:
    """Retrain on the original data plus the server's event log, gate the result, and hand
    a passing version to the canary (the `challenger` alias; see `retrain.promote_to`)."""
    from shelfwise.loop.retrain import retrain as run_retrain
    from shelfwise.stores.event_log import event_log_dir

    def body() -> None:
        cfg = load_cli_config(config, sets)
        progress.enable(console.is_terminal)
        result = run_retrain(cfg, force=force, on_event=stage_printer())
        cutoff = "none" if result.cutoff is None else str(result.cutoff)
        console.print(
            f"event log {event_log_dir(cfg)}: {result.log_events:,} events, "
            f"{result.new_events:,} newer than the champion's data (cutoff {cutoff})"
        )
        if result.run is None:
            console.print(
                f"nothing to retrain on (retrain.min_new_events = {cfg.retrain.min_new_events}); "
                "--force retrains anyway"
            )
            return
        outcome = result.run
        console.print(f"run {outcome.run_id}: model version {outcome.bundle_version}")
        if outcome.gate is not None:
            from shelfwise.cli.render import gate_table

            console.print(gate_table(outcome.gate))
            console.print(f"gate: {outcome.gate.decision}")
            if not outcome.gate.passed:
                from shelfwise.errors import GateRefusedError

                raise GateRefusedError(
                    f"retrained version {outcome.bundle_version} was refused by the gate; "
                    "the champion is unchanged"
                )
        if outcome.report_path is not None:
            console.print(f"report: {outcome.report_path}")

    guard(body)


canary_app = typer.Typer(
    help="Judge the challenger against the champion on live KPIs.", no_args_is_help=True
)


@canary_app.command("judge")
def canary_judge(
    config: ConfigOption = None,
    sets: SetOption = None,
    metrics_url: Annotated[
        str | None,
        typer.Option(help="One server's /metrics (default: canary.prometheus_url)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say the verdict, move no alias.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Compare challenger and champion on CTR, conversion, error rate and p99 latency;
    promote the challenger, roll it back, or wait for more traffic."""
    from shelfwise.loop.canary import judge_canary

    def body() -> None:
        cfg = load_cli_config(config, sets)
        verdict = judge_canary(cfg, metrics_url=metrics_url, apply=not dry_run)
        if as_json:
            console.print_json(json.dumps(verdict.to_json()))
            return
        colour = {"promote": "green", "rollback": "red"}.get(verdict.decision, "yellow")
        console.print(
            f"[bold {colour}]{verdict.decision}[/bold {colour}] challenger {verdict.challenger} "
            f"vs champion {verdict.champion}" + (" (dry run)" if dry_run else "")
        )
        for side, numbers in verdict.kpis.items():
            shown = ", ".join(
                f"{k} {v:.4g}" for k, v in numbers.items() if isinstance(v, int | float)
            )
            console.print(f"  {side}: {shown}")
        for reason in verdict.reasons:
            console.print(f"  · {reason}")

    guard(body)
