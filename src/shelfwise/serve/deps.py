"""Dependencies the routes receive: the app's parts with the request id (`ServiceDep`),
and the champion's engine (`EngineDep`).

Everything lives on `app.state`, put there by `create_app`; nothing is global. The
dependencies are `async def` on purpose: they only read attributes, and FastAPI runs a
plain `def` dependency in the thread pool, a hand-off that cost more than the whole
model work of a precomputed recommendation (benchmarks/RESULTS.md, "Serving under load").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from shelfwise.errors import RequestError
from shelfwise.runtime.engine import Engine
from shelfwise.serve.experiments import ExperimentBook
from shelfwise.serve.holder import ModelHolder
from shelfwise.serve.metrics import ServeMetrics
from shelfwise.serve.rules_book import RulesBook
from shelfwise.serve.settings import ServeSettings
from shelfwise.stores.event_log import EventLog
from shelfwise.stores.online import OnlineStore


async def get_engine(request: Request) -> Engine:
    """The champion's engine (routes without a user: similar items, health).

    Raises:
        NotReadyError: no bundle is loaded (yet).
    """
    holder: ModelHolder = request.app.state.holder
    return holder.choose(None).engine


@dataclass(frozen=True, slots=True)
class Service:
    """Everything a route needs from the app, resolved as one dependency.

    One dependency instead of five or six single-purpose ones: FastAPI spends ~8 us per
    dependency per request, which was an eighth of a precomputed recommendation's time.
    """

    settings: ServeSettings
    metrics: ServeMetrics
    holder: ModelHolder
    store: OnlineStore
    event_log: EventLog
    request_id: str
    rules: RulesBook | None = None  # merchandising rules (None: an app without them)
    experiments: ExperimentBook | None = None  # running experiments (serve/experiments.py)


async def get_service(request: Request) -> Service:
    """The app's parts and this request's id."""
    state = request.app.state
    request_id = getattr(request.state, "request_id", None)
    return Service(
        settings=state.settings,
        metrics=state.metrics,
        holder=state.holder,
        store=state.store,
        event_log=state.event_log,
        request_id=request_id if isinstance(request_id, str) else "",
        rules=getattr(state, "rules", None),
        experiments=getattr(state, "experiments", None),
    )


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


EngineDep = Annotated[Engine, Depends(get_engine)]
ServiceDep = Annotated[Service, Depends(get_service)]
