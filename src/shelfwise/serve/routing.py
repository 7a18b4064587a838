"""Answer a request with the engine the holder picks, and shadow it when asked.

Routes call `answer(...)` with a function of an engine; it picks champion or
challenger (canary), times the call into the per-version metrics, and when the holder
chose a shadow, schedules the same call on the challenger as a background task, which
Starlette runs after the response has been sent: the client never waits for it and
never sees its result or its errors.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from fastapi import BackgroundTasks

from shelfwise.runtime.engine import Engine
from shelfwise.serve.experiments import ExperimentBook
from shelfwise.serve.holder import ModelHolder, Role, overlap_at_k
from shelfwise.serve.metrics import ServeMetrics

logger = logging.getLogger("shelfwise.serve")
_R = TypeVar("_R")


@dataclass(frozen=True)
class Answer(Generic[_R]):
    """An engine's result, with the engine (for `model_version`) and its role."""

    result: _R
    engine: Engine
    role: Role


def answer(
    holder: ModelHolder,
    metrics: ServeMetrics,
    background: BackgroundTasks,
    *,
    endpoint: str,
    user_id: str | None,
    request_id: str,
    call: Callable[[Engine], _R],
    item_ids: Callable[[_R], Sequence[str]],
    k: int,
    experiments: ExperimentBook | None = None,
) -> Answer[_R]:
    """Run `call` on the chosen engine (see the module doc); a request that a running
    experiment enrolls is answered by its variant (`ExperimentBook.route`)."""
    if experiments is not None and experiments.running:
        routed = experiments.route(
            holder.models,
            endpoint=endpoint,
            user_id=user_id,
            request_id=request_id,
            call=call,
            item_ids=item_ids,
            k=k,
        )
        if routed is not None:
            return Answer(routed.result, routed.engine, routed.role)
    choice = holder.choose(user_id, request_id)
    started = time.perf_counter()
    try:
        result = call(choice.engine)
    except Exception:  # counted per version (canary judgement), then the usual 500
        metrics.model_errors.labels(endpoint, choice.engine.version).inc()
        raise
    metrics.observe_model(
        endpoint, choice.engine.version, choice.role, time.perf_counter() - started
    )
    if choice.shadow is not None:
        served = list(item_ids(result))
        background.add_task(_shadow, metrics, choice.shadow, endpoint, call, item_ids, served, k)
    return Answer(result, choice.engine, choice.role)


def _shadow(
    metrics: ServeMetrics,
    engine: Engine,
    endpoint: str,
    call: Callable[[Engine], _R],
    item_ids: Callable[[_R], Sequence[str]],
    served: list[str],
    k: int,
) -> None:
    started = time.perf_counter()
    try:
        shadowed = list(item_ids(call(engine)))
    except Exception:  # a challenger bug must never reach a client
        logger.exception("shadow request on %s failed", engine.version)
        metrics.observe_shadow(endpoint, engine.version, None, 0.0)
        return
    metrics.observe_shadow(
        endpoint, engine.version, overlap_at_k(served, shadowed, k), time.perf_counter() - started
    )
