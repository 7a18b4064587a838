"""Catalog updates during the serving load (`serve_load.py --item-updates-per-s N`).

While `serve_load.py` drives the read endpoints, this sends `PUT /v1/items` at a
fixed rate (open loop, due times fixed in advance) to the server under load:
alternately a new product (a title with a unique made-up word, the category of a
real item) and a price/stock change of a real item. For every new product, a
poller searches for its word on the *reading* server (the same server, or with
`--redis-url` a second replica that only hears of it through Redis) every `POLL_S`
(20 ms, backing off to 200 ms) and records the time from sending the PUT to the first
answer that lists it: the visibility delay readers see. The PUTs' own latencies are
recorded too. The pollers add a few requests per second to the reading server.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from pathlib import Path
from typing import Any, Final

import numpy as np

HOST: Final = "127.0.0.1"
POLL_S: Final = 0.02  # the resolution of the visibility delay; polls load the reader too
VISIBLE_TIMEOUT_S: Final = 10.0
_CONTENT_LENGTH: Final = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


def new_token() -> str:
    """An admin token the settings accept (long and random)."""
    return "bench-" + secrets.token_hex(16)


def server_environment(work: Path, token: str, redis_url: str | None, name: str) -> dict[str, str]:
    """Admin routes on, a fresh catalog log per server, Redis when given."""
    log = work / f"catalog-{name}"
    if log.exists():
        import shutil

        shutil.rmtree(log)
    env = {
        "SHELFWISE_SERVE_ADMIN_ENABLED": "true",
        "SHELFWISE_SERVE_ADMIN_TOKEN": token,
        "SHELFWISE_SERVE_CATALOG_LOG_DIR": str(log),
    }
    if redis_url:
        env["SHELFWISE_SERVE_ONLINE_STORE_URL"] = redis_url
    return env


class _Client:
    """One keep-alive HTTP/1.1 connection that returns status and body."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def call(self, method: str, path: str, body: Any, headers: str = "") -> tuple[int, Any]:
        payload = json.dumps(body, ensure_ascii=False).encode()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n{headers}\r\n"
        )
        try:
            if self.writer is None or self.reader is None:
                self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
            self.writer.write(head.encode() + payload)
            raw = await self.reader.readuntil(b"\r\n\r\n")
            length = _CONTENT_LENGTH.search(raw)
            data = await self.reader.readexactly(int(length.group(1))) if length else b""
            return int(raw.split(b" ", 2)[1]), json.loads(data or b"null")
        except (OSError, asyncio.IncompleteReadError, ValueError):
            self.close()
            return 0, None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def _ms(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    array = np.asarray(values) * 1000
    return {
        "p50_ms": round(float(np.percentile(array, 50)), 2),
        "p99_ms": round(float(np.percentile(array, 99)), 2),
        "max_ms": round(float(array.max()), 2),
    }


async def update_loop(
    write_port: int,
    read_port: int,
    *,
    token: str,
    rate: float,
    items: list[tuple[str, str | None]],
    stop: asyncio.Event,
) -> dict[str, Any]:
    """PUT /v1/items at `rate` per second until `stop`; measure visibility on `read_port`.

    Args:
        items: (raw_item_id, category) of real items to change and to borrow categories from.
    """
    auth = f"Authorization: Bearer {token}\r\n"
    writer = _Client(write_port)
    put_latencies: list[float] = []
    visible: list[float] = []
    statuses: dict[str, int] = {}
    missed = 0
    pollers: list[asyncio.Task[None]] = []
    rng = np.random.default_rng(0)

    async def watch(word: str, raw_id: str, sent: float) -> None:
        nonlocal missed
        reader = _Client(read_port)
        deadline = sent + VISIBLE_TIMEOUT_S
        pause = POLL_S
        try:
            while time.perf_counter() < deadline:
                status, body = await reader.call("POST", "/v1/search", {"query": word, "k": 3})
                if status == 200 and any(i["item_id"] == raw_id for i in body["items"]):
                    visible.append(time.perf_counter() - sent)
                    return
                await asyncio.sleep(pause)
                # back off (up to 0.2 s): pollers of slow updates would otherwise load
                # the reading server more the slower it is (seen: 27 of 218 "never")
                pause = min(pause * 1.5, 0.2)
            missed += 1
        finally:
            reader.close()

    started = time.perf_counter()
    n = 0
    while not stop.is_set():
        due = started + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
                break
            except TimeoutError:
                pass
        raw, category = items[int(rng.integers(len(items)))]
        if n % 2 == 0:
            word = f"zqx{n}v{secrets.token_hex(2)}"
            raw = f"bench-new-{word}"
            row: dict[str, Any] = {"item_id": raw, "title": f"Live {word} 新品", "price": 10.0}
            if category:
                row["category"] = category
        else:
            row = {"item_id": raw, "price": float(rng.integers(1, 500)), "in_stock": bool(n % 4)}
        sent = time.perf_counter()
        status, _ = await writer.call("PUT", "/v1/items", {"items": [row]}, auth)
        put_latencies.append(time.perf_counter() - sent)
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        if status == 200 and n % 2 == 0:
            pollers.append(asyncio.create_task(watch(word, raw, sent)))
        n += 1
    await asyncio.gather(*pollers)
    writer.close()
    elapsed = time.perf_counter() - started
    return {
        "updates": n,
        "rate_per_s": round(n / elapsed, 2) if elapsed else 0.0,
        "statuses": statuses,
        "put": _ms(put_latencies),
        "visible": _ms(visible),
        "visible_samples": len(visible),
        "never_visible": missed,
    }
