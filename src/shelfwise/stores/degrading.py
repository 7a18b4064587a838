"""`DegradingStore`: Redis while it answers, the in-process store while it does not.

A small circuit breaker. The first Redis error (refused connection, timeout, any
`redis.RedisError`) switches the store to its `MemoryStore` for `retry_after` seconds:
calls in that window do not touch Redis, so a dead Redis costs one timeout per window,
not one per request. After the window the next call tries Redis again and, if it
answers, switches back. While degraded, `degraded` is True (responses say so) and
the observer's gauge is 1; every failure is counted.

What is written while degraded is also kept for Redis: the events (views, carts,
purchases, ...) and the served lists go to a bounded replay queue (`replay_limit`
entries, oldest dropped first and counted), and the first call that finds Redis back
replays them, in order, before anything else, so a purchase made during the outage
is still excluded from that user's recommendations afterwards, on every replica. The
durable event log has every event either way.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
# Events and lists kept for Redis while it is down: ~200 bytes each, so 100k is ~20 MB;
# at 1,000 events/s that covers ~100 s of outage (older entries are dropped, counted).
REPLAY_LIMIT: Final = 100_000
_REPLAY_CHUNK: Final = 500  # queued writes per Redis round trip when replaying
_T = TypeVar("_T")


@dataclass(frozen=True)
class _Served:
    request_id: str
    model_version: str
    raw_item_ids: list[str]


_Pending = Sequence[UserEvent] | _Served


class DegradingStore:
    """Redis with an in-process fallback (see the module docstring).

    Args:
        primary: the Redis store.
        fallback: the store used while Redis fails.
        observer: told about failures and the degraded state (metrics).
        retry_after: seconds to stay on the fallback before trying Redis again.
        replay_limit: writes (event batches, served lists) kept for Redis while it is
            down; past it the oldest are dropped (`dropped_replays` counts them).
        clock: monotonic seconds (tests pass a fake).
    """

    def __init__(
        self,
        primary: RedisStore,
        fallback: MemoryStore | None = None,
        *,
        observer: StoreObserver | None = None,
        retry_after: float = RETRY_AFTER_SECONDS,
        replay_limit: int = REPLAY_LIMIT,
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
        # writes made while degraded, oldest first, replayed when Redis answers again
        self._pending: deque[_Pending] = deque()
        self._replay_limit = replay_limit
        self._replaying = threading.Lock()
        self.dropped_replays = 0
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
        """Record events in Redis, or in memory (and the replay queue) while degraded."""
        batch = list(events)

        def kept() -> None:
            self.fallback.append(batch)
            self._keep(batch)

        self._call("append", lambda: self.primary.append(batch), kept)

    def state(self, raw_user_id: str) -> UserState:
        """The user's state from Redis, or from memory while degraded."""
        return self._call(
            "state",
            lambda: self.primary.state(raw_user_id),
            lambda: self.fallback.state(raw_user_id),
        )

    def forget_user(self, raw_user_id: str) -> int:
        """Forget the user in memory and in Redis; a Redis failure raises (the request
        fails and can be retried) rather than answer that a user was forgotten when
        Redis still holds them."""
        with self._lock:  # writes queued for Redis would bring the user back
            self._pending = deque(
                write
                if isinstance(write, _Served)
                else [event for event in write if event.raw_user_id != raw_user_id]
                for write in self._pending
            )
        in_memory = self.fallback.forget_user(raw_user_id)
        return max(in_memory, self.primary.forget_user(raw_user_id))

    def remember_served(self, request_id: str, model_version: str, raw_item_ids: list[str]) -> None:
        """Remember a served list in Redis, or in memory (and the replay queue) while degraded."""

        def kept() -> None:
            self.fallback.remember_served(request_id, model_version, raw_item_ids)
            self._keep(_Served(request_id, model_version, list(raw_item_ids)))

        self._call(
            "remember_served",
            lambda: self.primary.remember_served(request_id, model_version, raw_item_ids),
            kept,
        )

    @property
    def pending_replays(self) -> int:
        """Writes waiting for Redis to come back."""
        return len(self._pending)

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
        if down_until is None and not self._pending:
            try:
                return primary()
            except (redis.RedisError, OSError) as exc:
                self._mark_down(operation, exc)
                return fallback()
        # Redis may be back: one thread first replays what it missed, in order; the
        # others keep using the fallback meanwhile (their writes join the queue).
        if not self._replaying.acquire(blocking=False):
            return fallback()
        try:
            self._replay()
            result = primary()
        except (redis.RedisError, OSError) as exc:
            self._mark_down(operation, exc)
            return fallback()
        finally:
            self._replaying.release()
        self._mark_up()
        return result

    def _keep(self, write: _Pending) -> None:
        """Queue a write made while degraded for Redis (bounded; the oldest go first)."""
        with self._lock:
            self._pending.append(write)
            while len(self._pending) > self._replay_limit:
                self._pending.popleft()
                self.dropped_replays += 1
                if self.dropped_replays == 1:
                    logger.warning(
                        "online store: Redis has been down for more than %d writes; the "
                        "oldest are no longer kept for it (the event log still has them)",
                        self._replay_limit,
                    )

    def _replay(self) -> None:
        """Send the queued writes to Redis, oldest first, up to `_REPLAY_CHUNK` per round
        trip; a write is dequeued only once Redis took it.

        Raises:
            redis.RedisError, OSError: Redis failed again (the rest stays queued).
        """
        while True:
            with self._lock:
                if not self._pending:
                    return
                chunk = list(itertools.islice(self._pending, _REPLAY_CHUNK))
            # the leading run of one kind: served lists in one pipeline, events in one append
            served: list[_Served] = []
            batches: list[Sequence[UserEvent]] = []
            for write in chunk:
                if isinstance(write, _Served):
                    if batches:
                        break
                    served.append(write)
                else:
                    if served:
                        break
                    batches.append(write)
            if served:
                self.primary.remember_served_many(
                    [
                        (entry.request_id, entry.model_version, entry.raw_item_ids)
                        for entry in served
                    ]
                )
            else:
                self.primary.append([event for batch in batches for event in batch])
            sent: list[_Pending] = [*served, *batches]
            with self._lock:
                for write in sent:
                    if self._pending and self._pending[0] is write:
                        self._pending.popleft()

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
