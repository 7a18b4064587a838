"""Dependencies the routes receive: settings, metrics, the engine, the request id.

Everything lives on `app.state`, put there by `create_app`; nothing is global.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from shelfwise.errors import NotReadyError, RequestError
from shelfwise.serve.engine import Engine
from shelfwise.serve.metrics import ServeMetrics
from shelfwise.serve.settings import ServeSettings


def get_settings(request: Request) -> ServeSettings:
    """The app's settings."""
    settings: ServeSettings = request.app.state.settings
    return settings


def get_metrics(request: Request) -> ServeMetrics:
    """The app's collectors."""
    metrics: ServeMetrics = request.app.state.metrics
    return metrics


def get_engine(request: Request) -> Engine:
    """The loaded engine.

    Raises:
        NotReadyError: no bundle is loaded (yet).
    """
    engine: Engine | None = request.app.state.engine
    if engine is None:
        raise NotReadyError(
            "no model bundle is loaded; set SHELFWISE_SERVE_BUNDLE_PATH (or run "
            "`shelfwise run` to build one) and wait for /readyz to answer 200"
        )
    return engine


def get_request_id(request: Request) -> str:
    """The id of this request (set by the middleware)."""
    value = getattr(request.state, "request_id", None)
    return value if isinstance(value, str) else ""


def checked_k(k: int | None, settings: ServeSettings, location: str) -> int:
    """`k` or the default, refused above `max_k` with the field named.

    Raises:
        RequestError: `k` > `max_k` (422 invalid-request).
    """
    if k is None:
        return settings.default_k
    if k > settings.max_k:
        raise RequestError(f"{location}: Input should be less than or equal to {settings.max_k}")
    return k


SettingsDep = Annotated[ServeSettings, Depends(get_settings)]
MetricsDep = Annotated[ServeMetrics, Depends(get_metrics)]
EngineDep = Annotated[Engine, Depends(get_engine)]
RequestIdDep = Annotated[str, Depends(get_request_id)]
