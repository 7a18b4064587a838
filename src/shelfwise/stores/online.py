"""The online store: what each shopper just did, and which lists were served.

`OnlineStore` is the protocol; `MemoryStore` (here) keeps everything in the process,
`RedisStore` (`redis_store.py`) in a Redis server shared by replicas, and
`DegradingStore` (`degrading.py`) wraps Redis and falls back to memory when it fails.
`open_store(url)` picks one by URL scheme.

Per user the store keeps:

* recent events, newest first, at most `recent_limit` (default 50);
* the purchased items, at most `purchased_limit` (default 500), for exclusion;
* short-term counters by event type (reset when the user is idle for `counter_ttl`).

Per served list (`remember_served`) it keeps the model version and item ids for
`served_ttl` seconds (memory: also at most `served_limit` lists), so that a later click
or purchase carrying the list's `request_id` is attributed once (`attribute`).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from shelfwise.contracts import EventType

RECENT_LIMIT: Final = 50
PURCHASED_LIMIT: Final = 500
USER_TTL_SECONDS: Final = 7 * 24 * 3600  # a user idle this long is forgotten
COUNTER_TTL_SECONDS: Final = 1800  # short-term counters: one idle half hour resets them
# Clicks later than an hour are not attributed. Every served list is one key: at 200
# lists/s an hour is ~720k keys (~100 MB in Redis); a day would be 24 times that.
SERVED_TTL_SECONDS: Final = 3600
MEMORY_MAX_USERS: Final = 100_000
MEMORY_MAX_SERVED: Final = 100_000


SESSION_KEY_PREFIX: Final = "\x1fsession:"  # a unit separator: no user id has one


def session_key(session_id: str) -> str:
    """The store key of a session's events (`/v1/events` with a `session_id`).

    A session's events are kept like a user's, under a key no raw user id can equal
    (user ids are printable), so every backend stores sessions without a new API.
    """
    return SESSION_KEY_PREFIX + session_id


@dataclass(frozen=True)
class UserEvent:
    """One event of one user, as the store keeps it (timestamp: unix seconds)."""

    raw_user_id: str
    raw_item_id: str
    event_type: EventType
    timestamp: int


@dataclass(frozen=True)
class RecentEvent:
    """One entry of a user's recent events."""

    raw_item_id: str
    event_type: EventType
    timestamp: int


@dataclass(frozen=True)
class UserState:
    """What the store knows about a user right now."""

    recent: list[RecentEvent] = field(default_factory=list)  # newest first
    purchased: frozenset[str] = frozenset()
    counters: dict[str, int] = field(default_factory=dict)  # event type -> count

    @property
    def is_empty(self) -> bool:
        """True when the user has no recent events."""
        return not self.recent


@dataclass(frozen=True)
class Attribution:
    """An event that refers to a served list (`request_id`) and one of its items."""

    request_id: str
    raw_item_id: str
    event_type: EventType


class StoreObserver(Protocol):
    """Receives the store's health (`ServeMetrics` implements it)."""

    def observe_store_error(self, operation: str) -> None:
        """Count one failed call to the store's backend."""
        ...

    def set_store_degraded(self, degraded: bool) -> None:
        """Mark whether the store answers from its fallback."""
        ...


