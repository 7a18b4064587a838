"""The Typer app and what every command shares: the console, the `-c/--config` and
`--set` options, config loading, the error guard and the stage printer.

Commands live in one module per group (`pipeline`, `models`, `serve`, `loop`, `monitor`,
`deploy`); `main.py` registers them on `app` in the order `shelfwise --help` lists them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from shelfwise.config import ShelfwiseConfig, load_config, parse_overrides
from shelfwise.errors import ShelfwiseError, exit_code_for

DEFAULT_CONFIG = Path("shelfwise.yaml")

# The stages in `shelfwise.pipeline.STAGES` order, then serving; written out rather than
# imported, because importing the pipeline (polars, scipy) would slow `shelfwise --help`
# by 0.4 s. tests/unit/cli checks that they agree.
DATA_FLOW = (
    "ingest → validate → features → plan → tune → retrieval → evaluate → ranking → "
    "search → compress → package → serve"
)

app = typer.Typer(
    name="shelfwise",
    help="From a shop's raw data (catalog, events, queries) to served search and "
    f"recommendation models: {DATA_FLOW}. Start with `shelfwise demo`, or `shelfwise init` "
    "for your own data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)
T = TypeVar("T")

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Path to shelfwise.yaml (default: ./shelfwise.yaml)."),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Override a config key, e.g. --set evaluate.k_values=[5,10] (repeatable; "
        "wins over the file and SHELFWISE_* variables).",
    ),
]


def guard(action: Callable[[], T]) -> T:
    """Run a command body; print ShelfwiseErrors as `error[code]: message` and exit."""
    try:
        return action()
    except ShelfwiseError as exc:
        err_console.print(
            f"[bold red]error\\[{exc.code}][/bold red]: {escape(exc.message)}", highlight=False
        )
        raise typer.Exit(exit_code_for(exc)) from None


def load_cli_config(
    config_path: Path | None,
    sets: list[str] | None = None,
    *,
    flags: Mapping[str, Any] | None = None,
) -> ShelfwiseConfig:
    """The config of a command: `-c` (default ./shelfwise.yaml when present), the
    environment, then the command's own flags (`flags`, dotted keys) and `--set` items.

    `--set` wins over the command's other flags: it is the general override.

    Raises:
        ConfigError: as `load_config`, or a malformed `--set` item.
    """
    path = config_path
    if path is None and DEFAULT_CONFIG.is_file():
        path = DEFAULT_CONFIG
    overrides = {**(flags or {}), **parse_overrides(sets)}
    return load_config(path, overrides=overrides)


def has_config(config_path: Path | None, sets: list[str] | None) -> bool:
    """Whether a command that works without a config was given one (or finds one here)."""
    return config_path is not None or bool(sets) or DEFAULT_CONFIG.is_file()


class _StagePrinter:
    """A spinner while a stage runs (on a terminal), then one line when it ends."""

    def __init__(self) -> None:
        self._status: Any = None

    def __call__(self, event: Any) -> None:
        from shelfwise.cli.render import stage_line

        if self._status is not None:
            self._status.stop()
            self._status = None
        if event.status == "started":
            if console.is_terminal:
                self._status = console.status(f"{event.stage}…")
                self._status.start()
            return
        stage_line(console, event)


def stage_printer() -> Callable[[Any], None]:
    """A fresh progress printer for `run_pipeline(on_event=...)`."""
    return _StagePrinter()
