"""`DegradingStore`: Redis while it answers, the in-process store while it does not.

A small circuit breaker. The first Redis error (refused connection, timeout, any
`redis.RedisError`) switches the store to its `MemoryStore` for `retry_after` seconds:
calls in that window do not touch Redis, so a dead Redis costs one timeout per window,
not one per request. After the window the next call tries Redis again and, if it
answers, switches back. While degraded, `degraded` is True (responses say so) and
the observer's gauge is 1; every failure is counted.

What is written to memory while degraded stays in this process: Redis does not get it
back when it returns. The durable event log has every event either way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Final, TypeVar

import redis

from shelfwise.stores.online import (
    Attribution,
    MemoryStore,
    StoreObserver,
    UserEvent,
    UserState,
)
from shelfwise.stores.redis_store import RedisStore

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS: Final = 5.0
_T = TypeVar("_T")


class DegradingStore:
    """Redis with an in-process fallback (see the module docstring).

    Args:
        primary: the Redis store.
        fallback: the store used while Redis fails.
        observer: told about failures and the degraded state (metrics).
        retry_after: seconds to stay on the fallback before trying Redis again.
        clock: monotonic seconds (tests pass a fake).
    """

    def __init__(
        self,
        primary: RedisStore,
        fallback: MemoryStore | None = None,
        *,
        observer: StoreObserver | None = None,
        retry_after: float = RETRY_AFTER_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Wrap `primary`; nothing is contacted until the first call."""
        self.primary = primary
        self.fallback = fallback if fallback is not None else MemoryStore()
        self.observer = observer
        self.retry_after = retry_after
        self._clock = clock
        self._lock = threading.Lock()
        self._down_until: float | None = None  # None: Redis is in use
        if observer is not None:
            observer.set_store_degraded(False)

    @property
    def degraded(self) -> bool:
        """True while calls go to the in-process fallback."""
        return self._down_until is not None

    @property
    def remote(self) -> bool:
        """Always: even while degraded, the next call may try Redis again."""
        return True

    def append(self, events: Sequence[UserEvent]) -> None:
        """Record events in Redis, or in memory while degraded."""
        self._call(
            "append", lambda: self.primary.append(events), lambda: self.fallback.append(events)
        )

    def state(self, raw_user_id: str) -> UserState:
        """The user's state from Redis, or from memory while degraded."""
        return self._call(
            "state",
            lambda: self.primary.state(raw_user_id),
            lambda: self.fallback.state(raw_user_id),
        )

    def remember_served(self, request_id: str, model_version: str, raw_item_ids: list[str]) -> None:
        """Remember a served list in Redis, or in memory while degraded."""
        self._call(
            "remember_served",
            lambda: self.primary.remember_served(request_id, model_version, raw_item_ids),
            lambda: self.fallback.remember_served(request_id, model_version, raw_item_ids),
        )

    def attribute(self, claims: Sequence[Attribution]) -> list[str | None]:
        """Attribute claims in Redis, or in memory while degraded."""
        return self._call(
            "attribute",
            lambda: self.primary.attribute(claims),
            lambda: self.fallback.attribute(claims),
        )

    def ping(self) -> bool:
        """True when Redis answers (the fallback always does)."""
        return self.primary.ping()

    def close(self) -> None:
        """Close the Redis connections."""
        self.primary.close()

    def _call(self, operation: str, primary: Callable[[], _T], fallback: Callable[[], _T]) -> _T:
        down_until = self._down_until
        if down_until is not None and self._clock() < down_until:
            return fallback()
        try:
            result = primary()
        except (redis.RedisError, OSError) as exc:
            self._mark_down(operation, exc)
            return fallback()
        if down_until is not None:
            self._mark_up()
        return result

    def _mark_down(self, operation: str, exc: Exception) -> None:
        with self._lock:
            was_up = self._down_until is None
            self._down_until = self._clock() + self.retry_after
        if was_up:
            logger.warning(
                "online store: Redis failed (%s: %s); using the in-process store, retrying "
                "every %.0f s",
                type(exc).__name__,
                exc,
                self.retry_after,
            )
        if self.observer is not None:
            self.observer.observe_store_error(operation)
            self.observer.set_store_degraded(True)

    def _mark_up(self) -> None:
        with self._lock:
            if self._down_until is None:
                return
            self._down_until = None
        logger.warning("online store: Redis answers again; back from the in-process store")
        if self.observer is not None:
            self.observer.set_store_degraded(False)
