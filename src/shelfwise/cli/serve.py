"""`shelfwise serve`: the online role on one uvicorn worker."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from shelfwise.cli.app import ConfigOption, SetOption, console, guard, load_cli_config
from shelfwise.cli.models import resolve_bundle
from shelfwise.config import ShelfwiseConfig
from shelfwise.privacy import UserPrivacy


def serve(
    config: ConfigOption = None,
    sets: SetOption = None,
    bundle: Annotated[Path | None, typer.Option(help="Serve this bundle folder.")] = None,
    model_version: Annotated[
        str | None,
        typer.Option(help="Serve this registered version (default: the champion)."),
    ] = None,
    host: Annotated[str | None, typer.Option(help="Bind address (default from config).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from config).")] = None,
) -> None:
    """Serve /v1/recommend, /v1/search, /v1/items/{id}/similar, /metrics and /docs."""

    def body() -> None:
        flags: dict[str, Any] = {}
        if host is not None:
            flags["serve.host"] = host
        if port is not None:
            flags["serve.port"] = port
        cfg = load_cli_config(config, sets, flags=flags)
        # serve.bundle_path (SHELFWISE_SERVE_BUNDLE_PATH) counts as --bundle unless a
        # version is asked for by name.
        chosen = bundle if bundle is not None or model_version else cfg.serve.bundle_path
        UserPrivacy.open(cfg.privacy, cfg.state_dir())  # a missing key fails before loading
        path = resolve_bundle(cfg, chosen, model_version)
        serve_bundle(cfg, path)

    guard(body)


def serve_bundle(cfg: ShelfwiseConfig, path: Path) -> None:
    """Serve `path` with the config's `serve:` settings and event log, until interrupted."""
    from shelfwise.serve import run_server
    from shelfwise.stores.event_log import event_log_dir

    settings = cfg.serve.model_copy(
        update={"bundle_path": path, "event_log_dir": event_log_dir(cfg)}
    )
    console.print(f"serving {path} on http://{settings.host}:{settings.port} (docs at /docs)")
    run_server(settings, config=cfg)
