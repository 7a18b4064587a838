"""Model version commands: `models`, `promote`, `rollback`; and which bundle to serve.

`registry_for` opens the store of versions the config names (MLflow or the local store,
one protocol) and `resolve_bundle` finds the bundle to serve; `serve`, `demo` and
`monitor drift` use them too.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shelfwise.cli.app import ConfigOption, SetOption, console, err_console, guard, load_cli_config
from shelfwise.config import ShelfwiseConfig
from shelfwise.errors import ConfigError

if TYPE_CHECKING:
    from shelfwise.registry import Registry


def models(config: ConfigOption = None, sets: SetOption = None) -> None:
    """List the model versions: aliases, metrics, data fingerprint, gate decision."""
    from shelfwise.cli.render import alias_log_table, registry_table

    def body() -> None:
        registry = registry_for(load_cli_config(config, sets))
        versions = registry.versions()
        if not versions:
            console.print(
                f"model {registry.model_name!r} has no versions in {registry.location}; "
                "run `shelfwise run` first"
            )
            return
        console.print(registry_table(registry.model_name, versions))
        log = registry.alias_log()
        if log:
            console.print(alias_log_table(log[-10:]))

    guard(body)


def promote(
    version: Annotated[str, typer.Argument(help="The version to make champion, e.g. 3.")],
    config: ConfigOption = None,
    sets: SetOption = None,
    reason: Annotated[str, typer.Option(help="Why, for the alias history.")] = "manual promote",
) -> None:
    """Make VERSION the champion (served by `shelfwise serve`); the old one stays listed."""

    def body() -> None:
        cfg = load_cli_config(config, sets)
        move = registry_for(cfg).promote(version, reason)
        console.print(f"champion: {move.old or 'none'} → [bold]{move.new}[/bold] ({move.reason})")

    guard(body)


def rollback(
    config: ConfigOption = None,
    sets: SetOption = None,
    reason: Annotated[str, typer.Option(help="Why, for the alias history.")] = "manual rollback",
) -> None:
    """Move the champion back to the previous champion (the history is kept)."""

    def body() -> None:
        cfg = load_cli_config(config, sets)
        move = registry_for(cfg).rollback(reason)
        console.print(
            f"champion: {move.old} → [bold]{move.new}[/bold] ({move.reason}); restart or "
            "reload `shelfwise serve` to serve it"
        )

    guard(body)


def registry_for(cfg: ShelfwiseConfig) -> Registry:
    """The store of versions the config names: MLflow, or the local store (`open_registry`)."""
    from shelfwise.registry import open_registry

    return open_registry(cfg)


def resolve_bundle(cfg: ShelfwiseConfig, bundle: Path | None, version: str | None) -> Path:
    """--bundle, else --model-version, else the champion."""
    from shelfwise.errors import BundleNotFoundError
    from shelfwise.registry import CHAMPION

    if bundle is not None and version is not None:
        raise ConfigError("pass either --bundle or --model-version, not both")
    if bundle is not None:
        return bundle
    registry = registry_for(cfg)
    if version is not None:
        return registry.local_path(version)
    champion = registry.by_alias(CHAMPION)
    if champion is None:
        raise BundleNotFoundError(
            f"model {registry.model_name!r} has no champion in {registry.location}; run "
            "`shelfwise run`, `shelfwise promote VERSION`, or pass --bundle"
        )
    err_console.print(f"champion: version {champion.version}")
    return registry.local_path(champion.version)
