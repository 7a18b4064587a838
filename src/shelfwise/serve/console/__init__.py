"""The operator console: web pages under `/console`, served by the same app.

Five pages, each from what the running server holds or reads (README "Operator
console"): versions (champion, challenger, canary share, registry versions, gate
decisions), live KPIs per version with the experiments' and the canary's verdicts,
drift gauges, the catalog and rules audit trail, and a playground for `/v1/search` and
`/v1/recommend` with explanations. Server-rendered Jinja2 templates, htmx for the
auto-refresh, uPlot for charts; both libraries are vendored under `static/vendor/`
(VENDOR.md: npm package, version, tarball sha), so the console works offline.

Mounted by `create_app` when `serve.console_enabled` and a login is possible: the admin
token (`serve.admin_enabled`) or an auth proxy's header (`serve.console_auth_header`);
see `auth.py`.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from shelfwise.serve.settings import ServeSettings

__all__ = ["console_wanted", "install_console"]

STATIC_DIR = Path(__file__).parent / "static"


def console_wanted(settings: ServeSettings) -> bool:
    """True when the console is enabled and someone can log in to it."""
    return settings.console_enabled and (
        settings.admin_enabled or settings.console_auth_header is not None
    )


def install_console(app: FastAPI, settings: ServeSettings, home: Path) -> None:
    """Mount the console's routes and static files on `app`, when `console_wanted`.

    Args:
        app: the server's app (its `state` holds what the pages read).
        settings: the server's settings.
        home: the state folder (`<home>/runs/*/gate/gate.json`,
            `<home>/canary/decisions.jsonl`).
    """
    if not console_wanted(settings):
        return
    # imported here: Jinja2 and the templates load only in a server that has the console
    from fastapi.staticfiles import StaticFiles

    from shelfwise.serve.console.auth import PREFIX, ConsoleLoginRequired, login_redirect
    from shelfwise.serve.console.routes import pages, router

    app.state.home = home
    app.include_router(router)
    app.include_router(pages)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC_DIR), name="console-static")
    app.add_exception_handler(ConsoleLoginRequired, login_redirect)
