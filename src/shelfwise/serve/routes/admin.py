"""`/v1/admin/*`: swap bundles, set canary and shadow shares (bearer token required).

Mounted only with `SHELFWISE_SERVE_ADMIN_ENABLED=true`, which needs a real
`SHELFWISE_SERVE_ADMIN_TOKEN` (the settings refuse empty or placeholder tokens, so
the server does not start with one). A request without `Authorization: Bearer
<token>` gets 401 `unauthorized`.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any, Final, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from shelfwise.errors import RequestError, ShelfwiseError, UnauthorizedError
from shelfwise.serve.deps import ServiceDep
from shelfwise.serve.holder import CHALLENGER, ModelHolder
from shelfwise.serve.lifecycle import allowed_bundle, load_into
from shelfwise.serve.retrain_trigger import RetrainLauncher
from shelfwise.serve.schemas import ErrorResponse
from shelfwise.serve.settings import ServeSettings

_BEARER: Final = "bearer "
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing or wrong bearer token."},
    422: {"model": ErrorResponse, "description": "Invalid request (code invalid-request)."},
}


def require_admin(request: Request, service: ServiceDep) -> None:
    """Pass only requests with the admin bearer token (compared in constant time).

    Raises:
        UnauthorizedError: no token, or the wrong one.
    """
    header = request.headers.get("authorization", "")
    given = header[len(_BEARER) :] if header.lower().startswith(_BEARER) else ""
    token = service.settings.admin_token
    expected = token.get_secret_value() if token else ""
    if not expected or not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise UnauthorizedError("admin endpoints need `Authorization: Bearer <admin token>`")


router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses=_ERRORS,
)


class ReloadRequest(BaseModel):
    """What to load (a bundle folder or a registry version) and/or the traffic shares."""

    model_config = ConfigDict(extra="forbid")

    bundle_path: str | None = Field(
        default=None, max_length=4096, description="A bundle folder under the bundle root."
    )
    model_version: str | None = Field(
        default=None,
        pattern=r"^[1-9][0-9]{0,8}$",
        description="A registered version (needs SHELFWISE_SERVE_REGISTRY_URI).",
    )
    role: Literal["champion", "challenger"] = "champion"
    canary_fraction: float | None = Field(default=None, ge=0.0, le=1.0)
    shadow_fraction: float | None = Field(default=None, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _one_source(self) -> ReloadRequest:
        if self.bundle_path is not None and self.model_version is not None:
            raise ValueError("give bundle_path or model_version, not both")
        return self


class ModelsState(BaseModel):
    """What the server serves now."""

    champion: str | None
    challenger: str | None
    canary_fraction: float
    shadow_fraction: float
    previous_version: str | None = None


@router.post(
    "/reload",
    response_model=ModelsState,
    summary="Load a bundle and swap it in without dropping requests",
    description="Loads and verifies the bundle off the request path, then swaps it in: "
    "requests in flight finish on the old version. A bundle that fails to load or verify "
    "changes nothing. Also sets the canary / shadow shares.",
)
def reload(body: ReloadRequest, service: ServiceDep) -> ModelsState:
    """Swap a bundle in as champion or challenger."""
    holder, settings = service.holder, service.settings
    previous = None
    path: Path | None = None
    if body.bundle_path is not None:
        path = allowed_bundle(Path(body.bundle_path), settings)
    elif body.model_version is not None:
        path = _registry_path(body.model_version, settings)
    if path is not None:
        try:
            swapped = load_into(
                holder,
                service.metrics,
                path,
                body.role,
                settings,
                version=body.model_version,
            )
        except ShelfwiseError as exc:  # nothing changed; say why, without server paths
            reason = exc.message.replace(str(path), "<bundle>")
            raise RequestError(f"bundle refused ({exc.code}): {reason}") from None
        previous = swapped.previous_version
    if body.canary_fraction is not None or body.shadow_fraction is not None:
        holder.set_fractions(
            canary_fraction=body.canary_fraction, shadow_fraction=body.shadow_fraction
        )
    return _state(holder, previous)


@router.delete(
    "/challenger",
    response_model=ModelsState,
    summary="Stop canary and shadow traffic",
)
def drop_challenger(service: ServiceDep) -> ModelsState:
    """Remove the challenger; every request goes to the champion again."""
    old = service.holder.drop_challenger()
    service.metrics.clear_model(CHALLENGER)
    return _state(service.holder, None if old is None else old.version)


@router.get("/models", response_model=ModelsState, summary="What is served now")
def models(service: ServiceDep) -> ModelsState:
    """Champion and challenger versions and the traffic shares."""
    return _state(service.holder, None)


def _state(holder: ModelHolder, previous: str | None) -> ModelsState:
    snapshot = holder.models
    return ModelsState(
        champion=None if snapshot.champion is None else snapshot.champion.version,
        challenger=None if snapshot.challenger is None else snapshot.challenger.version,
        canary_fraction=snapshot.canary_fraction,
        shadow_fraction=snapshot.shadow_fraction,
        previous_version=previous,
    )


def _registry_path(version: str, settings: ServeSettings) -> Path:
    if settings.registry_uri is None or settings.registry_model is None:
        raise RequestError(
            "model_version needs SHELFWISE_SERVE_REGISTRY_URI and _REGISTRY_MODEL; "
            "or give bundle_path"
        )
    from shelfwise.registry import registry_at

    root = settings.bundle_root or Path(".shelfwise")
    registry = registry_at(
        settings.registry_uri, settings.registry_model, cache_dir=root / "registry-downloads"
    )
    return registry.local_path(version)


class RetrainResponse(BaseModel):
    """What the retrain trigger did."""

    status: str = Field(description="started, already-running, or ignored (no firing alert).")
    trigger: str = Field(description="alertmanager or manual.")
    alerts: list[str] = Field(description="Names of the firing alerts that asked for it.")


@router.post(
    "/retrain",
    response_model=RetrainResponse,
    status_code=202,
    summary="Start a retrain (accepts Alertmanager's webhook payload)",
    description="Starts SHELFWISE_SERVE_RETRAIN_COMMAND in the background, one at a time. "
    "An Alertmanager webhook body whose alerts are all resolved starts nothing.",
)
def retrain(payload: dict[str, Any], request: Request, service: ServiceDep) -> RetrainResponse:
    """Start the configured retrain command."""
    metrics, settings = service.metrics, service.settings
    if settings.retrain_cronjob is not None:
        from shelfwise.serve.k8s_jobs import start_retrain_job
        from shelfwise.serve.retrain_trigger import firing_alerts

        trigger, alerts = firing_alerts(payload)
        status = "ignored"
        if trigger == "manual" or alerts:
            status, _ = start_retrain_job(settings.retrain_cronjob, trigger=trigger, alerts=alerts)
        metrics.retrains.labels(trigger, status).inc()
        return RetrainResponse(status=status, trigger=trigger, alerts=alerts)
    if settings.retrain_command is None:
        raise RequestError(
            "no retrain configured: set SHELFWISE_SERVE_RETRAIN_COMMAND (a command) or "
            "SHELFWISE_SERVE_RETRAIN_CRONJOB (Kubernetes)"
        )
    launcher: RetrainLauncher | None = getattr(request.app.state, "retrain_launcher", None)
    if launcher is None:
        log_dir = request.app.state.event_log.root.parent / "retrain-logs"
        launcher = RetrainLauncher(settings.retrain_command, log_dir)
        request.app.state.retrain_launcher = launcher
    started = launcher.start(payload)
    metrics.retrains.labels(started.trigger, started.status).inc()
    return RetrainResponse(status=started.status, trigger=started.trigger, alerts=started.alerts)
