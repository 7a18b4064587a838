"""`POST /v1/events`: what shoppers did, logged durably, then seen by recommendations.

Order matters: the batch is validated whole (422 and nothing written), then written to
the event log and fsync'd (a failure there is 503 `event-log-unavailable` and nothing
is accepted), then appended to the online store and attributed. The store never fails
the request: while Redis is unreachable the in-process store takes the events and
the response says `"degraded": true`.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Request, status

from shelfwise.contracts import (
    EVENT_TYPE,
    POSITION,
    QUERY,
    RAW_ITEM_ID,
    RAW_USER_ID,
    REQUEST_ID,
    SESSION_ID,
    TIMESTAMP,
)
from shelfwise.errors import NotReadyError, RequestError
from shelfwise.runtime.engine import Engine
from shelfwise.serve.attribution import attribute_events
from shelfwise.serve.deps import ServiceDep, get_engine
from shelfwise.serve.schemas import ErrorResponse, EventsRequest, EventsResponse
from shelfwise.serve.traffic import TrafficWatch
from shelfwise.stores.online import Attribution, UserEvent, session_key

ENDPOINT: Final = "events"
router = APIRouter(tags=["events"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorResponse, "description": "Invalid event (code invalid-request)."},
    503: {
        "model": ErrorResponse,
        "description": "The event log cannot be written; nothing was accepted, retry "
        "(code event-log-unavailable).",
    },
}


async def optional_engine(request: Request) -> Engine | None:
    """The champion's engine, or None before one is loaded (events are still accepted)."""
    try:
        return await get_engine(request)
    except NotReadyError:
        return None


OptionalEngineDep = Annotated[Engine | None, Depends(optional_engine)]


@router.post(
    "/v1/events",
    response_model=EventsResponse,
    status_code=status.HTTP_202_ACCEPTED,
    responses=_ERRORS,
    summary="Send shopper events",
    description="A batch of views, clicks, carts, purchases and searches. Answers 202 once "
    "every event is durably in the event log (the retraining pipeline's input); "
    "recommendations reflect them at once. Clicks, carts and purchases with the "
    "`request_id` of a served list count toward that model version's CTR and conversion. "
    "Item ids the model does not know are accepted and counted in `unknown_items`.",
)
def post_events(
    body: EventsRequest,
    service: ServiceDep,
    engine: OptionalEngineDep,
    request: Request,
) -> EventsResponse:
    """Accept a batch of events."""
    settings, metrics, store = service.settings, service.metrics, service.store
    if len(body.events) > settings.max_events_per_batch:
        raise RequestError(
            f"body.events: {len(body.events)} events in one batch; send at most "
            f"{settings.max_events_per_batch} per request"
        )
    now = int(time.time())
    timestamps = [event.timestamp if event.timestamp is not None else now for event in body.events]
    records = [
        {
            RAW_USER_ID: event.user_id,
            RAW_ITEM_ID: event.item_id,
            EVENT_TYPE: event.event_type.value,
            TIMESTAMP: timestamp,
            QUERY: event.query,
            POSITION: event.position,
            REQUEST_ID: event.request_id,
            SESSION_ID: event.session_id,
        }
        for event, timestamp in zip(body.events, timestamps, strict=True)
    ]
    accepted = service.event_log.append(records)  # durable first: a failure here accepts nothing
    store.append(
        [
            UserEvent(event.user_id, event.item_id, event.event_type, timestamp)
            for event, timestamp in zip(body.events, timestamps, strict=True)
        ]
        + [  # a session's events also under its own key: /v1/recommend's session_id
            UserEvent(session_key(event.session_id), event.item_id, event.event_type, timestamp)
            for event, timestamp in zip(body.events, timestamps, strict=True)
            if event.session_id is not None
        ]
    )
    claims = [
        Attribution(event.request_id, event.item_id, event.event_type)
        for event in body.events
        if event.request_id is not None
    ]
    attributed = attribute_events(store, metrics, claims)
    if service.experiments is not None:  # and to the variant of a running experiment
        service.experiments.attribute(claims)
    unknown = (
        0
        if engine is None
        else sum(1 for event in body.events if event.item_id not in engine.catalog.index)
    )
    metrics.observe_events([event.event_type.value for event in body.events], unknown)
    watch: TrafficWatch | None = getattr(request.app.state, "traffic_watch", None)
    if watch is not None:  # in-memory and O(1) per event: never holds the request up
        metrics.observe_suspected(
            watch.observe(
                (event.user_id, event.item_id, event.event_type.value, timestamp)
                for event, timestamp in zip(body.events, timestamps, strict=True)
            )
        )
    return EventsResponse(
        accepted=accepted,
        unknown_items=unknown,
        attributed=attributed,
        request_id=service.request_id,
        degraded=store.degraded,
    )
