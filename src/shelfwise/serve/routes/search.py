"""`POST /v1/search`: free-text product search."""

from __future__ import annotations

from functools import partial
from typing import Any, Final

from fastapi import APIRouter, BackgroundTasks

from shelfwise.runtime.steering import steer_call
from shelfwise.serve.attribution import remember_list
from shelfwise.serve.deps import ServiceDep, checked_k
from shelfwise.serve.routing import answer
from shelfwise.serve.schemas import ErrorResponse, SearchRequest, SearchResponse
from shelfwise.serve.steering import items_out, plan_for

ENDPOINT: Final = "search"
router = APIRouter(tags=["search"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorResponse, "description": "Invalid request (code invalid-request)."},
    503: {"model": ErrorResponse, "description": "No model loaded yet (code not-ready)."},
}


@router.post(
    "/v1/search",
    response_model=SearchResponse,
    responses=_ERRORS,
    summary="Search the catalog",
    description="Hybrid search: BM25 over titles, brands, categories and descriptions "
    "(Chinese segmented into words, simple typos corrected) fused with a multilingual "
    "sentence encoder's nearest neighbours, then re-ranked by LambdaMART, personalised "
    "when `user_id` is a known shopper. Filters apply before ranking; `k` is always "
    "respected. A query that matches nothing answers 200 with an empty list and a `hint`.",
)
def search(body: SearchRequest, service: ServiceDep, background: BackgroundTasks) -> SearchResponse:
    """Search the catalog."""
    metrics, store, request_id = service.metrics, service.store, service.request_id
    k = checked_k(body.k, service.settings, "body.k")
    filters = body.filters.to_filters() if body.filters else None
    # merchandising rules and diversity: ranked deeper, steered, then cut to k; the plan
    # is made inside the call, where an experiment's rule-set variant applies its rules
    plan = partial(
        plan_for,
        service,
        ENDPOINT,
        body.diversity,
        query=body.query,
        filters=filters,
        segment=body.segment,
    )
    answered = answer(
        service.holder,
        metrics,
        background,
        endpoint=ENDPOINT,
        user_id=body.user_id,
        request_id=request_id,
        call=lambda engine: steer_call(
            engine,
            lambda depth: engine.search(
                body.query, depth, filters=filters, raw_user_id=body.user_id, explain=body.explain
            ),
            lambda result: result.items,
            k,
            plan(),
            filters=filters,
        ),
        item_ids=lambda steered: [item.raw_item_id for item in steered.items],
        k=k,
        experiments=service.experiments,
    )
    steered, engine = answered.result, answered.engine
    result, items = steered.result, steered.items
    metrics.observe_rules(ENDPOINT, steered.applied_rules)
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
        engine.explainer.search(body.query, items, rule_reasons=steered.rule_reasons)
        if body.explain
        else None
    )
    return SearchResponse.model_validate(
        {
            "items": items_out(items, explanations),
            "model_version": engine.version,
            "request_id": request_id,
            "hint": result.hint,
            "degraded": store.degraded,
            "applied_rules": steered.applied_rules,
        }
    )
