"""`/v1/admin/*`: swap bundles, pin them, set canary and shadow shares (bearer token).

Mounted only with `SHELFWISE_SERVE_ADMIN_ENABLED=true`, which needs a real
`SHELFWISE_SERVE_ADMIN_TOKEN` (the settings refuse empty, short, repeated or
placeholder tokens, so the server does not start with one). A request without
`Authorization: Bearer <token>` gets 401 `unauthorized`.

Reloads go through the app's `BundleLoader` (`serve/loader.py`): loaded off the event
loop, one at a time (another gets 409 `reload-in-progress`), swapped in with one
reference change, the old engine's memory released once no request uses it. A reload
pins its role against the registry watcher until `DELETE /v1/admin/pin`.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    model_validator,
)

from shelfwise.errors import (
    BundleNotFoundError,
    NotConfiguredError,
    RequestError,
    ShelfwiseError,
    UnauthorizedError,
)
from shelfwise.serve.deps import ServiceDep
from shelfwise.serve.lifecycle import (
    MAX_PATH_BYTES,
    NO_CONTROL_CHARACTERS,
    Swapped,
    allowed_bundle,
)
from shelfwise.serve.loader import BundleLoader
from shelfwise.serve.retrain_trigger import RetrainLauncher
from shelfwise.serve.schemas import ErrorResponse
from shelfwise.serve.settings import ServeSettings

_BEARER: Final = "bearer "
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing or wrong bearer token."},
    422: {"model": ErrorResponse, "description": "Invalid request (code invalid-request)."},
}
_RELOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {
        "model": ErrorResponse,
        "description": "No bundle at bundle_path under the bundle root, no such registered "
        "version (code bundle-not-found), or no registry configured (code not-configured).",
    },
    409: {
        "model": ErrorResponse,
        "description": "Another bundle is loading; one loads at a time, retry when it is "
        "done (code reload-in-progress).",
    },
    422: {
        "model": ErrorResponse,
        "description": "Invalid request, or a bundle that cannot be served: missing, "
        "damaged, refused by its checks; nothing changed (code invalid-request, the "
        "message names the bundle's own error code).",
    },
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

    model_config = ConfigDict(
        extra="forbid",
        # `_one_source` in the schema: never both keys, even one of them null
        json_schema_extra={"not": {"required": ["bundle_path", "model_version"]}},
    )

    bundle_path: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_PATH_BYTES,
        pattern=NO_CONTROL_CHARACTERS,
        description="A bundle folder under the bundle root (no control characters; a "
        "name over 255 bytes answers 404, as no file can have it).",
    )
    model_version: str | None = Field(
        default=None,
        pattern=r"^[1-9][0-9]{0,8}$",
        description="A registered version (needs SHELFWISE_SERVE_REGISTRY_URI).",
    )
    role: Literal["champion", "challenger"] = "champion"
    canary_fraction: StrictFloat | None = Field(default=None, ge=0.0, le=1.0)
    shadow_fraction: StrictFloat | None = Field(default=None, ge=0.0, le=1.0)
    pin: StrictBool = Field(
        default=True,
        description="Keep the registry watcher from changing this role until "
        "DELETE /v1/admin/pin (a manual choice is not undone by the next poll).",
    )

    @model_validator(mode="after")
    def _one_source(self) -> ReloadRequest:
        if {"bundle_path", "model_version"} <= self.model_fields_set:
            raise ValueError("give bundle_path or model_version, not both")
        return self


class LoadingState(BaseModel):
    """The bundle being loaded."""

    role: Literal["champion", "challenger"]
    source: Literal["admin", "registry", "startup"] = Field(description="Who asked for it.")
    model_version: str | None = Field(description="The registry version, if it is one.")
    started_at: float = Field(description="Unix seconds.")


class ModelsState(BaseModel):
    """What the server serves now."""

    champion: str | None
    challenger: str | None
    canary_fraction: float
    shadow_fraction: float
    previous_version: str | None = None
    pinned: dict[str, str | None] = Field(
        default_factory=dict,
        description="Roles an admin pinned, with the pinned version (null: pinned to no "
        "challenger); the registry watcher leaves them alone.",
    )
    loading: LoadingState | None = Field(default=None, description="A load in progress.")


async def get_loader(request: Request) -> BundleLoader:
    """The app's bundle loader (`async`: no thread-pool hop for an attribute read)."""
    loader: BundleLoader = request.app.state.loader
    return loader


LoaderDep = Annotated[BundleLoader, Depends(get_loader)]


