"""`/v1/admin/rules`: the merchandising rules, versioned with an audit trail (bearer token).

`GET` answers the current version, `PUT` writes a new one (validated first: an invalid
rule is 422 `invalid-request` naming the rule and the reason, and nothing changes),
`GET /v1/admin/rules/history` lists every version with who set it and when. Versions
live in the durable rules log (`shelfwise.stores.rules_log`), next to the event log.

The app's view of the log, the rule set requests steer by, is `RulesBook`
(`shelfwise.serve.rules_book`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from shelfwise.config.rules import MAX_RULES, Rule, RulesConfig
from shelfwise.serve.routes.admin import require_admin
from shelfwise.serve.rules_book import REFRESH_S, RulesBook
from shelfwise.serve.schemas import ErrorResponse
from shelfwise.stores.rules_log import RulesVersion

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing or wrong bearer token."},
    422: {
        "model": ErrorResponse,
        "description": "Invalid rules: the message names the rule and the reason "
        "(code invalid-request); nothing changed.",
    },
    503: {
        "model": ErrorResponse,
        "description": "The rules log cannot be written (code event-log-unavailable); "
        "nothing changed, send the rules again.",
    },
}


class RulesIn(BaseModel):
    """A new version of the rules (replaces the whole set)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "rules": [
                        {"id": "pin-laptop", "action": "pin", "queries": ["laptop"],
                         "items": ["sku-laptop"]},
                        {"id": "bury-lavazza", "action": "bury", "brand": ["Lavazza"],
                         "weight": 0.5},
                    ],
                    "author": "merchandising@shop",
                    "comment": "winter campaign",
                }
            ]
        },
    )  # fmt: skip

    rules: list[Rule] = Field(max_length=MAX_RULES, description="The whole rule set, in order.")
    author: str = Field(
        default="admin", min_length=1, max_length=128, description="Who sets it (audit trail)."
    )
    comment: str = Field(default="", max_length=500, description="Why (audit trail).")

    def config(self) -> RulesConfig:
        """The rules as a rules file."""
        return RulesConfig(rules=self.rules)


class RulesOut(BaseModel):
    """One rules version and its audit record."""

    version: int = Field(description="Rules version; 0 when no rules were ever set.")
    at: str | None = Field(default=None, description="When it was set (UTC, ISO 8601).")
    by: str | None = Field(default=None, description="Who set it (rules_file: the file).")
    source: str | None = Field(default=None, description='"api" or "file".')
    comment: str = Field(default="", description="Why, as given.")
    sha256: str | None = Field(default=None, description="Digest of the rules.")
    rules: list[Rule] = Field(default_factory=list, description="The rules, in order.")
    warnings: list[str] = Field(
        default_factory=list,
        description="Valid rules that never apply (an empty time window, a reversed price "
        "band) and ids used twice: check them.",
    )


class RulesHistory(BaseModel):
    """Every rules version, newest first."""

    versions: list[RulesOut] = Field(description="The versions, newest first.")


router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses=_ERRORS,
)


async def get_rules_book(request: Request) -> RulesBook:
    """The app's rules book."""
    book: RulesBook = request.app.state.rules
    return book


RulesBookDep = Annotated[RulesBook, Depends(get_rules_book)]


@router.get("/rules", response_model=RulesOut, summary="The merchandising rules in force")
def current_rules(book: RulesBookDep) -> RulesOut:
    """The current rules version."""
    book.current()  # the log (and the replicas' latest version) looked at
    return _out(book.log.current())


@router.put(
    "/rules",
    response_model=RulesOut,
    summary="Set a new version of the merchandising rules",
    description="Replaces the whole rule set; applied to the next request of this worker "
    f"and within {REFRESH_S:g} s by every worker sharing the rules log. Kept with who, "
    "when and why in the rules log (GET /v1/admin/rules/history).",
)
def put_rules(body: RulesIn, book: RulesBookDep) -> RulesOut:
    """Validate, write durably, apply."""
    entry = book.set(body.config(), by=body.author, source="api", comment=body.comment)
    return _out(entry)


@router.get("/rules/history", response_model=RulesHistory, summary="Every rules version")
def rules_history(
    book: RulesBookDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="The most versions.")] = 100,
) -> RulesHistory:
    """The versions, newest first."""
    book.current()  # the log (and the replicas' latest version) looked at
    versions = book.log.versions()[::-1][:limit]
    return RulesHistory(versions=[_out(version) for version in versions])


def _out(version: RulesVersion | None) -> RulesOut:
    if version is None:
        return RulesOut(version=0)
    return RulesOut(
        version=version.version,
        at=version.at,
        by=version.by,
        source=version.source,
        comment=version.comment,
        sha256=version.sha256,
        rules=list(version.rules.rules),
        warnings=version.rules.warnings(),
    )