class OnlineStore(Protocol):
    """Recent events per user and served lists, shared by the replicas that use it."""

    @property
    def degraded(self) -> bool:
        """True while the store answers from a fallback instead of its backend."""
        ...

    @property
    def remote(self) -> bool:
        """True when calls may wait on the network: servers keep them off the event loop."""
        ...

    def append(self, events: Sequence[UserEvent]) -> None:
        """Record events (any users, any order within a batch)."""
        ...

    def state(self, raw_user_id: str) -> UserState:
        """The user's recent events, purchased items and counters."""
        ...

    def remember_served(self, request_id: str, model_version: str, raw_item_ids: list[str]) -> None:
        """Remember which items a response listed and which model version served it."""
        ...

    def attribute(self, claims: Sequence[Attribution]) -> list[str | None]:
        """For each claim, the serving model version when the claim counts, else None.

        A claim counts when its request id names a remembered list that holds the item,
        and the same (request id, item, event type) has not been counted before.
        """
        ...

    def forget_user(self, raw_user_id: str) -> int:
        """Remove the user's recent events, purchases and counters (DELETE /v1/users);
        return how many recent events were removed."""
        ...

    def ping(self) -> bool:
        """True when the backend answers."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@dataclass
class _User:
    recent: list[RecentEvent] = field(default_factory=list)  # newest first
    purchased: OrderedDict[str, int] = field(default_factory=OrderedDict)  # oldest first
    counters: dict[str, int] = field(default_factory=dict)
    touched: float = 0.0
    counted: float = 0.0


@dataclass
class _Served:
    model_version: str
    items: frozenset[str]
    at: float
    counted: set[tuple[str, str]] = field(default_factory=set)


class MemoryStore:
    """The in-process store: thread-safe, bounded in users, events and lists.

    Args:
        recent_limit: recent events kept per user.
        purchased_limit: purchased items kept per user.
        max_users: users kept; the least recently active are dropped first.
        max_served: served lists kept; the oldest are dropped first.
        user_ttl: seconds of inactivity after which a user is forgotten.
        counter_ttl: seconds of inactivity after which a user's counters reset.
        served_ttl: seconds a served list can be attributed to.
        clock: seconds, monotonic enough for TTLs (tests pass a fake).
    """

    def __init__(
        self,
        *,
        recent_limit: int = RECENT_LIMIT,
        purchased_limit: int = PURCHASED_LIMIT,
        max_users: int = MEMORY_MAX_USERS,
        max_served: int = MEMORY_MAX_SERVED,
        user_ttl: float = USER_TTL_SECONDS,
        counter_ttl: float = COUNTER_TTL_SECONDS,
        served_ttl: float = SERVED_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Create an empty store."""
        self.recent_limit = recent_limit
        self.purchased_limit = purchased_limit
        self.max_users = max_users
        self.max_served = max_served
        self.user_ttl = user_ttl
        self.counter_ttl = counter_ttl
        self.served_ttl = served_ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._users: OrderedDict[str, _User] = OrderedDict()  # least recently active first
        self._served: OrderedDict[str, _Served] = OrderedDict()  # oldest first

    @property
    def degraded(self) -> bool:
        """Never: the process itself is the backend."""
        return False

    @property
    def remote(self) -> bool:
        """Never: every call is a dictionary lookup under a lock."""
        return False

    def append(self, events: Sequence[UserEvent]) -> None:
        """Record events; each user's recent list keeps the newest `recent_limit`."""
        now = self._clock()
        with self._lock:
            for event in events:
                user = self._live_user(event.raw_user_id, now)
                if user is None:
                    user = self._users[event.raw_user_id] = _User()
                self._users.move_to_end(event.raw_user_id)
                if now - user.counted > self.counter_ttl:
                    user.counters = {}
                user.touched = user.counted = now
                user.recent.insert(
                    0, RecentEvent(event.raw_item_id, event.event_type, event.timestamp)
                )
                del user.recent[self.recent_limit :]
                user.counters[event.event_type.value] = (
                    user.counters.get(event.event_type.value, 0) + 1
                )
                if event.event_type is EventType.PURCHASE:
                    user.purchased.pop(event.raw_item_id, None)
                    user.purchased[event.raw_item_id] = event.timestamp
                    while len(user.purchased) > self.purchased_limit:
                        user.purchased.popitem(last=False)
            while len(self._users) > self.max_users:
                self._users.popitem(last=False)

    def state(self, raw_user_id: str) -> UserState:
        """A copy of the user's state (empty for unknown or expired users)."""
        now = self._clock()
        with self._lock:
            user = self._live_user(raw_user_id, now)
            if user is None:
                return UserState()
            counters = dict(user.counters) if now - user.counted <= self.counter_ttl else {}
            return UserState(list(user.recent), frozenset(user.purchased), counters)

    def forget_user(self, raw_user_id: str) -> int:
        """Remove everything kept about one user; return the recent events removed."""
        with self._lock:
            user = self._users.pop(raw_user_id, None)
        return 0 if user is None else len(user.recent)

    def remember_served(self, request_id: str, model_version: str, raw_item_ids: list[str]) -> None:
        """Remember a served list (the oldest lists go past `max_served`)."""
        now = self._clock()
        with self._lock:
            self._served.pop(request_id, None)
            self._served[request_id] = _Served(model_version, frozenset(raw_item_ids), now)
            while len(self._served) > self.max_served:
                self._served.popitem(last=False)

    def attribute(self, claims: Sequence[Attribution]) -> list[str | None]:
        """The model version for each claim that counts (see `OnlineStore.attribute`)."""
        now = self._clock()
        versions: list[str | None] = []
        with self._lock:
            for claim in claims:
                served = self._served.get(claim.request_id)
                key = (claim.raw_item_id, claim.event_type.value)
                if (
                    served is None
                    or now - served.at > self.served_ttl
                    or claim.raw_item_id not in served.items
                    or key in served.counted
                ):
                    versions.append(None)
                    continue
                served.counted.add(key)
                versions.append(served.model_version)
        return versions

    def ping(self) -> bool:
        """Always True."""
        return True

    def close(self) -> None:
        """Nothing to release."""

    def _live_user(self, raw_user_id: str, now: float) -> _User | None:
        user = self._users.get(raw_user_id)
        if user is not None and now - user.touched > self.user_ttl:
            del self._users[raw_user_id]
            return None
        return user
