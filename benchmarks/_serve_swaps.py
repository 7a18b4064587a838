"""`serve_load.py --swaps N`: model swaps and registry promotions under a fixed request rate.

One server (one worker, pinned as in the rest of `serve_load.py`), admin routes on and
following an MLflow registry (`sqlite:`, in the benchmark's folder) whose two versions
are the benchmark bundle and a hard-linked copy of it (another folder, the same
content: a swap loads, precomputes and warms a whole second engine either way).
`/v1/recommend` is driven open-loop at `--swap-rate` (default 100 rps) throughout:

1. `baseline`: `--duration` seconds without swaps: the p99 to compare with;
2. `swaps`: N admin reloads (`POST /v1/admin/reload`, alternating the two folders,
   each sent when the last one answered); the server's RSS after each;
3. `promotions`: the pins released, then P promotions through the registry
   (alternating the two versions); for each, the seconds from `promote()` returning
   until `/readyz` reports the new version.

Reported per phase: requests, failed requests (non-2xx or a closed connection), p50 /
p99 / max latency from each request's due time; the targets of issue 14: 0 failed,
p99 during swaps <= 2x the baseline's, RSS after N swaps <= 1.2x after one.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Final

import numpy as np

from shelfwise.stores.online import MEMORY_MAX_SERVED

HOST: Final = "127.0.0.1"
_DRAIN_S: Final = 10.0


def hard_linked_copy(source: Path, target: Path) -> Path:
    """`source` copied to `target` with hard links (no extra disk), once."""
    if not (target / "manifest.json").is_file():
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target, copy_function=os.link)
    return target


def register_two_versions(work: Path, bundle: Path, copy: Path) -> tuple[str, str, str]:
    """A fresh MLflow registry with `bundle` as version 1 and `copy` as version 2.

    The copy is registered under a distinct fingerprint label (MLflow would otherwise
    return version 1 for identical content). Returns (uri, version one, version two).
    """
    from shelfwise.package.bundle import read_bundle_manifest
    from shelfwise.registry import ModelRegistry
    from shelfwise.registry.tracking import RunLogger

    folder = work / "swaps-registry"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    registry = ModelRegistry(
        tracking_uri=uri,
        model_name="bench",
        experiment="bench",
        artifact_location=(folder / "artifacts").as_uri(),
        cache_dir=folder / "downloads",
    )
    fingerprint = read_bundle_manifest(bundle).fingerprint
    versions = []
    for name, path, label in (("one", bundle, fingerprint), ("two", copy, f"{fingerprint}-2")):
        logger = RunLogger(registry, f"bench-{name}")
        logger.log_bundle(path)
        logger.finish()
        version, _ = registry.register(logger.mlflow_run_id, label, {})
        versions.append(version.version)
    registry.promote(versions[0], "benchmark start")
    return uri, versions[0], versions[1]


def server_environment(work: Path, uri: str, token: str) -> dict[str, str]:
    """What the server needs for admin reloads under `work` and registry watching."""
    return {
        "SHELFWISE_SERVE_ADMIN_ENABLED": "true",
        "SHELFWISE_SERVE_ADMIN_TOKEN": token,
        "SHELFWISE_SERVE_BUNDLE_ROOT": str(work),
        "SHELFWISE_SERVE_REGISTRY_URI": uri,
        "SHELFWISE_SERVE_REGISTRY_MODEL": "bench",
        "SHELFWISE_SERVE_DRIFT_INTERVAL_S": "0",
        # a swap verifies every file's hash, as a production server does
        "SHELFWISE_SERVE_VERIFY_BUNDLE": "true",
    }


def _raw(method: str, path: str, body: dict[str, Any] | None, token: str | None) -> bytes:
    payload = b"" if body is None else json.dumps(body).encode()
    head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\n"
    if token is not None:
        head += f"Authorization: Bearer {token}\r\n"
    if body is not None or method in ("POST", "PUT", "DELETE"):
        head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
    return head.encode() + b"\r\n" + payload


async def call(port: int, raw: bytes) -> tuple[int, dict[str, Any]]:
    """One request on a fresh connection: (status, JSON body); (0, {}) when it failed."""
    try:
        reader, writer = await asyncio.open_connection(HOST, port)
    except OSError:
        return 0, {}
    try:
        writer.write(raw)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(
            next(
                line.split(b":", 1)[1]
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
        )
        body = await reader.readexactly(length)
        return int(head[9:12]), json.loads(body) if body else {}
    except (OSError, asyncio.IncompleteReadError, StopIteration, ValueError):
        return 0, {}
    finally:
        writer.close()


async def load_during(
    port: int,
    requests: Sequence[bytes],
    rate: float,
    connections: int,
    work: Awaitable[Any],
    connection_factory: Callable[[int], Any],
) -> tuple[dict[str, Any], Any]:
    """Open-loop requests every 1/rate s for as long as `work` runs; its result too."""
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    failed = 0
    sent = 0
    queue: asyncio.Queue[tuple[int, float]] = asyncio.Queue()
    pool = [connection_factory(port) for _ in range(connections)]

    async def serve(connection: Any) -> None:
        nonlocal failed
        while True:
            index, due = await queue.get()
            status = await connection.request(requests[index % len(requests)])
            if 200 <= status < 300:
                latencies.append(loop.time() - due)
            else:
                failed += 1
            queue.task_done()

    task = asyncio.ensure_future(work)
    workers = [asyncio.create_task(serve(connection)) for connection in pool]
    start = loop.time() + 0.05
    while not task.done():
        due = start + sent / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((sent, due))
        sent += 1
    result = task.result()
    try:
        await asyncio.wait_for(queue.join(), timeout=_DRAIN_S)
    except TimeoutError:
        pass
    for worker in workers:
        worker.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    for connection in pool:
        connection.close()
    values = np.asarray(latencies) * 1000
    unanswered = sent - len(latencies) - failed
    stats: dict[str, Any] = {
        "requests": sent,
        "failed": failed + unanswered,
        "seconds": round(loop.time() - start, 1),
    }
    if values.size:
        p50, p99 = np.percentile(values, [50, 99])
        stats |= {
            "p50_ms": round(float(p50), 2),
            "p99_ms": round(float(p99), 2),
            "max_ms": round(float(values.max()), 2),
        }
    return stats, result


def promote_version(uri: str, version: str) -> None:
    """Make `version` the champion of the benchmark registry (in a worker process)."""
    from shelfwise.registry import ModelRegistry

    registry = ModelRegistry(
        tracking_uri=uri, model_name="bench", experiment="bench", cache_dir=Path("/tmp")
    )
    registry.promote(version, "benchmark")


async def fill_served_lists(
    port: int,
    requests: Sequence[bytes],
    connections: int,
    connection_factory: Callable[[int], Any],
    total: int = MEMORY_MAX_SERVED + 5_000,
) -> int:
    """Send `total` requests as fast as the server answers (closed loop)."""
    left = total

    async def client() -> int:
        nonlocal left
        connection = connection_factory(port)
        answered = 0
        while left > 0:
            left -= 1
            if 200 <= await connection.request(requests[left % len(requests)]) < 300:
                answered += 1
        connection.close()
        return answered

    return sum(await asyncio.gather(*(client() for _ in range(connections))))


def rss_mb(pid: int) -> float:
    """Resident memory of the server process, MB."""
    import psutil

    return round(psutil.Process(pid).memory_info().rss / 2**20, 1)


async def run_phases(
    port: int,
    pid: int,
    requests: Sequence[bytes],
    *,
    token: str,
    paths: tuple[Path, Path],
    versions: tuple[str, str],
    uri: str,
    swaps: int,
    promotions: int,
    rate: float,
    duration: float,
    connections: int,
    connection_factory: Callable[[int], Any],
) -> dict[str, Any]:
    """The three phases (module docstring); everything measured, as a dict."""
    loop = asyncio.get_running_loop()

    async def idle() -> None:
        await asyncio.sleep(duration)

    # The in-process online store keeps the last 100,000 served lists (~13 MB per 10k):
    # filled first, so it grows no more while swaps are measured.
    filled = await fill_served_lists(port, requests, connections, connection_factory)
    print(f"served lists remembered before measuring: {filled}", flush=True)
    baseline, _ = await load_during(port, requests, rate, connections, idle(), connection_factory)
    baseline["rss_mb"] = rss_mb(pid)
    print(f"baseline: {baseline}", flush=True)

    async def reloads() -> list[dict[str, Any]]:
        done = []
        for n in range(swaps):
            body = {"bundle_path": str(paths[n % 2])}
            started = loop.time()
            refused = 0
            while True:
                raw = _raw("POST", "/v1/admin/reload", body, token)
                status, answer = await call(port, raw)
                if status != 409:
                    break
                refused += 1
                await asyncio.sleep(0.5)
            done.append(
                {
                    "status": status,
                    "seconds": round(loop.time() - started, 2),
                    "refused_409": refused,
                    "rss_mb": rss_mb(pid),
                    "error": None if status == 200 else answer.get("message"),
                }
            )
            print(f"swap {n + 1}: {done[-1]}", flush=True)
        return done

    during, swapped = await load_during(
        port, requests, rate, connections, reloads(), connection_factory
    )
    print(f"during swaps: {during}", flush=True)

    async def promote_all() -> list[dict[str, Any]]:
        # MLflow runs in a process of its own: in a thread of this one it would hold
        # the GIL for whole seconds and stall the load generator, not the server
        with ProcessPoolExecutor(max_workers=1) as mlflow_process:
            await call(port, _raw("DELETE", "/v1/admin/pin", None, token))
            first = await _served(port, versions[0], loop, timeout=600)
            moves: list[dict[str, Any]] = [{"released_pin_s": first}]
            for n in range(promotions):
                target = versions[(n + 1) % 2]
                began = loop.time()
                await loop.run_in_executor(mlflow_process, promote_version, uri, target)
                promoted = loop.time()
                switch = await _served(port, target, loop, timeout=600)
                moves.append(
                    {
                        "version": target,
                        "promote_call_s": round(promoted - began, 2),
                        "until_served_s": switch,
                        "rss_mb": rss_mb(pid),
                    }
                )
                print(f"promotion {n + 1}: {moves[-1]}", flush=True)
        return moves

    promoting, moves = await load_during(
        port, requests, rate, connections, promote_all(), connection_factory
    )
    print(f"during promotions: {promoting}", flush=True)
    after_one = swapped[0]["rss_mb"] if swapped else None
    after_all = swapped[-1]["rss_mb"] if swapped else None
    return {
        "rate": rate,
        "baseline": baseline,
        "swaps": {"load": during, "reloads": swapped},
        "promotions": {"load": promoting, "moves": moves},
        "targets": {
            "failed_requests": during["failed"] + promoting["failed"],
            "p99_ratio": round(during.get("p99_ms", float("nan")) / baseline["p99_ms"], 2)
            if baseline.get("p99_ms")
            else None,
            "rss_ratio": round(after_all / after_one, 3) if after_one and after_all else None,
            "rss_after_one_mb": after_one,
            "rss_after_all_mb": after_all,
        },
    }


async def _served(
    port: int, version: str, loop: asyncio.AbstractEventLoop, *, timeout: float
) -> float | None:
    """Seconds until `/readyz` reports `version` (None: not within `timeout`)."""
    began = loop.time()
    while loop.time() - began < timeout:
        status, body = await call(port, _raw("GET", "/readyz", None, None))
        if status == 200 and body.get("model_version") == version:
            return round(loop.time() - began, 2)
        await asyncio.sleep(0.02)
    return None


def new_token() -> str:
    """A random admin token for the benchmark's server."""
    return secrets.token_hex(32)


def wait_quiet(seconds: float = 1.0) -> None:
    """Let the server settle between phases."""
    time.sleep(seconds)
