"""The online store contract, run against MemoryStore and RedisStore (a real redis-server),
and the DegradingStore's fallback when Redis is refused, stopped and back.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest

from shelfwise.contracts import EventType
from shelfwise.errors import ConfigError
from shelfwise.serve.metrics import ServeMetrics
from shelfwise.stores import MemoryStore, OnlineStore, open_store
from shelfwise.stores.degrading import DegradingStore
from shelfwise.stores.online import Attribution, UserEvent
from shelfwise.stores.redis_store import RedisStore, split_prefix

VIEW, CLICK, PURCHASE = EventType.VIEW, EventType.CLICK, EventType.PURCHASE

StoreFactory = Callable[..., OnlineStore]


@pytest.fixture(params=["memory", "redis"])
def make_store(request: pytest.FixtureRequest) -> Iterator[StoreFactory]:
    """Build a store of the parametrized kind with the given limits."""
    made: list[OnlineStore] = []

    def make(**limits: int) -> OnlineStore:
        store: OnlineStore
        if request.param == "memory":
            store = MemoryStore(**limits)
        else:
            store = RedisStore(request.getfixturevalue("redis_url"), timeout=2.0, **limits)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


def events(user: str, *pairs: tuple[str, EventType], start: int = 100) -> list[UserEvent]:
    return [
        UserEvent(user, item, event_type, start + n) for n, (item, event_type) in enumerate(pairs)
    ]


# --- contract: every store -------------------------------------------------------------


def test_recent_events_newest_first_bounded(make_store: StoreFactory) -> None:
    store = make_store(recent_limit=3)
    store.append(events("u1", ("a", VIEW), ("b", CLICK), ("c", VIEW), ("d", VIEW)))
    state = store.state("u1")
    assert [(e.raw_item_id, e.event_type, e.timestamp) for e in state.recent] == [
        ("d", VIEW, 103),
        ("c", VIEW, 102),
        ("b", CLICK, 101),
    ]
    assert not state.is_empty


def test_unknown_user_has_empty_state(make_store: StoreFactory) -> None:
    state = make_store().state("nobody")
    assert state.is_empty
    assert state.purchased == frozenset()
    assert state.counters == {}


def test_users_are_separate(make_store: StoreFactory) -> None:
    store = make_store()
    store.append(events("u1", ("a", VIEW)) + events("u2", ("b", PURCHASE)))
    assert [e.raw_item_id for e in store.state("u1").recent] == ["a"]
    assert store.state("u1").purchased == frozenset()
    assert store.state("u2").purchased == {"b"}


def test_purchased_set_bounded_newest_kept(make_store: StoreFactory) -> None:
    store = make_store(purchased_limit=2)
    store.append(events("u1", ("a", PURCHASE), ("b", PURCHASE), ("c", VIEW), ("d", PURCHASE)))
    assert store.state("u1").purchased == {"b", "d"}


def test_counters_by_event_type(make_store: StoreFactory) -> None:
    store = make_store()
    store.append(events("u1", ("a", VIEW), ("b", VIEW)))
    store.append(events("u1", ("a", PURCHASE)))
    assert store.state("u1").counters == {"view": 2, "purchase": 1}


def test_attribution_counts_listed_items_once(make_store: StoreFactory) -> None:
    store = make_store()
    store.remember_served("req-1", "v7", ["a", "b"])
    claims = [
        Attribution("req-1", "a", CLICK),
        Attribution("req-1", "a", CLICK),  # the same click again: not counted twice
        Attribution("req-1", "a", PURCHASE),  # another type on the same item counts
        Attribution("req-1", "z", CLICK),  # not in the list
        Attribution("req-unknown", "a", CLICK),  # no such list
    ]
    assert store.attribute(claims) == ["v7", None, "v7", None, None]
    assert store.attribute([Attribution("req-1", "a", CLICK)]) == [None]
    assert store.attribute([]) == []


def test_ping(make_store: StoreFactory) -> None:
    assert make_store().ping()
    assert not make_store().degraded


# --- memory specifics ------------------------------------------------------------------


def test_memory_store_bounds_users_and_lists() -> None:
    store = MemoryStore(max_users=2, max_served=1)
    for user in ("u1", "u2", "u3"):
        store.append(events(user, ("a", VIEW)))
    assert store.state("u1").is_empty  # least recently active went first
    assert not store.state("u3").is_empty
    store.remember_served("r1", "v1", ["a"])
    store.remember_served("r2", "v1", ["a"])
    assert store.attribute([Attribution("r1", "a", CLICK), Attribution("r2", "a", CLICK)]) == [
        None,
        "v1",
    ]


def test_memory_store_expires_idle_users_and_counters() -> None:
    now = [0.0]
    store = MemoryStore(user_ttl=100, counter_ttl=10, clock=lambda: now[0])
    store.append(events("u1", ("a", VIEW)))
    now[0] = 11.0
    assert store.state("u1").counters == {}  # short-term counters reset
    assert [e.raw_item_id for e in store.state("u1").recent] == ["a"]
    now[0] = 200.0
    assert store.state("u1").is_empty


# --- Redis specifics --------------------------------------------------------------------


def test_redis_keys_live_under_the_prefix_with_ttls(redis_url: str) -> None:
    import redis

    store = RedisStore(redis_url, timeout=2.0)
    store.append(events("u:1", ("a", PURCHASE)))
    store.remember_served("req-1", "v1", ["a"])
    address, prefix = split_prefix(redis_url)
    client = redis.Redis.from_url(address, decode_responses=True)
    keys = sorted(client.scan_iter(f"{prefix}:*"))
    assert keys == [
        f"{prefix}:counters:u:1",
        f"{prefix}:purchased:u:1",
        f"{prefix}:recent:u:1",
        f"{prefix}:served:req-1",
    ]
    assert all(client.ttl(key) > 0 for key in keys)
    client.close()
    store.close()


def test_split_prefix_keeps_other_parameters() -> None:
    assert split_prefix("redis://h:1/0?prefix=shop&ssl_cert_reqs=none") == (
        "redis://h:1/0?ssl_cert_reqs=none",
        "shop",
    )
    assert split_prefix("redis://h:1/0") == ("redis://h:1/0", "shelfwise")


def test_open_store_by_url(closed_redis_url: str) -> None:
    assert isinstance(open_store("memory://"), MemoryStore)
    assert isinstance(open_store(closed_redis_url), DegradingStore)
    with pytest.raises(ConfigError, match="scheme 'postgres' is not supported"):
        open_store("postgres://user:secret@db/0")


# --- degrading ---------------------------------------------------------------------------


def metric(metrics: ServeMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_refused_redis_degrades_to_memory_and_counts(closed_redis_url: str) -> None:
    metrics = ServeMetrics()
    now = [0.0]
    store = DegradingStore(
        RedisStore(closed_redis_url), observer=metrics, retry_after=5, clock=lambda: now[0]
    )
    assert not store.degraded
    store.append(events("u1", ("a", VIEW)))  # refused -> memory
    assert store.degraded
    assert [e.raw_item_id for e in store.state("u1").recent] == ["a"]
    assert metric(metrics, "shelfwise_serve_online_store_degraded") == 1
    assert metric(metrics, "shelfwise_serve_online_store_errors_total", operation="append") == 1
    store.state("u1")  # inside the retry window: Redis is not tried
    assert metric(metrics, "shelfwise_serve_online_store_errors_total", operation="state") == 0
    now[0] = 6.0
    store.state("u1")  # retried, refused again
    assert metric(metrics, "shelfwise_serve_online_store_errors_total", operation="state") == 1
    assert not store.ping()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _start_redis(port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    probe = RedisStore(f"redis://127.0.0.1:{port}/0", timeout=0.5)
    for _ in range(100):
        if probe.ping():
            probe.close()
            return server
        time.sleep(0.05)
    server.kill()
    pytest.skip("a private redis-server did not answer")


def test_redis_stopped_then_back_gets_what_it_missed(redis_server_url: str) -> None:
    # issue 14: a purchase sent while Redis was down was forgotten when it came back
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not on PATH")
    port = _free_port()
    server = _start_redis(port)
    metrics = ServeMetrics()
    now = [0.0]
    store = DegradingStore(
        RedisStore(f"redis://127.0.0.1:{port}/0", timeout=0.5),
        observer=metrics,
        retry_after=5,
        clock=lambda: now[0],
    )
    try:
        store.append(events("u1", ("a", VIEW)))
        assert not store.degraded
        server.terminate()
        server.wait(timeout=10)
        store.append(events("u1", ("b", VIEW), ("sku-bought", PURCHASE)))
        assert store.degraded
        store.remember_served("req-during-outage", "v7", ["sku-x", "sku-y"])
        assert [e.raw_item_id for e in store.state("u1").recent] == ["sku-bought", "b"]
        assert metric(metrics, "shelfwise_serve_online_store_degraded") == 1
        assert store.pending_replays == 2
        server = _start_redis(port)  # back, empty (no persistence)
        now[0] = 10.0
        store.append(events("u1", ("c", VIEW)))
        assert not store.degraded
        assert store.pending_replays == 0
        assert metric(metrics, "shelfwise_serve_online_store_degraded") == 0
        fresh = RedisStore(f"redis://127.0.0.1:{port}/0", timeout=0.5)  # what replicas see
        state = fresh.state("u1")
        assert [e.raw_item_id for e in state.recent] == ["c", "sku-bought", "b"]
        assert state.purchased == frozenset({"sku-bought"})
        claim = Attribution("req-during-outage", "sku-y", PURCHASE)
        assert fresh.attribute([claim]) == ["v7"]
        fresh.close()
    finally:
        store.close()
        server.kill()
        server.wait(timeout=10)


def test_replay_queue_is_bounded_and_counts_what_it_drops(closed_redis_url: str) -> None:
    store = DegradingStore(RedisStore(closed_redis_url), replay_limit=3, clock=lambda: 0.0)
    for n in range(5):
        store.append(events("u1", (f"i{n}", VIEW)))
    assert store.degraded
    assert (store.pending_replays, store.dropped_replays) == (3, 2)
    assert len(store.state("u1").recent) == 5  # this replica's memory keeps them all
