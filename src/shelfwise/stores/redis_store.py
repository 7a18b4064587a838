"""`RedisStore`: the online store in Redis, shared by every replica of the service.

Keys (all under one prefix per project, `shelfwise` unless the URL says `?prefix=`):

=============================  ======  ===================================================
key                            type    holds
=============================  ======  ===================================================
<prefix>:recent:<user>         list    `[item, event type, timestamp]` JSON, newest first,
                                       LTRIM-ed to `recent_limit`; TTL `user_ttl`
<prefix>:purchased:<user>      zset    item -> purchase timestamp, the newest
                                       `purchased_limit` kept; TTL `user_ttl`
<prefix>:counters:<user>       hash    event type -> count; TTL `counter_ttl` (short-term)
<prefix>:served:<request id>   string  `{"model_version", "items"}` JSON; TTL `served_ttl`
<prefix>:counted:<request id>  set     `event type|item` already attributed; TTL `served_ttl`
=============================  ======  ===================================================

The user id is the last part of each key, so no two users share a key. Every call is
one pipelined round trip (two for `attribute`). Errors are `redis.RedisError`; the
`DegradingStore` catches them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from shelfwise.contracts import EventType
from shelfwise.stores.online import (
    COUNTER_TTL_SECONDS,
    PURCHASED_LIMIT,
    RECENT_LIMIT,
    SERVED_TTL_SECONDS,
    USER_TTL_SECONDS,
    Attribution,
    RecentEvent,
    UserEvent,
    UserState,
)

DEFAULT_PREFIX: Final = "shelfwise"
PREFIX_PARAMETER: Final = "prefix"


def split_prefix(url: str) -> tuple[str, str]:
    """The URL without its `prefix` query parameter, and the prefix (default shelfwise)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = next((value for key, value in query if key == PREFIX_PARAMETER), DEFAULT_PREFIX)
    rest = urlencode([(key, value) for key, value in query if key != PREFIX_PARAMETER])
    return urlunsplit(parts._replace(query=rest)), prefix or DEFAULT_PREFIX


