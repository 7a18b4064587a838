"""State of the online role: the online store and the durable event log.

* `open_store(url)`: the `OnlineStore` a URL names, `memory://` (in-process, one
  replica) or `redis://host:port/db` (shared by replicas; falls back to memory while
  Redis fails, see `degrading.py`).
* `EventLog`: every accepted event, appended to partitioned JSON-lines files that the
  pipeline's ingest reads (`event_log.py`).

Redis (redis-py) is imported only for a `redis://` URL.
"""

from __future__ import annotations

from shelfwise.errors import ConfigError
from shelfwise.stores.event_log import EventLog, read_event_log
from shelfwise.stores.online import (
    Attribution,
    MemoryStore,
    OnlineStore,
    RecentEvent,
    StoreObserver,
    UserEvent,
    UserState,
)

MEMORY_SCHEME = "memory"
REDIS_SCHEMES = ("redis", "rediss")


def open_store(
    url: str, *, timeout: float = 0.1, observer: StoreObserver | None = None
) -> OnlineStore:
    """The online store a URL names.

    Args:
        url: `memory://` for the in-process store (one replica), `redis://host:port/db`
            or `rediss://...` (optionally `?prefix=<project>`) for Redis with an
            in-process fallback.
        timeout: seconds Redis may take to connect or answer before the fallback is used.
        observer: receives failures and the degraded state (the app's metrics).

    Raises:
        ConfigError: an unsupported URL scheme.
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if observer is not None:
        observer.set_store_degraded(False)
    if scheme == MEMORY_SCHEME:
        return MemoryStore()
    if scheme in REDIS_SCHEMES:
        # redis-py is part of the serve extra; imported here so memory:// never needs it.
        from shelfwise.stores.degrading import DegradingStore
        from shelfwise.stores.redis_store import RedisStore

        return DegradingStore(RedisStore(url, timeout=timeout), observer=observer)
    raise ConfigError(
        f"online store URL scheme {scheme or '(none)'!r} is not supported; use memory:// "
        "or redis://host:port/db (SHELFWISE_SERVE_ONLINE_STORE_URL)"
    )


__all__ = [
    "Attribution",
    "EventLog",
    "MEMORY_SCHEME",
    "MemoryStore",
    "OnlineStore",
    "REDIS_SCHEMES",
    "RecentEvent",
    "StoreObserver",
    "UserEvent",
    "UserState",
    "open_store",
    "read_event_log",
]
