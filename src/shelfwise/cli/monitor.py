"""`shelfwise monitor drift`: printing what `shelfwise.monitor.check_drift` measures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from shelfwise.cli.app import (
    ConfigOption,
    SetOption,
    console,
    err_console,
    guard,
    load_cli_config,
    stage_printer,
)
from shelfwise.errors import ConfigError

monitor_app = typer.Typer(
    help="Watch the served models: drift between training data and recent events.",
    no_args_is_help=True,
)


def duration_seconds(text: str) -> int:
    """'90s', '15m', '1h', '2d' (or plain seconds) as seconds.

    Raises:
        ConfigError: anything else (the message names `--since`).
    """
    units = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
    value = text.strip().lower()
    try:
        if value and value[-1] in units:
            return int(float(value[:-1]) * units[value[-1]])
        return int(float(value))
    except ValueError:
        raise ConfigError(f"--since {text!r}: use a duration like 30m, 1h or 2d") from None


@monitor_app.command("drift")
def drift(
    config: ConfigOption = None,
    sets: SetOption = None,
    since: Annotated[
        str, typer.Option(help="Window: events newer than this (30m, 1h, 2d).")
    ] = "1h",
    events: Annotated[
        Path | None,
        typer.Option(
            help="The server's event log folder (default: serve.event_log_dir, else <home>/events)."
        ),
    ] = None,
    bundle: Annotated[
        Path | None, typer.Option(help="Reference bundle (default: the registry's champion).")
    ] = None,
    scores: Annotated[
        bool, typer.Option(help="Also measure the shift of recommendation scores.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object, for machines.")] = False,
    retrain_on_drift: Annotated[
        bool,
        typer.Option(
            "--retrain",
            help="When the status is `drift`, run `shelfwise retrain` right away (a drift "
            "trigger for setups without Prometheus/Alertmanager, e.g. from cron).",
        ),
    ] = False,
) -> None:
    """Drift of recent events from the champion's training data: item popularity PSI,
    unseen users and items, query out-of-vocabulary rate, score shift, catalog changes.
    Exit code 0 whatever the drift; read `status` (ok, warn, drift) in the output."""
    from shelfwise.cli.models import resolve_bundle
    from shelfwise.cli.render import drift_table
    from shelfwise.monitor import check_drift
    from shelfwise.stores.event_log import event_log_dir

    def body() -> None:
        cfg = load_cli_config(config, sets)
        reference_path = bundle if bundle is not None else resolve_bundle(cfg, None, None)
        log_dir = events if events is not None else event_log_dir(cfg)
        report = check_drift(
            reference_path,
            log_dir,
            since_seconds=duration_seconds(since),
            scores=scores,
            catalog=cfg.data.catalog,
        )
        if as_json:
            console.print_json(json.dumps(report.to_json()))
        else:
            console.print(drift_table(report, log_dir))
        if retrain_on_drift and report.status == "drift":
            from shelfwise.loop.retrain import retrain as run_retrain

            err_console.print("drift: starting `shelfwise retrain`")
            result = run_retrain(cfg, force=True, on_event=stage_printer())
            decision = result.run.gate.decision if result.run and result.run.gate else "none"
            err_console.print(f"retrain: {result.status}, gate {decision}")

    guard(body)
