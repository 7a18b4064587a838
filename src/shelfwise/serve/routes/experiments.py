"""`/v1/admin/experiments`: start, list and stop experiments between loaded versions.

Behind the admin bearer token (mounted with the other admin routes). The state is the
app's `ExperimentBook` (`serve/experiments.py`); the numbers are this replica's.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, status

from shelfwise.serve.deps import ServiceDep
from shelfwise.serve.experiments import ExperimentBook
from shelfwise.serve.experiments_schemas import (
    NAME_PATTERN,
    ExperimentIn,
    ExperimentOut,
    ExperimentsOut,
)
from shelfwise.serve.routes.admin import require_admin
from shelfwise.serve.schemas import ErrorResponse

router = APIRouter(
    prefix="/v1/admin/experiments",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses={
        401: {"model": ErrorResponse, "description": "Missing or wrong bearer token."},
        422: {"model": ErrorResponse, "description": "Invalid request (code invalid-request)."},
    },
)
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "No such experiment (experiment-not-found)."}
}
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {
        "model": ErrorResponse,
        "description": "The name or an endpoint is taken by a running experiment, a "
        "variant's version is not loaded, or the definition contradicts itself: variant "
        "names repeated, shares adding up to more than 1 (code experiment-conflict).",
    }
}
ExperimentName = Annotated[str, Path(pattern=NAME_PATTERN, description="The experiment's name.")]


async def get_book(request: Request) -> ExperimentBook:
    """The app's experiments."""
    book: ExperimentBook = request.app.state.experiments
    return book


BookDep = Annotated[ExperimentBook, Depends(get_book)]


@router.post(
    "",
    response_model=ExperimentOut,
    status_code=status.HTTP_201_CREATED,
    responses=_CONFLICT,
    summary="Start an experiment",
    description="Split users between two loaded model versions (`ab`, sticky by user id) "
    "or interleave their lists (`interleaving`) on the listed endpoints. Clicks and "
    "purchases posted to /v1/events with a served `request_id` count toward the variant "
    "that listed the item.",
)
def start(body: ExperimentIn, book: BookDep, service: ServiceDep) -> ExperimentOut:
    """Start an experiment."""
    return book.start(body, service.holder.models, service.rules)


@router.get(
    "",
    response_model=ExperimentsOut,
    summary="Experiments and their verdicts",
    description="Per experiment: each variant's lists, clicks, conversions and rate, the "
    "sequential test's verdict, the lift with its always-valid confidence interval, "
    "the p-value and the guardrails (this replica's counts).",
)
def list_experiments(book: BookDep) -> ExperimentsOut:
    """Every experiment on this server."""
    return ExperimentsOut(experiments=book.summaries())


@router.get(
    "/{name}",
    response_model=ExperimentOut,
    responses=_NOT_FOUND,
    summary="One experiment",
)
def get_experiment(name: ExperimentName, book: BookDep) -> ExperimentOut:
    """One experiment's counts and verdict."""
    return book.summary(name)


@router.delete(
    "/{name}",
    response_model=ExperimentOut,
    responses=_NOT_FOUND,
    summary="Stop an experiment",
    description="Requests are served as before the experiment; its counts freeze and it "
    "stays listed (stopped) until one of the same name starts.",
)
def stop(name: ExperimentName, book: BookDep) -> ExperimentOut:
    """Stop an experiment and return its final numbers."""
    return book.stop(name)
