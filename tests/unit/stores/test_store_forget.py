"""`forget_user` on every online store: the user's events, purchases and counters go."""

from __future__ import annotations

import pytest
import redis

from shelfwise.contracts import EventType
from shelfwise.stores import MemoryStore, OnlineStore
from shelfwise.stores.degrading import DegradingStore
from shelfwise.stores.online import UserEvent
from shelfwise.stores.redis_store import RedisStore


def _forget_one_of_two(store: OnlineStore) -> None:
    store.append(
        [
            UserEvent("gone", "a", EventType.VIEW, 1),
            UserEvent("gone", "b", EventType.PURCHASE, 2),
            UserEvent("kept", "a", EventType.VIEW, 3),
        ]
    )
    assert store.forget_user("gone") == 2
    assert store.state("gone").is_empty
    assert not store.state("gone").purchased
    assert len(store.state("kept").recent) == 1
    assert store.forget_user("gone") == 0  # idempotent


@pytest.mark.parametrize("kind", ["memory", "redis", "degrading"])
def test_forget_user_removes_only_that_user(kind: str, request: pytest.FixtureRequest) -> None:
    store: OnlineStore
    if kind == "memory":
        store = MemoryStore()
    elif kind == "redis":
        store = RedisStore(request.getfixturevalue("redis_url"), timeout=2.0)
    else:
        store = DegradingStore(RedisStore(request.getfixturevalue("redis_url"), timeout=2.0))
    try:
        _forget_one_of_two(store)
    finally:
        store.close()


def test_writes_queued_for_redis_do_not_bring_a_forgotten_user_back(
    closed_redis_url: str,
) -> None:
    store = DegradingStore(RedisStore(closed_redis_url, timeout=0.2))
    store.append([UserEvent("gone", "a", EventType.VIEW, 1)])  # Redis down: queued
    assert store.pending_replays == 1
    with pytest.raises(redis.RedisError):  # Redis refuses: the request fails, retry later
        store.forget_user("gone")
    assert store.fallback.state("gone").is_empty
    assert all(not batch for batch in store._pending)  # type: ignore[attr-defined]
