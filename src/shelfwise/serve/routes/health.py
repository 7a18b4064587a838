"""Operations: `/healthz` (alive), `/readyz` (a bundle is loaded), `/metrics`.

The probes are `async def`: they answer on the event loop even while every thread of
the pool is busy, so a loaded replica is not restarted for a slow liveness probe.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from shelfwise.serve.deps import EngineDep, ServiceDep
from shelfwise.serve.schemas import ErrorResponse, HealthResponse

router = APIRouter(tags=["operations"])
_NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorResponse, "description": "No model loaded yet (code not-ready)."},
}


@router.get(
    "/healthz",
    response_model=HealthResponse,
    summary="Liveness",
    description="200 while the process runs, model loaded or not.",
)
async def healthz() -> HealthResponse:
    """The process is alive."""
    return HealthResponse(status="ok")


@router.get(
    "/readyz",
    response_model=HealthResponse,
    responses=_NOT_READY,
    summary="Readiness",
    description="200 with the model version once a bundle is loaded, 503 before.",
)
async def readyz(engine: EngineDep) -> HealthResponse:
    """A bundle is loaded and requests can be answered."""
    return HealthResponse(status="ready", model_version=engine.version)


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics",
    description="Every `shelfwise_serve_*` collector in the Prometheus text format.",
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
def metrics(service: ServiceDep) -> Response:
    """The text exposition of this app's collectors."""
    return Response(content=service.metrics.render(), media_type=CONTENT_TYPE_LATEST)
