"""`POST /v1/recommend`: items for a user.

The handler is `async def` and answers on the event loop: a precomputed list
(`shelfwise.runtime.precomputed`) takes ~0.1 ms, less than handing the request to the
thread pool and back. With a remote online store (Redis) the whole answer runs in the
thread pool instead, so network round trips never stall the loop. A request the engine
must score live (filters that empty a precomputed list, unknown lists) holds the loop
for those few milliseconds; a worker has one core's worth of Python either way.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Final

from fastapi import APIRouter, BackgroundTasks
from starlette.concurrency import run_in_threadpool

from shelfwise.runtime.realtime import live_recommend
from shelfwise.serve.attribution import remember_list
from shelfwise.serve.deps import Service, ServiceDep, checked_k
from shelfwise.serve.routing import answer
from shelfwise.serve.schemas import ErrorResponse, ItemOut, RecommendRequest, RecommendResponse
from shelfwise.stores import UserState

ENDPOINT: Final = "recommend"
router = APIRouter(tags=["recommend"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorResponse, "description": "Invalid request (code invalid-request)."},
    503: {"model": ErrorResponse, "description": "No model loaded yet (code not-ready)."},
}


@router.post(
    "/v1/recommend",
    response_model=RecommendResponse,
    responses=_ERRORS,
    summary="Recommend items for a user",
    description="Items the user is most likely to want, best first, without the items "
    "already in their history. Unknown or anonymous users get the most popular items and "
    '`"fallback": "popular"`. Filters apply before ranking, so the list is still up to `k` '
    "long. Events sent to /v1/events count at once: neighbours of just-viewed items are "
    "blended in, purchased items left out (`exclude_purchased`), and users the model does "
    'not know get recommendations from their session (`"personalisation": "session"`).',
)
async def recommend(
    body: RecommendRequest, service: ServiceDep, background: BackgroundTasks
) -> RecommendResponse:
    """Recommend items for a user."""
    work = partial(_recommend, body, service, background)
    if service.store.remote:
        return await run_in_threadpool(work)
    return work()


def _recommend(
    body: RecommendRequest, service: Service, background: BackgroundTasks
) -> RecommendResponse:
    settings, metrics, store = service.settings, service.metrics, service.store
    request_id = service.request_id
    k = checked_k(body.k, settings, "body.k")
    filters = body.filters.to_filters() if body.filters else None
    # The user's recent events (online store), read once: the shadow sees the same.
    state = store.state(body.user_id) if body.user_id is not None else UserState()
    answered = answer(
        service.holder,
        metrics,
        background,
        endpoint=ENDPOINT,
        user_id=body.user_id,
        request_id=request_id,
        call=lambda engine: live_recommend(
            engine,
            state,
            body.user_id,
            k,
            exclude=body.exclude,
            filters=filters,
            exclude_seen=settings.exclude_seen,
            exclude_purchased=body.exclude_purchased,
        ),
        item_ids=lambda result: [item.raw_item_id for item in result.items],
        k=k,
    )
    result, engine = answered.result, answered.engine
    if result.fallback_reason is not None:
        metrics.observe_fallback(ENDPOINT, result.fallback_reason, engine.version)
    if not result.items:
        metrics.observe_empty(ENDPOINT, engine.version)
    remember_list(
        store,
        metrics,
        endpoint=ENDPOINT,
        request_id=request_id,
        model_version=engine.version,
        raw_item_ids=[item.raw_item_id for item in result.items],
    )
    return RecommendResponse.model_validate(
        {
            "items": [ItemOut.fields_of(item) for item in result.items],
            "model_version": engine.version,
            "request_id": request_id,
            "fallback": result.fallback,
            "personalisation": result.personalisation,
            "degraded": store.degraded,
        }
    )