class RedisStore:
    """The online store in Redis (lists with LTRIM, pipelines, TTLs).

    Args:
        url: `redis://host:port/db` (optionally `?prefix=<project>`), or `rediss://`.
        timeout: seconds to connect and to wait for an answer; short, so that a
            stalled Redis turns into a fallback rather than a slow response.
        recent_limit, purchased_limit, user_ttl, counter_ttl, served_ttl: as for
            `MemoryStore`.
        client: a ready client (tests); `url` then only gives the prefix.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 0.1,
        recent_limit: int = RECENT_LIMIT,
        purchased_limit: int = PURCHASED_LIMIT,
        user_ttl: int = USER_TTL_SECONDS,
        counter_ttl: int = COUNTER_TTL_SECONDS,
        served_ttl: int = SERVED_TTL_SECONDS,
        client: redis.Redis | None = None,
    ) -> None:
        """Create the client (no connection is made until the first call)."""
        address, self.prefix = split_prefix(url)
        self.recent_limit = recent_limit
        self.purchased_limit = purchased_limit
        self.user_ttl = user_ttl
        self.counter_ttl = counter_ttl
        self.served_ttl = served_ttl
        # No retries: the DegradingStore decides what a failure means.
        self._client = client or redis.Redis.from_url(
            address,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )

    @property
    def degraded(self) -> bool:
        """Never: failures raise `redis.RedisError` instead."""
        return False

    @property
    def remote(self) -> bool:
        """Always: every call is a round trip to Redis."""
        return True

    def _key(self, kind: str, name: str) -> str:
        return f"{self.prefix}:{kind}:{name}"

    def append(self, events: Sequence[UserEvent]) -> None:
        """Record events in one pipelined round trip."""
        if not events:
            return
        pipe = self._client.pipeline(transaction=False)
        users: set[str] = set()
        for event in events:
            users.add(event.raw_user_id)
            entry = json.dumps([event.raw_item_id, event.event_type.value, event.timestamp])
            pipe.lpush(self._key("recent", event.raw_user_id), entry)
            pipe.hincrby(self._key("counters", event.raw_user_id), event.event_type.value, 1)
            if event.event_type is EventType.PURCHASE:
                purchased = self._key("purchased", event.raw_user_id)
                pipe.zadd(purchased, {event.raw_item_id: event.timestamp})
        for user in users:
            recent, purchased = self._key("recent", user), self._key("purchased", user)
            pipe.ltrim(recent, 0, self.recent_limit - 1)
            pipe.expire(recent, self.user_ttl)
            pipe.zremrangebyrank(purchased, 0, -(self.purchased_limit + 1))
            pipe.expire(purchased, self.user_ttl)
            pipe.expire(self._key("counters", user), self.counter_ttl)
        pipe.execute()

    def state(self, raw_user_id: str) -> UserState:
        """The user's state in one pipelined round trip."""
        pipe = self._client.pipeline(transaction=False)
        pipe.lrange(self._key("recent", raw_user_id), 0, self.recent_limit - 1)
        pipe.zrange(self._key("purchased", raw_user_id), 0, -1)
        pipe.hgetall(self._key("counters", raw_user_id))
        recent_raw, purchased, counters = pipe.execute()
        recent = [_recent_event(entry) for entry in recent_raw]
        return UserState(
            recent=[event for event in recent if event is not None],
            purchased=frozenset(str(item) for item in purchased),
            counters={str(name): int(count) for name, count in counters.items()},
        )

    def forget_user(self, raw_user_id: str) -> int:
        """Delete the user's keys in one round trip; return the recent events removed."""
        pipe = self._client.pipeline(transaction=True)
        recent = self._key("recent", raw_user_id)
        pipe.llen(recent)
        pipe.delete(recent, self._key("purchased", raw_user_id), self._key("counters", raw_user_id))
        removed, _ = pipe.execute()
        return int(removed)

    def remember_served(self, request_id: str, model_version: str, raw_item_ids: list[str]) -> None:
        """Store the list for `served_ttl` seconds."""
        value = json.dumps({"model_version": model_version, "items": raw_item_ids})
        self._client.set(self._key("served", request_id), value, ex=self.served_ttl)

    def remember_served_many(self, lists: Sequence[tuple[str, str, list[str]]]) -> None:
        """`remember_served` for many (request id, model version, item ids) in one round trip."""
        pipe = self._client.pipeline(transaction=False)
        for request_id, model_version, raw_item_ids in lists:
            value = json.dumps({"model_version": model_version, "items": raw_item_ids})
            pipe.set(self._key("served", request_id), value, ex=self.served_ttl)
        pipe.execute()

    def attribute(self, claims: Sequence[Attribution]) -> list[str | None]:
        """The model version of each claim that counts (two round trips)."""
        if not claims:
            return []
        request_ids = sorted({claim.request_id for claim in claims})
        stored = cast(
            "list[str | None]",
            self._client.mget([self._key("served", rid) for rid in request_ids]),
        )
        lists: dict[str, tuple[str, set[str]]] = {}
        for rid, value in zip(request_ids, stored, strict=True):
            parsed = _served(value)
            if parsed is not None:
                lists[rid] = parsed
        candidates = [
            (n, claim)
            for n, claim in enumerate(claims)
            if claim.request_id in lists and claim.raw_item_id in lists[claim.request_id][1]
        ]
        versions: list[str | None] = [None] * len(claims)
        if not candidates:
            return versions
        pipe = self._client.pipeline(transaction=False)
        for _, claim in candidates:
            counted = self._key("counted", claim.request_id)
            pipe.sadd(counted, f"{claim.event_type.value}|{claim.raw_item_id}")
            pipe.expire(counted, self.served_ttl)
        added = pipe.execute()[0::2]
        for (n, claim), new in zip(candidates, added, strict=True):
            if int(new) == 1:
                versions[n] = lists[claim.request_id][0]
        return versions

    def ping(self) -> bool:
        """True when Redis answers PING."""
        try:
            return bool(self._client.ping())
        except redis.RedisError:
            return False

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


def _recent_event(entry: Any) -> RecentEvent | None:
    """A stored recent-list entry, or None when it is not one (skipped, never fatal)."""
    try:
        item, event_type, timestamp = json.loads(entry)
        return RecentEvent(str(item), EventType(event_type), int(timestamp))
    except (TypeError, ValueError):
        return None


def _served(value: str | None) -> tuple[str, set[str]] | None:
    if value is None:
        return None
    try:
        parsed = json.loads(value)
        return str(parsed["model_version"]), {str(item) for item in parsed["items"]}
    except (TypeError, ValueError, KeyError):
        return None
