"""`GET /v1/items/{item_id}/audience`: the users most likely to buy a product.

The ranking is `shelfwise.runtime.audience` (co-occurrence, the product's text
against users' profiles, activity), the same as `shelfwise audience` in batch. Its
response models live here, beside the one route that answers with them.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from shelfwise.runtime.audience import MAX_ACTIVE_DAYS, audience_model
from shelfwise.serve.deps import EngineDep, ServiceDep
from shelfwise.serve.schemas import MAX_ID_CHARS, ErrorResponse

ENDPOINT: Final = "audience"
DEFAULT_K: Final = 100
MAX_K: Final = 10_000  # larger campaigns: `shelfwise audience` writes a file
router = APIRouter(tags=["items"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "Unknown item (code unknown-item)."},
    422: {"model": ErrorResponse, "description": "Invalid request (code invalid-request)."},
    503: {"model": ErrorResponse, "description": "No model loaded yet (code not-ready)."},
}


class AudienceUser(BaseModel):
    """One user of an audience."""

    user_id: str = Field(description="The shop's user id.")
    score: float = Field(description="Higher is likelier to buy; comparable within a list.")


class AudienceResponse(BaseModel):
    """The users most likely to buy a product."""

    item_id: str = Field(description="The product.")
    users: list[AudienceUser] = Field(description="Best first; at most k.")
    signal: str = Field(
        description='What ranked them: "cf+content", "cf" (bought with similar products), '
        '"content" (a product without events, by its text) or "activity" (neither: the '
        "most active users)."
    )
    model_version: str = Field(description="Version of the bundle that answered.")
    request_id: str = Field(description="Also in the X-Request-ID header; quote it in reports.")


@router.get(
    "/v1/items/{item_id}/audience",
    response_model=AudienceResponse,
    responses=_ERRORS,
    summary="Users most likely to buy a product",
    description="For a launch or an ad campaign: users ranked by how likely they are to "
    "buy this product, from what is bought with similar products and from the "
    "product's text against each user's profile (so a product without events yet has "
    "an audience too). Users who already have it are left out unless the model allows "
    "repeat purchases. `active_days` keeps users active in the last N days of the data.",
)
def audience(
    item_id: Annotated[
        str, Path(min_length=1, max_length=MAX_ID_CHARS, description="The shop's item id.")
    ],
    engine: EngineDep,
    service: ServiceDep,
    k: Annotated[int, Query(ge=1, le=MAX_K, description="How many users.")] = DEFAULT_K,
    active_days: Annotated[
        int | None,
        Query(
            ge=1,
            le=MAX_ACTIVE_DAYS,
            description="Only users whose last event is at most this many days before the "
            "data's last event.",
        ),
    ] = None,
) -> AudienceResponse:
    """The users most likely to buy a product."""
    result = audience_model(engine).rank(item_id, k, active_days=active_days)
    if result.signal == "activity":
        service.metrics.observe_fallback(ENDPOINT, "no-signal", engine.version)
    if not result.user_ids:
        service.metrics.observe_empty(ENDPOINT, engine.version)
    return AudienceResponse(
        item_id=item_id,
        users=[
            AudienceUser(user_id=user, score=score)
            for user, score in zip(result.user_ids, result.scores, strict=True)
        ],
        signal=result.signal,
        model_version=engine.version,
        request_id=service.request_id,
    )
