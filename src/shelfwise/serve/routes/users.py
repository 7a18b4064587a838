"""`DELETE /v1/users/{raw_user_id}`: forget a shopper (admin bearer token).

At once: the user's recent events, purchases and counters leave the online store
(memory or Redis). At the next run: the user goes on the forget list
(`<home>/privacy/forget.jsonl`), so ingest drops their events from every input (the
shop's files, the event log, a retrain's merged events; `forgotten-user` in the
validation report); `shelfwise forget` also removes them from files at once. Every call
leaves an audit record (`<home>/privacy/audit.jsonl`) that names the pseudonym, never
the raw id; the access log shows the path with the id redacted (`serve.privacy`).
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from shelfwise.errors import NotConfiguredError, PrivacyKeyError
from shelfwise.privacy import UserPrivacy
from shelfwise.serve.deps import ServiceDep
from shelfwise.serve.routes.admin import require_admin
from shelfwise.serve.schemas import MAX_ID_CHARS, ErrorResponse

ACTOR: Final = "admin-api"
router = APIRouter(tags=["privacy"], dependencies=[Depends(require_admin)])
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing or wrong bearer token."},
    422: {"model": ErrorResponse, "description": "Invalid user id (code invalid-request)."},
    404: {
        "model": ErrorResponse,
        "description": "SHELFWISE_PRIVACY_KEY is not set on the server: the forget list "
        "holds keyed hashes only, so forgetting is not configured (code not-configured).",
    },
}


class ForgetResponse(BaseModel):
    """What was removed now and what the next run removes."""

    model_config = ConfigDict(extra="forbid")

    pseudonym: str = Field(description="The user's keyed hash: the forget list's entry.")
    online_events_removed: int = Field(
        description="Recent events removed from the online store now."
    )
    newly_listed: bool = Field(description="False when the user was on the forget list already.")
    next_run: str = Field(description="What the next training run does with the user.")
    request_id: str


async def get_privacy(request: Request) -> UserPrivacy:
    """The server's privacy settings, key and forget list (`app.state.privacy`)."""
    privacy: UserPrivacy = request.app.state.privacy
    return privacy


PrivacyDep = Annotated[UserPrivacy, Depends(get_privacy)]


@router.delete(
    "/v1/users/{raw_user_id}",
    response_model=ForgetResponse,
    responses=_ERRORS,
    summary="Forget a user (admin)",
    description="Removes the user's events from the online store now, puts the user on "
    "the forget list that the next training run applies (their events are dropped from "
    "its inputs and counted as forgotten-user) and writes an audit record with the "
    "user's pseudonym. Idempotent.",
)
def forget_user(
    raw_user_id: Annotated[str, Path(min_length=1, max_length=MAX_ID_CHARS)],
    service: ServiceDep,
    privacy: PrivacyDep,
    by: Annotated[
        str | None,
        Query(
            pattern=r"^[\w.@:+-]{1,128}$",
            description="Who asks (an operator, a ticket): kept in the audit record.",
        ),
    ] = None,
) -> ForgetResponse:
    """Forget one user."""
    try:  # refused without a key, before anything changes
        pseudonym = privacy.pseudonym(raw_user_id)
    except PrivacyKeyError as exc:
        raise NotConfiguredError(exc.message) from None
    removed = service.store.forget_user(privacy.user(raw_user_id))
    new = privacy.forget.add([pseudonym], via="api")
    privacy.forget.audit(
        actor=ACTOR if by is None else f"{ACTOR}:{by}",
        action="forget-user",
        pseudonym=pseudonym,
        detail={
            "online_events_removed": removed,
            "newly_listed": bool(new),
            "request_id": service.request_id,
        },
    )
    return ForgetResponse(
        pseudonym=pseudonym,
        online_events_removed=removed,
        newly_listed=bool(new),
        next_run="events dropped at ingest (forgotten-user in the validation report)",
        request_id=service.request_id,
    )