@router.post(
    "/reload",
    response_model=ModelsState,
    responses=_RELOAD_ERRORS,
    summary="Load a bundle and swap it in without dropping requests",
    description="Loads, verifies and warms the bundle off the request path, one load at a "
    "time (409 while another runs), then swaps it in: requests in flight finish on the "
    "old version, whose memory is released once they are done. A bundle that fails to "
    "load, verify or warm changes nothing (422, counted as a failed reload). The role is "
    "pinned against the registry watcher unless `pin` is false. Also sets the canary / "
    "shadow shares.",
)
async def reload(body: ReloadRequest, service: ServiceDep, loader: LoaderDep) -> ModelsState:
    """Swap a bundle in as champion or challenger."""
    holder, settings = service.holder, service.settings
    previous = None
    if body.bundle_path is not None or body.model_version is not None:
        if body.bundle_path is not None:
            path = allowed_bundle(Path(body.bundle_path), settings)
            version = None

            def locate() -> Path:
                return path

        else:
            version = body.model_version
            registry = _registry_locator(settings)

            def locate() -> Path:
                return registry(str(version))

        future = loader.submit(locate, body.role, version=version, source="admin", pin=body.pin)
        swapped = await _swap_result(future, body)
        previous = swapped.previous_version
    if body.canary_fraction is not None or body.shadow_fraction is not None:
        holder.set_fractions(
            canary_fraction=body.canary_fraction, shadow_fraction=body.shadow_fraction
        )
    return _state(loader, previous)


async def _swap_result(future: Future[Swapped], body: ReloadRequest) -> Swapped:
    """The load's result; a refused bundle as a 422 that names its error, no paths."""
    try:
        # shielded: a client that hangs up does not cancel the load
        swapped: Swapped = await asyncio.shield(asyncio.wrap_future(future))
    except ShelfwiseError as exc:
        reason = exc.message
        if body.bundle_path is not None:
            reason = reason.replace(str(Path(body.bundle_path).resolve()), "<bundle>")
            reason = reason.replace(body.bundle_path, "<bundle>")
        if isinstance(exc, BundleNotFoundError):
            raise BundleNotFoundError(reason) from None
        raise RequestError(f"bundle refused ({exc.code}): {reason}") from None
    except (OSError, ValueError, RuntimeError, LookupError) as exc:  # a model's own loader
        raise RequestError(
            f"bundle refused (artifact-invalid): it could not be loaded ({type(exc).__name__}); "
            "the server log has the details"
        ) from None
    return swapped


@router.delete(
    "/challenger",
    response_model=ModelsState,
    summary="Stop canary and shadow traffic",
    description="Removes the challenger and pins the challenger role empty, so the "
    "registry watcher does not bring it back until DELETE /v1/admin/pin.",
)
def drop_challenger(loader: LoaderDep) -> ModelsState:
    """Remove the challenger; every request goes to the champion again."""
    return _state(loader, loader.drop_challenger(pin=True))


@router.delete(
    "/pin",
    response_model=ModelsState,
    summary="Let the registry watcher follow the aliases again",
    description="Releases the pin of `role` (default: both roles) that admin reloads set; "
    "with a registry configured, the aliases are read at once and their versions loaded.",
)
def release_pin(
    request: Request,
    loader: LoaderDep,
    role: Annotated[
        Literal["champion", "challenger"] | None,
        Query(description="The role to release; default both."),
    ] = None,
) -> ModelsState:
    """Release admin pins."""
    loader.release_pins(role)
    watcher = getattr(request.app.state, "watcher", None)
    if watcher is not None:
        watcher.wake()
    return _state(loader, None)


@router.get("/models", response_model=ModelsState, summary="What is served now")
def models(loader: LoaderDep) -> ModelsState:
    """Champion and challenger versions, the traffic shares, pins and any load running."""
    return _state(loader, None)


def _state(loader: BundleLoader, previous: str | None) -> ModelsState:
    snapshot = loader.holder.models
    loading = loader.loading
    return ModelsState(
        champion=None if snapshot.champion is None else snapshot.champion.version,
        challenger=None if snapshot.challenger is None else snapshot.challenger.version,
        canary_fraction=snapshot.canary_fraction,
        shadow_fraction=snapshot.shadow_fraction,
        previous_version=previous,
        pinned=dict(loader.pins),
        loading=None
        if loading is None
        else LoadingState(
            role=loading.role,
            source=loading.source,
            model_version=loading.version,
            started_at=loading.started_at,
        ),
    )


def _registry_locator(settings: ServeSettings) -> Callable[[str], Path]:
    """Finds a version's bundle folder (on the loader thread: MLflow may download it).

    Raises:
        NotConfiguredError: no registry is configured.
    """
    if settings.registry_uri is None or settings.registry_model is None:
        raise NotConfiguredError(
            "this server follows no registry, so it cannot find a model_version; set "
            "SHELFWISE_SERVE_REGISTRY_URI and SHELFWISE_SERVE_REGISTRY_MODEL, or give bundle_path"
        )
    uri, model = settings.registry_uri, settings.registry_model
    root = settings.bundle_root or Path(".shelfwise")

    def locate(version: str) -> Path:
        from shelfwise.registry import registry_at

        return registry_at(uri, model, cache_dir=root / "registry-downloads").local_path(version)

    return locate


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
    responses={
        404: {
            "model": ErrorResponse,
            "description": "No retrain is configured (code not-configured).",
        },
        502: {
            "model": ErrorResponse,
            "description": "The Kubernetes API refused the Job (code kubernetes-api).",
        },
    },
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
        raise NotConfiguredError(
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
