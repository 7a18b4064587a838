"""Dependencies the routes receive: settings, metrics, the engine, the request id.

Everything lives on `app.state`, put there by `create_app`; nothing is global.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from shelfwise.errors import RequestError
from shelfwise.serve.engine import Engine
from shelfwise.serve.holder import ModelHolder
from shelfwise.serve.metrics import ServeMetrics
from shelfwise.serve.online.event_log import EventLog
from shelfwise.serve.online.store import OnlineStore
from shelfwise.serve.settings import ServeSettings


def get_settings(request: Request) -> ServeSettings:
    """The app's settings."""
    settings: ServeSettings = request.app.state.settings
    return settings


def get_metrics(request: Request) -> ServeMetrics:
    """The app's collectors."""
    metrics: ServeMetrics = request.app.state.metrics
    return metrics


def get_holder(request: Request) -> ModelHolder:
    """The model holder (champion, challenger, canary and shadow shares)."""
    holder: ModelHolder = request.app.state.holder
    return holder


def get_engine(request: Request) -> Engine:
    """The champion's engine (routes without a user: similar items, health).

    Raises:
        NotReadyError: no bundle is loaded (yet).
    """
    return get_holder(request).choose(None).engine


def get_store(request: Request) -> OnlineStore:
    """The online store (recent events per user, served lists)."""
    store: OnlineStore = request.app.state.store
    return store


def get_event_log(request: Request) -> EventLog:
    """The durable event log of /v1/events."""
    event_log: EventLog = request.app.state.event_log
    return event_log


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
HolderDep = Annotated[ModelHolder, Depends(get_holder)]
RequestIdDep = Annotated[str, Depends(get_request_id)]
StoreDep = Annotated[OnlineStore, Depends(get_store)]
EventLogDep = Annotated[EventLog, Depends(get_event_log)]
