"""`POST /v1/predict`: click probabilities of items for a user (the click model)."""

from __future__ import annotations

import time
from typing import Any, Final

from fastapi import APIRouter

from shelfwise.serve.deps import ServiceDep
from shelfwise.serve.schemas import ErrorResponse, PredictionOut, PredictRequest, PredictResponse

ENDPOINT: Final = "predict"
router = APIRouter(tags=["predict"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {
        "model": ErrorResponse,
        "description": "An unknown item (code unknown-item, naming the first one), or a model "
        "version without a click model (code model-not-available).",
    },
    422: {"model": ErrorResponse, "description": "Invalid request (code invalid-request)."},
    503: {"model": ErrorResponse, "description": "No model loaded yet (code not-ready)."},
}


@router.post(
    "/v1/predict",
    response_model=PredictResponse,
    responses=_ERRORS,
    summary="Click probabilities of items for a user",
    description="The click model's probability that the user clicks or buys each item, in "
    "request order (1 to 1000 items). Unknown or anonymous users are scored from an empty "
    'history, with `"fallback": "no-history"`.',
)
def predict(body: PredictRequest, service: ServiceDep) -> PredictResponse:
    """Click probabilities of items for a user."""
    metrics, request_id = service.metrics, service.request_id
    choice = service.holder.choose(body.user_id, request_id)  # canary users: the challenger
    engine = choice.engine
    started = time.perf_counter()
    result = engine.predict(body.user_id, body.item_ids)
    metrics.observe_model(ENDPOINT, engine.version, choice.role, time.perf_counter() - started)
    fallback = "no-history" if result.fallback_reason == "no-history" else None
    if result.fallback_reason is not None:
        metrics.observe_fallback(ENDPOINT, result.fallback_reason, engine.version)
    return PredictResponse(
        predictions=[
            PredictionOut(item_id=item_id, probability=probability)
            for item_id, probability in result.predictions
        ],
        model_version=engine.version,
        request_id=request_id,
        fallback=fallback,
    )
