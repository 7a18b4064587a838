"""The `shelfwise` command line: the commands, in the order `shelfwise --help` lists them.

Each group lives in its own module (see `app.py`); this module puts them on the one
Typer `app` and holds the console-script entry point, `main`.
"""

from __future__ import annotations

import shutil
import sys

from shelfwise.cli import (
    audience,
    deploy,
    experiment,
    loop,
    models,
    monitor,
    pipeline,
    plan,
    privacy,
    serve,
)
from shelfwise.cli.app import app, console, err_console

for command in (
    pipeline.init,
    pipeline.generate,
    pipeline.validate,
    plan.plan,
    pipeline.run,
    models.models,
    models.promote,
    models.rollback,
    serve.serve,
    audience.audience,
    pipeline.demo,
    loop.retrain,
    privacy.forget,
):
    app.command()(command)
app.add_typer(loop.canary_app, name="canary")
app.add_typer(experiment.experiment_app, name="experiment")
app.add_typer(monitor.monitor_app, name="monitor")
app.add_typer(deploy.deploy_app, name="deploy")

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    if shutil.get_terminal_size().columns < 100:
        console.width = 120
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
