"""Catalog changes between replicas: one Redis stream that every server follows.

A server that accepts a change writes it to its catalog log, applies it, then adds it
to the stream `<prefix>:catalog` (XADD, one entry per request's batch). Every server
runs a `CatalogFollower`: a thread that blocks on XREAD and hands each new batch to
the live catalog, so a change reaches the other replicas within one round trip plus
the rebuild of their overlay (measured in benchmarks/RESULTS.md, "Live catalog").
The stream's entry ids are the version counter replicas agree on; a server that
starts reads the stream from its beginning (after replaying its own log), so a
replica on another disk gets every change too. Changes merge field by field by
their own (version, origin) stamp, so reading one twice is harmless.

The stream is capped (`MAX_STREAM_ENTRIES`, approximate trimming): a replica that is
new after more changes than that must share the catalog log's folder, or be served
a bundle retrained on it. redis-py is imported only here, and only for `redis://`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, Final

from shelfwise.stores.catalog_log import CatalogChange
from shelfwise.stores.redis_store import split_prefix

logger = logging.getLogger("shelfwise.serve")

MAX_STREAM_ENTRIES: Final = 100_000
BLOCK_MS: Final = 250  # how long one XREAD waits; bounds how long `stop` takes
_RETRY_S: Final = 1.0


class RedisCatalogBus:
    """The `<prefix>:catalog` stream of a Redis server.

    Args:
        url: `redis://host:port/db` (optionally `?prefix=<project>`), as the online store.
        timeout: seconds a publish may take.
    """

    def __init__(self, url: str, *, timeout: float = 0.5) -> None:
        """Connect lazily (redis-py connects on the first command)."""
        import redis

        address, prefix = split_prefix(url)
        self.stream = f"{prefix}:catalog"
        self._client: Any = redis.Redis.from_url(
            address, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        # XREAD BLOCK holds its connection for up to BLOCK_MS: a client of its own
        self._reader: Any = redis.Redis.from_url(
            address, socket_timeout=BLOCK_MS / 1000 + timeout, socket_connect_timeout=timeout
        )

    def publish(self, changes: Sequence[CatalogChange]) -> str:
        """Add one batch to the stream; return its entry id.

        Raises:
            redis.RedisError: Redis is unreachable (the caller decides what that means).
        """
        payload = json.dumps([change.record() for change in changes], ensure_ascii=False)
        entry = self._client.xadd(
            self.stream, {"batch": payload}, maxlen=MAX_STREAM_ENTRIES, approximate=True
        )
        return entry.decode() if isinstance(entry, bytes) else str(entry)

    def read(
        self, after: str, *, block_ms: int | None = BLOCK_MS
    ) -> tuple[str, list[CatalogChange]]:
        """Batches after entry id `after` ("0" for all), waiting up to `block_ms`.

        Returns:
            The last entry id read (`after` when none) and the changes, in order.
        """
        answer = self._reader.xread({self.stream: after}, count=1000, block=block_ms)
        changes: list[CatalogChange] = []
        last = after
        for _, entries in answer or []:
            for entry_id, values in entries:
                last = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                raw = values.get(b"batch") or values.get("batch") or b"[]"
                for record in json.loads(raw):
                    change = CatalogChange.from_record(record)
                    if change is not None:
                        changes.append(change)
        return last, changes

    def close(self) -> None:
        """Close both connections."""
        self._client.close()
        self._reader.close()


class CatalogFollower:
    """A daemon thread that applies every batch other servers add to the stream.

    Args:
        bus: the stream.
        apply: receives each read batch (the live catalog's `apply`).
        skip_origin: this server's origin token: its own changes, already applied when
            it accepted them, are skipped after the start (at start they are replayed).
    """

    def __init__(
        self,
        bus: RedisCatalogBus,
        apply: Callable[[list[CatalogChange]], object],
        *,
        skip_origin: str = "",
    ) -> None:
        """Prepare; nothing is read until `catch_up` or `start`."""
        self._bus = bus
        self._apply = apply
        self._skip = skip_origin
        self._last = "0"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def catch_up(self) -> int:
        """Apply every batch in the stream now (at start, before answering).

        Returns:
            The number of changes read; 0 when Redis is unreachable (logged: the server
            then serves its own log's catalog until the thread reaches Redis).
        """
        total = 0
        try:
            while True:
                last, changes = self._bus.read(self._last, block_ms=None)
                if last == self._last:
                    return total
                self._last = last
                if changes:
                    self._apply(changes)
                    total += len(changes)
        except Exception as exc:  # noqa: BLE001 - any redis-py failure: serve on
            logger.warning("catalog stream: cannot read it at start: %s", exc)
            return total

    def start(self) -> None:
        """Follow the stream on a daemon thread until `stop`."""
        self._thread = threading.Thread(target=self._run, name="catalog-follower", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop following (waits for the current read, at most `BLOCK_MS`)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=BLOCK_MS / 1000 + 2)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                last, changes = self._bus.read(self._last)
            except Exception as exc:  # noqa: BLE001 - Redis down: retry, never die
                logger.warning("catalog stream: %s; retrying", exc)
                self._stop.wait(_RETRY_S)
                continue
            self._last = last
            changes = [change for change in changes if change.origin != self._skip]
            if changes:
                try:
                    self._apply(changes)
                except Exception:  # a bad batch must not stop the replica following
                    logger.exception("catalog stream: a batch could not be applied")
