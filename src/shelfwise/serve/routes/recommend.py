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

from shelfwise.runtime.engine import Engine
from shelfwise.runtime.realtime import LiveRecommendation, live_recommend
from shelfwise.runtime.sessions import (
    HistoryEvent,
    HistorySource,
    SessionRecommendation,
    from_recent,
    recommend_session,
    session_allows_repeats,
)
from shelfwise.runtime.steering import explain_recommendation, session_weights, steer_call
from shelfwise.serve.attribution import remember_list
from shelfwise.serve.deps import Service, ServiceDep, checked_k
from shelfwise.serve.routing import answer
from shelfwise.serve.schemas import ErrorResponse, RecommendRequest, RecommendResponse
from shelfwise.serve.steering import items_out, plan_for
from shelfwise.stores import UserState
from shelfwise.stores.online import session_key

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
    'not know get recommendations from their session (`"personalisation": "session"`). '
    "An inline `history` (item ids, oldest first) or a `session_id` (events sent with it) "
    "recommends what follows that visit, anonymous visitors included; the session's own "
    "items may be listed again (`serve.session_repeats`) and `history_used` says which "
    "history was read.",
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
    history, source = _session_history(body, service)
    # made inside the call, where an experiment's rule-set variant applies its rules
    plan = partial(
        plan_for, service, ENDPOINT, body.diversity, filters=filters, segment=body.segment
    )

    def call(engine: Engine, k: int = k) -> LiveRecommendation | SessionRecommendation:
        if source is not None:
            return recommend_session(
                engine,
                history,
                k,
                raw_user_id=body.user_id,
                exclude=[*body.exclude, *(state.purchased if body.exclude_purchased else ())],
                filters=filters,
                allow_repeats=session_allows_repeats(
                    settings.session_repeats, settings.exclude_seen, engine
                ),
            )
        return live_recommend(
            engine,
            state,
            body.user_id,
            k,
            exclude=body.exclude,
            filters=filters,
            exclude_seen=settings.exclude_seen,
            exclude_purchased=body.exclude_purchased,
        )

    answered = answer(
        service.holder,
        metrics,
        background,
        endpoint=ENDPOINT,
        user_id=body.user_id,
        request_id=request_id,
        # merchandising rules and diversity: ranked deeper, steered, then cut to k
        call=lambda engine: steer_call(
            engine,
            partial(call, engine),
            lambda result: result.items,
            k,
            plan(),
            filters=filters,
            exclude=[*body.exclude, *(state.purchased if body.exclude_purchased else ())],
        ),
        item_ids=lambda steered: [item.raw_item_id for item in steered.items],
        k=k,
        experiments=service.experiments,
    )
    steered, engine = answered.result, answered.engine
    result, items = steered.result, steered.items
    metrics.observe_rules(ENDPOINT, steered.applied_rules)
    unknown = result.unknown_items if isinstance(result, SessionRecommendation) else 0
    if result.fallback_reason is not None:
        metrics.observe_fallback(ENDPOINT, result.fallback_reason, engine.version)
    if not items:
        metrics.observe_empty(ENDPOINT, engine.version)
    remember_list(
        store,
        metrics,
        endpoint=ENDPOINT,
        request_id=request_id,
        model_version=engine.version,
        raw_item_ids=[item.raw_item_id for item in items],
    )
    explanations = (
        explain_recommendation(
            engine,
            steered,
            state,
            body.user_id,
            filters,
            session=session_weights(engine, history) if source is not None else None,
        )
        if body.explain
        else None
    )
    return RecommendResponse.model_validate(
        {
            "items": items_out(items, explanations),
            "applied_rules": steered.applied_rules,
            "model_version": engine.version,
            "request_id": request_id,
            "fallback": result.fallback,
            "personalisation": result.personalisation,
            "degraded": store.degraded,
            "history_used": source,
            "unknown_history_items": unknown,
        }
    )


def _session_history(
    body: RecommendRequest, service: Service
) -> tuple[list[HistoryEvent], HistorySource | None]:
    """The session's history (store events of `session_id`, then the inline `history`)
    and which of them it holds; no history source when the request names neither.
    """
    if body.history is None and body.session_id is None:
        return [], None
    stored = (
        from_recent(service.store.state(session_key(body.session_id)).recent)
        if body.session_id is not None
        else []
    )
    inline = [
        HistoryEvent(entry)
        if isinstance(entry, str)
        else HistoryEvent(entry.item_id, entry.event_type, entry.timestamp)
        for entry in body.history or []
    ]
    if body.session_id is None:
        return inline, "request"
    return stored + inline, "session+request" if body.history is not None else "session"
