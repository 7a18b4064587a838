"""The console's routes: server-rendered pages, htmx fragments, the login form.

Pages are Jinja2 templates (`templates/`); the live parts (KPIs, drift) are fragments
that htmx reloads every `serve.console_refresh_s`; charts are uPlot, fed JSON embedded in the page.
Every route needs a login (`auth.console_user`) except the login form itself, and none
is in the OpenAPI document: the console is for people, the API contract is unchanged.
Reads that touch files or the registry run in FastAPI's thread pool (plain `def`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any, Final
from urllib.parse import parse_qs

import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from shelfwise._version import __version__
from shelfwise.serve.console.audit import catalog_changes, rules_versions
from shelfwise.serve.console.auth import (
    COOKIE,
    PREFIX,
    console_user,
    safe_next,
    set_session,
    token_matches,
)
from shelfwise.serve.console.experiments import read_experiments
from shelfwise.serve.console.live import (
    canary_decisions,
    decisions_chart,
    drift_gauges,
    version_kpis,
)
from shelfwise.serve.console.versions import versions_page
from shelfwise.serve.drift_monitor import DriftMonitor

MAX_FORM_BYTES: Final = 4096  # the login form holds one token
PAGES: Final = (
    ("versions", "Versions"),
    ("kpis", "Live KPIs"),
    ("drift", "Drift"),
    ("audit", "Audit trail"),
    ("playground", "Playground"),
)

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
User = Annotated[str, Depends(console_user)]

router = APIRouter(prefix=PREFIX, include_in_schema=False)
pages = APIRouter(prefix=PREFIX, include_in_schema=False, dependencies=[Depends(console_user)])


def _render(
    request: Request, name: str, user: str, status_code: int = 200, **values: Any
) -> Response:
    context = {
        "user": user,
        "pages": PAGES,
        "version": __version__,
        "refresh_s": request.app.state.settings.console_refresh_s,
        "now": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        **values,
    }
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def _home(request: Request) -> Path:
    home: Path = request.app.state.home
    return home


@router.get("", response_class=RedirectResponse)
def index() -> RedirectResponse:
    """The console's first page."""
    return RedirectResponse(f"{PREFIX}/versions", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = f"{PREFIX}/versions") -> Response:  # noqa: A002
    """The login form (the admin token)."""
    return _render(request, "login.html", "", next=safe_next(next), error=None)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    """Check the typed token; a session cookie and the page asked for, or the form again.

    The form is parsed here (urlencoded, one field) rather than with FastAPI's `Form`,
    which needs python-multipart, a dependency the serve extra does not otherwise have.
    """
    raw = await request.body()
    fields = parse_qs(raw[:MAX_FORM_BYTES].decode("utf-8", "replace"))
    token = (fields.get("token") or [""])[0]
    target = safe_next((fields.get("next") or [""])[0])
    if not token_matches(request.app.state.settings, token):
        return _render(
            request,
            "login.html",
            "",
            status_code=401,
            next=target,
            error="That is not the admin token (SHELFWISE_SERVE_ADMIN_TOKEN).",
        )
    response = RedirectResponse(target, status_code=303)
    set_session(response, request)
    return response


@router.post("/logout")
def logout() -> RedirectResponse:
    """Forget the session cookie."""
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(COOKIE, path=PREFIX)
    return response


@pages.get("/versions", response_class=HTMLResponse)
def versions(request: Request, user: User) -> Response:
    """Champion, challenger, canary share, registry versions and gate decisions."""
    state = request.app.state
    page = versions_page(state.holder, state.loader, state.settings, _home(request))
    return _render(request, "versions.html", user, active="versions", page=page)


@pages.get("/kpis", response_class=HTMLResponse)
async def kpis(request: Request, user: User) -> Response:
    """Live KPIs per version and the experiments' verdicts (refreshed by htmx)."""
    return _render(request, "kpis.html", user, active="kpis", **await _kpis(request))


@pages.get("/kpis/live", response_class=HTMLResponse)
async def kpis_live(request: Request, user: User) -> Response:
    """The KPI fragment alone."""
    return _render(request, "kpis_live.html", user, **await _kpis(request))


async def _kpis(request: Request) -> dict[str, Any]:
    state = request.app.state
    token = state.settings.admin_token if state.settings.admin_enabled else None
    decisions = await anyio.to_thread.run_sync(canary_decisions, _home(request))
    return {
        "rows": version_kpis(state.metrics.registry),
        "models": state.holder.models,
        "experiments": await read_experiments(
            request.app, token.get_secret_value() if token is not None else ""
        ),
        "decisions": decisions,
        "chart": decisions_chart(decisions),
    }


@pages.get("/drift", response_class=HTMLResponse)
def drift(request: Request, user: User) -> Response:
    """The drift gauges (refreshed by htmx)."""
    return _render(request, "drift.html", user, active="drift", **_drift(request))


@pages.get("/drift/live", response_class=HTMLResponse)
def drift_live(request: Request, user: User) -> Response:
    """The drift fragment alone."""
    return _render(request, "drift_live.html", user, **_drift(request))


@pages.post("/drift/measure", response_class=HTMLResponse)
def drift_measure(request: Request, user: User) -> Response:
    """Measure drift now (what the server's drift thread does every drift_interval_s)."""
    state = request.app.state
    monitor = DriftMonitor(state.holder, state.metrics, state.settings, state.event_log.root)
    measured = monitor.measure_once()
    note = None if measured else "no champion is loaded: nothing to measure against"
    return _render(request, "drift_live.html", user, note=note, **_drift(request))


def _drift(request: Request) -> dict[str, Any]:
    gauges, measured_at, events = drift_gauges(request.app.state.metrics.registry)
    return {
        "gauges": gauges,
        "measured_at": None
        if measured_at is None
        else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(measured_at)),
        "window_events": int(events),
        "settings": request.app.state.settings,
    }


@pages.get("/audit", response_class=HTMLResponse)
def audit(request: Request, user: User) -> Response:
    """Recent catalog updates and rules versions."""
    state = request.app.state
    return _render(
        request,
        "audit.html",
        user,
        active="audit",
        catalog=catalog_changes(state.live_catalog.log.root),
        rules=rules_versions(getattr(state, "rules", None)),
    )


@pages.get("/playground", response_class=HTMLResponse)
def playground(request: Request, user: User) -> Response:
    """Try /v1/search and /v1/recommend with explanations."""
    settings = request.app.state.settings
    return _render(
        request,
        "playground.html",
        user,
        active="playground",
        default_k=settings.default_k,
        max_k=settings.max_k,
    )
