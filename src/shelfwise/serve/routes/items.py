"""`GET /v1/items/{item_id}/similar`: items similar to an item."""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Path, Query

from shelfwise.serve.deps import EngineDep, ServiceDep, checked_k
from shelfwise.serve.schemas import MAX_ID_CHARS, ErrorResponse, ItemOut, SimilarResponse

ENDPOINT: Final = "similar"
router = APIRouter(tags=["items"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "Unknown item (code unknown-item)."},
    422: {"model": ErrorResponse, "description": "Invalid request (code invalid-request)."},
    503: {"model": ErrorResponse, "description": "No model loaded yet (code not-ready)."},
}


@router.get(
    "/v1/items/{item_id}/similar",
    response_model=SimilarResponse,
    responses=_ERRORS,
    summary="Items similar to an item",
    description="Items bought or viewed together with this one, best first. When none are "
    'known, the most popular items of the same category, with `"fallback": "popular"`.',
)
def similar(
    item_id: Annotated[
        str, Path(min_length=1, max_length=MAX_ID_CHARS, description="The shop's item id.")
    ],
    engine: EngineDep,
    service: ServiceDep,
    k: Annotated[
        int | None,
        Query(ge=1, description="How many items (1..max_k, default default_k)."),
    ] = None,
) -> SimilarResponse:
    """Items similar to an item."""
    metrics = service.metrics
    result = engine.similar(item_id, checked_k(k, service.settings, "query.k"))
    if result.fallback_reason is not None:
        metrics.observe_fallback(ENDPOINT, result.fallback_reason, engine.version)
    if not result.items:
        metrics.observe_empty(ENDPOINT, engine.version)
    return SimilarResponse.model_validate(
        {
            "item_id": item_id,
            "items": [ItemOut.fields_of(item) for item in result.items],
            "model_version": engine.version,
            "request_id": service.request_id,
            "fallback": result.fallback,
        }
    )
