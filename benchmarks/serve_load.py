"""Serving under load: `shelfwise serve` driven at fixed request rates from a second process.

Builds (or reuses) a bundle from a generated 50k-item shop through the whole default
pipeline (registry and compression off), starts the server on 127.0.0.1 in a
subprocess (`shelfwise serve --bundle` for one worker, `uvicorn --factory --workers N`
for several), waits for `/readyz`, then drives each endpoint from this process:

* fixed rates (open loop, wrk2-style): requests are due at fixed times whatever the
  server does, handed to a pool of keep-alive connections, and each latency is measured
  from the request's *due* time, so a stalled server is charged for the queue it causes
  (no coordinated omission);
* a throughput probe (closed loop): C connections each send the next request as soon as
  the previous answer arrives; `max_rps` = answers / seconds. Rates above the probe's
  result are not tried.

Endpoints: `recommend` (POST /v1/recommend, users drawn from the shop's event rows, so
active users come up more often), `search` (POST /v1/search, the queries of the shop's
search events, with their frequencies), `similar` (GET /v1/items/{id}/similar, items
of event rows), `events` (POST /v1/events, one real event per batch; null when the
server answers 404) and `empty` (GET /healthz: the same app, middleware and thread
pool with no model work, the stack's ceiling). The client is raw asyncio streams with
hand-written HTTP/1.1, so it costs less CPU per request than the server it measures;
its own CPU use during each probe is reported.

With one worker the server is pinned to CPU 1 and this process to CPU 0 (taskset,
`--no-pin` to turn off); with several workers the server may use every CPU and the
client shares them. Server processes get `OMP_NUM_THREADS=1` (the advice of the FAISS
section of RESULTS.md) and write `/v1/events` to a fresh folder next to `server.log`
under `.shelfwise/bench-serve-load-<items>/`. Memory: RSS, PSS and peak RSS of each
worker after the load; CPU: the server's CPU milliseconds per answered probe request.
The bundle built there is reused until `--rebuild`.

With `--swaps N` it measures model swaps instead (`_serve_swaps.py`): `/v1/recommend`
at `--swap-rate` rps through a baseline of `--duration` seconds, N admin reloads and
`--promotions` registry promotions; failed requests, p99 against the baseline, RSS
after one and after N swaps, seconds from a promotion until the server serves it.

With `--item-updates-per-s N` it sends catalog updates (`PUT /v1/items`) at N per
second during the whole load, half of them new products, half price and stock changes
of bundle items, and measures how long each takes to show in `/v1/search`
(`_serve_catalog.py`: p50 / p99 / max of the delay); with `--redis-url` the search runs
on a second replica that hears of it only through Redis. `item_update_targets` judges
the issue's targets (recommend p99 <= 10 ms at 200 rps, search p99 <= 30 ms, every
update visible within 1 s); the output ends with the command to rerun.

Usage:
    .venv/bin/python benchmarks/serve_load.py [--workers N] [--duration S]
        [--rates 10,50,100,200,400] [--connections 32] [--endpoints recommend,search,...]
        [--no-pin] [--rebuild] [--json]
    .venv/bin/python benchmarks/serve_load.py ... --item-updates-per-s 5
        [--redis-url redis://127.0.0.1:6379/0]
    .venv/bin/python benchmarks/serve_load.py --swaps 10 [--promotions 6]
        [--swap-rate 100] [--duration 30] [--json]
With --json the output ends with one JSON line: {"recommend": {"max_rps": ..., "rates":
{"200": {"p50_ms", "p95_ms", "p99_ms", "achieved_rps", "errors"}, ...}}, "search": ...,
"similar": ..., "events": ... (null when absent), "empty": ..., "workers": N,
"rss_mb": [...], ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import itertools
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

ROOT: Final = Path(__file__).resolve().parent.parent
EMBEDDING_CACHE: Final = ROOT / ".shelfwise" / "cache" / "embeddings"
HOST: Final = "127.0.0.1"
ENDPOINTS: Final = ("recommend", "search", "similar", "events", "empty")
DEFAULT_RATES: Final = (10, 50, 100, 200, 400)
_SAMPLES: Final = 5000  # distinct request bodies per endpoint
_DRAIN_S: Final = 5.0  # after the last due time, wait this long for answers
_CONTENT_LENGTH: Final = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class Shop:
    """The served bundle and the raw files its requests are drawn from."""

    bundle: Path
    events: Path
    components: dict[str, str]
    pipeline_s: float


def build_bundle(items: int, *, rebuild: bool = False) -> Shop:
    """The latest bundle built here, or generate the shop and run the default pipeline.

    The recommendation side is a normal run's (tuning, every recommender family, the
    blend, the click model); only the registry (MLflow, gate) and compression are off.
    Item vectors come from the shared embedding cache (titles only). The bundle is
    reused unless `rebuild`: stage caches are keyed by the code version, so any source
    change would otherwise re-run the whole pipeline (16 min on 2 busy cores).
    """
    from shelfwise.config import load_config
    from shelfwise.pipeline import run_pipeline
    from shelfwise.registry.local import BundleStore
    from shelfwise.sample import generate_shop

    work = ROOT / ".shelfwise" / f"bench-serve-load-{items}"
    data = work / "data"
    latest = BundleStore(work).latest() if (work / "bundles").is_dir() else None
    if latest is not None and not rebuild:
        manifest = json.loads((latest.path / "manifest.json").read_text())
        return Shop(latest.path, data / "events.parquet", dict(manifest["components"]), 0.0)
    if (data / "events.parquet").is_file() and (data / "catalog.parquet").is_file():
        paths = {name: data / f"{name}.parquet" for name in ("catalog", "events", "queries")}
    else:
        shop = generate_shop(data, users=20_000, items=items, events=200_000)
        paths = {
            "catalog": shop.catalog_path,
            "events": shop.events_path,
            "queries": shop.queries_path,
        }
    config = load_config(
        None,
        environ={},
        overrides={
            "home": str(work),
            "data.catalog.path": str(paths["catalog"]),
            "data.events.path": str(paths["events"]),
            "data.queries.path": str(paths["queries"]),
            "models.dense.cache_dir": str(EMBEDDING_CACHE),
            "models.dense.fields": ["title"],
            # no MLflow run or gate re-scoring: the served bundle is all this needs
            "registry.enabled": False,
            "compress.enabled": False,
        },
    )
    started = time.perf_counter()
    outcome = run_pipeline(config, use_cache=True)
    if outcome.bundle_path is None:
        raise RuntimeError("the pipeline published no bundle; see its run folder")
    manifest = json.loads((outcome.bundle_path / "manifest.json").read_text())
    return Shop(
        bundle=outcome.bundle_path,
        events=paths["events"],
        components=dict(manifest["components"]),
        pipeline_s=round(time.perf_counter() - started, 1),
    )


def _http(method: str, path: str, body: dict[str, Any] | None = None) -> bytes:
    """One raw HTTP/1.1 keep-alive request."""
    payload = b"" if body is None else json.dumps(body, ensure_ascii=False).encode()
    head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
    return head.encode() + b"\r\n" + payload


def request_pools(shop: Shop, seed: int = 0) -> dict[str, list[bytes]]:
    """Raw requests per endpoint, drawn from the shop's event rows (real frequencies)."""
    import polars as pl

    events = pl.read_parquet(shop.events)
    rows = events.sample(n=_SAMPLES, with_replacement=True, seed=seed)
    searches = events.filter(pl.col("query").is_not_null())["query"]
    queries = searches.sample(n=_SAMPLES, with_replacement=True, seed=seed).to_list()
    users = rows["raw_user_id"].to_list()
    items = rows["raw_item_id"].to_list()
    kinds = rows["event_type"].to_list()
    now = int(time.time())
    return {
        "recommend": [_http("POST", "/v1/recommend", {"user_id": u, "k": 10}) for u in users],
        "search": [_http("POST", "/v1/search", {"query": q, "k": 10}) for q in queries],
        "similar": [_http("GET", f"/v1/items/{i}/similar?k=10") for i in items],
        "events": [
            _http(
                "POST",
                "/v1/events",
                {"events": [{"user_id": u, "item_id": i, "event_type": t, "timestamp": now}]},
            )
            for u, i, t in zip(users, items, kinds, strict=True)
        ],
        "empty": [_http("GET", "/healthz")],
    }


# --- the server --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def start_server(
    bundle: Path,
    *,
    port: int,
    workers: int,
    cpus: Sequence[int] | None,
    log: Path,
    env_overrides: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """`shelfwise serve` (one worker) or `uvicorn --workers N`, waited for via /readyz.

    The event log of `/v1/events` goes to a fresh `events/` folder next to `log`;
    `env_overrides` replace or remove (value "") the environment set here.
    """
    event_log = log.parent / "events"
    shutil.rmtree(event_log, ignore_errors=True)
    event_log.mkdir(parents=True)
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "SHELFWISE_SERVE_VERIFY_BUNDLE": "false",  # load time only; not measured
        # /v1/events appends (and fsyncs) here, not to the user's $SHELFWISE_HOME/events
        "SHELFWISE_SERVE_EVENT_LOG_DIR": str(event_log),
    }
    for key, value in (env_overrides or {}).items():
        if value:
            env[key] = value
        else:
            env.pop(key, None)
    bin_dir = Path(sys.executable).parent
    if workers == 1:
        command = [str(bin_dir / "shelfwise"), "serve", "--bundle", str(bundle)]
        command += ["--host", HOST, "--port", str(port)]
    else:
        env["SHELFWISE_SERVE_BUNDLE_PATH"] = str(bundle)
        command = [str(bin_dir / "uvicorn"), "shelfwise.serve.app:create_app", "--factory"]
        command += ["--host", HOST, "--port", str(port), "--workers", str(workers)]
    if cpus is not None and shutil.which("taskset"):
        command = ["taskset", "-c", ",".join(map(str, cpus)), *command]
    with log.open("wb") as sink:
        server = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}; see {log}")
        started = log.read_text(errors="replace").count("Application startup complete")
        if started >= workers and _get(port, "/readyz") == 200:
            return server
        time.sleep(0.5)
    stop_server(server)
    raise RuntimeError(f"the server was not ready within 600 s; see {log}")


def _get(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=5) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def stop_server(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server (uvicorn stops its workers), SIGKILL after 20 s."""
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def worker_memory(server: subprocess.Popen[bytes]) -> list[dict[str, float]]:
    """RSS, PSS and peak RSS (MB) of each process that answers requests."""
    import psutil

    root = psutil.Process(server.pid)
    tree = [root, *root.children(recursive=True)]
    # taskset execs in place; uvicorn --workers: a supervisor and one child per worker
    # (plus multiprocessing's resource tracker); the workers are the ones with big RSS.
    python = [p for p in tree if "python" in p.name().lower() or p.name() in ("shelfwise",)]
    workers = [p for p in python if p.memory_info().rss > 200 * 2**20] or python
    result = []
    for process in workers:
        status = Path(f"/proc/{process.pid}/status").read_text()
        peak = re.search(r"VmHWM:\s+(\d+) kB", status)
        result.append(
            {
                "pid": process.pid,
                "rss_mb": round(process.memory_info().rss / 2**20, 1),
                "pss_mb": round(process.memory_full_info().pss / 2**20, 1),
                "peak_rss_mb": round(int(peak.group(1)) / 1024, 1) if peak else float("nan"),
            }
        )
    return result


# --- the load generator ------------------------------------------------------------


class _Connection:
    """One keep-alive HTTP/1.1 connection; `request` returns the status (0: failed)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> int:
        try:
            if self.writer is None or self.reader is None:
                self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
            self.writer.write(raw)
            head = await self.reader.readuntil(b"\r\n\r\n")
            length = _CONTENT_LENGTH.search(head)
            if length is None:
                raise ValueError("response without content-length")
            await self.reader.readexactly(int(length.group(1)))
            if b"connection: close" in head.lower():
                self.close()
            return int(head[9:12])
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            self.close()
            return 0

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _ok(status: int) -> bool:
    return 200 <= status < 300


async def open_loop(
    port: int, requests: Sequence[bytes], rate: float, duration: float, connections: int
) -> dict[str, Any]:
    """Requests due every 1/rate s for `duration` s; latency from each due time."""
    loop = asyncio.get_running_loop()
    total = max(1, int(rate * duration))
    latency = np.full(total, np.nan)
    status = np.zeros(total, dtype=np.int32)
    finished = np.full(total, np.nan)
    queue: asyncio.Queue[tuple[int, float]] = asyncio.Queue()
    pool = [_Connection(port) for _ in range(connections)]
    start = loop.time() + 0.1

    async def work(connection: _Connection) -> None:
        while True:
            index, due = await queue.get()
            status[index] = await connection.request(requests[index % len(requests)])
            now = loop.time()
            latency[index], finished[index] = now - due, now
            queue.task_done()

    async def dispatch() -> None:
        for index in range(total):
            due = start + index / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            queue.put_nowait((index, due))

    cpu = _cpu_s()
    workers = [asyncio.create_task(work(connection)) for connection in pool]
    await dispatch()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(queue.join(), timeout=_DRAIN_S)
    for task in workers:
        task.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    for connection in pool:
        connection.close()
    answered = ~np.isnan(latency)
    good = answered & (status >= 200) & (status < 300)
    span = float(np.nanmax(finished) - start) if answered.any() else float("nan")
    values = latency[good] * 1000
    return {
        **_percentiles(values),
        "achieved_rps": round(int(good.sum()) / span, 1) if span > 0 else 0.0,
        "errors": int(total - good.sum()),
        "unanswered": int(total - answered.sum()),
        "requests": total,
        "client_cpu": round((_cpu_s() - cpu) / (duration + 0.1), 2),
    }


async def closed_loop(
    port: int, requests: Sequence[bytes], duration: float, connections: int
) -> dict[str, Any]:
    """`connections` clients each send the next request when the last one is answered."""
    loop = asyncio.get_running_loop()
    counter = itertools.count()
    latencies: list[float] = []
    errors = 0
    deadline = loop.time() + duration

    async def client() -> None:
        nonlocal errors
        connection = _Connection(port)
        while loop.time() < deadline:
            raw = requests[next(counter) % len(requests)]
            sent = loop.time()
            if _ok(await connection.request(raw)):
                latencies.append(loop.time() - sent)
            else:
                errors += 1
        connection.close()

    cpu, started = _cpu_s(), loop.time()
    await asyncio.gather(*(client() for _ in range(connections)))
    elapsed = loop.time() - started
    return {
        "max_rps": round(len(latencies) / elapsed, 1),
        **_percentiles(np.asarray(latencies) * 1000),
        "errors": errors,
        "connections": connections,
        "client_cpu": round((_cpu_s() - cpu) / elapsed, 2),
    }


def _percentiles(values: np.ndarray[Any, Any]) -> dict[str, float | None]:
    if values.size == 0:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {
        "p50_ms": round(float(p50), 2),
        "p95_ms": round(float(p95), 2),
        "p99_ms": round(float(p99), 2),
    }


def server_cpu_s(server: subprocess.Popen[bytes]) -> float:
    """CPU seconds (user + system) used so far by the server and all its processes."""
    import psutil

    root = psutil.Process(server.pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system
    return total


async def drive(
    port: int,
    pools: dict[str, list[bytes]],
    *,
    endpoints: Sequence[str],
    rates: Sequence[int],
    duration: float,
    connections: int,
    server: subprocess.Popen[bytes],
    phases: list[tuple[str, float, float]] | None = None,
) -> dict[str, Any]:
    """Per endpoint: warm up, probe the throughput, then each fixed rate below it.

    The probe also records the server's CPU milliseconds per answered request, which
    other jobs on a shared machine do not inflate the way they inflate latencies.
    `phases` receives (label, start, end) of each phase (`time.perf_counter`).
    """
    marks = phases if phases is not None else []
    results: dict[str, Any] = {}
    for name in endpoints:
        requests = pools[name]
        probe = _Connection(port)
        first = await probe.request(requests[0])
        probe.close()
        if first == 404 and name == "events":
            print(f"{name}: 404, the route does not exist on this server; skipped", flush=True)
            results[name] = None
            continue
        if not _ok(first):
            print(f"{name}: the first request answered {first}; skipped", flush=True)
            results[name] = {"error": f"status {first}"}
            continue
        began = time.perf_counter()
        await closed_loop(port, requests, min(3.0, duration), 4)  # warm-up, not recorded
        marks.append((f"{name} warm-up", began, time.perf_counter()))
        gc.collect()
        cpu = server_cpu_s(server)
        began = time.perf_counter()
        peak = await closed_loop(port, requests, duration, connections)
        marks.append((f"{name} probe", began, time.perf_counter()))
        answered = peak["max_rps"] * duration
        peak["server_cpu_ms"] = round((server_cpu_s(server) - cpu) * 1000 / answered, 2)
        print(f"{name}: probe {peak}", flush=True)
        entry: dict[str, Any] = {"max_rps": peak["max_rps"], "probe": peak, "rates": {}}
        for rate in rates:
            if rate > peak["max_rps"]:
                entry["rates"][str(rate)] = None  # above the measured capacity
                continue
            gc.collect()
            began = time.perf_counter()
            measured = await open_loop(port, requests, rate, duration, connections)
            marks.append((f"{name} @ {rate} rps", began, time.perf_counter()))
            print(f"{name} @ {rate} rps: {measured}", flush=True)
            entry["rates"][str(rate)] = measured
        results[name] = entry
    return results


# --- the report ----------------------------------------------------------------------


def _cell(value: Any) -> str:
    return "–" if value is None else f"{value}"


def print_table(result: dict[str, Any], rates: Sequence[int], endpoints: Sequence[str]) -> None:
    """Markdown tables: throughput probe, then p50 / p95 / p99 per fixed rate."""
    print(f"\n{result['workers']} worker(s), {result['machine']}")
    print(
        "\n| endpoint | max rps | server CPU ms / request | probe p50 ms | probe p99 ms "
        "| client CPU | errors |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in ENDPOINTS:
        entry = result.get(name)
        if not isinstance(entry, dict) or "probe" not in entry:
            state = "not run" if name not in endpoints else "not available"
            print(f"| {name} | {state} | | | | | |")
            continue
        probe = entry["probe"]
        print(
            f"| {name} | {entry['max_rps']} | {probe['server_cpu_ms']} | "
            f"{_cell(probe['p50_ms'])} | {_cell(probe['p99_ms'])} | {probe['client_cpu']} | "
            f"{probe['errors']} |"
        )
    print("\n| endpoint | rate | achieved rps | p50 ms | p95 ms | p99 ms | errors |")
    print("|---|---|---|---|---|---|---|")
    for name in ENDPOINTS:
        entry = result.get(name)
        if not isinstance(entry, dict) or "rates" not in entry:
            continue
        for rate in rates:
            row = entry["rates"].get(str(rate))
            if row is None:
                print(f"| {name} | {rate} | above max | | | | |")
                continue
            print(
                f"| {name} | {rate} | {row['achieved_rps']} | {_cell(row['p50_ms'])} | "
                f"{_cell(row['p95_ms'])} | {_cell(row['p99_ms'])} | {row['errors']} |"
            )
    memory = ", ".join(
        f"RSS {w['rss_mb']} MB (PSS {w['pss_mb']}, peak {w['peak_rss_mb']})"
        for w in result["memory"]
    )
    print(f"\nper worker: {memory}")


def main() -> None:
    """Build or reuse the bundle, start the server, drive it, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=50_000, help="catalog size")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per rate")
    parser.add_argument("--rates", default=",".join(map(str, DEFAULT_RATES)))
    parser.add_argument("--connections", type=int, default=32, help="client connections")
    parser.add_argument("--endpoints", default=",".join(ENDPOINTS))
    parser.add_argument("--no-pin", action="store_true", help="do not pin CPUs")
    parser.add_argument("--rebuild", action="store_true", help="run the pipeline again")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument("--swaps", type=int, default=0, help="measure N admin reloads")
    parser.add_argument("--promotions", type=int, default=6, help="registry promotions")
    parser.add_argument("--swap-rate", type=float, default=100.0, help="rps during swaps")
    parser.add_argument(
        "--item-updates-per-s",
        type=float,
        default=0.0,
        help="PUT /v1/items at this rate during the load (_serve_catalog.py)",
    )
    parser.add_argument(
        "--bundle",
        default=None,
        help="serve this bundle (its shop's events in ../data/events.parquet, as "
        "benchmarks/live_catalog.py writes) instead of building one with the pipeline",
    )
    parser.add_argument(
        "--redis-url",
        default=None,
        help="with item updates: a second replica on this Redis, where visibility is measured",
    )
    args = parser.parse_args()
    rates = [int(value) for value in args.rates.split(",") if value]
    endpoints = [value for value in args.endpoints.split(",") if value]
    unknown = sorted(set(endpoints) - set(ENDPOINTS))
    if unknown or args.workers < 1:
        parser.error(f"unknown endpoints {unknown} (choose from {ENDPOINTS}) or workers < 1")

    shop = build_bundle(args.items, rebuild=args.rebuild) if not args.bundle else _given(args)
    built = f"pipeline {shop.pipeline_s} s" if shop.pipeline_s else "reused"
    print(f"bundle {shop.bundle}: {shop.components} ({built})", flush=True)
    pools = request_pools(shop)
    if args.swaps > 0:
        measure_swaps(shop, pools, args)
        return
    n_cpus = os.cpu_count() or 1
    pin = not args.no_pin and args.workers == 1 and n_cpus >= 2
    server_cpus = [n_cpus - 1] if pin else None
    if pin:
        os.sched_setaffinity(0, set(range(n_cpus - 1)))
    # SIGTERM unwinds through the `finally` below, so the server never outlives us
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    port = free_port()
    log = ROOT / ".shelfwise" / f"bench-serve-load-{args.items}" / "server.log"
    updates = _item_updates(shop, args, log.parent, server_cpus, n_cpus)
    try:
        server = start_server(
            shop.bundle,
            port=port,
            workers=args.workers,
            cpus=server_cpus,
            log=log,
            env_overrides=updates.environment("main") if updates else None,
        )
    except BaseException:
        if updates:
            updates.close()  # the replica started first: never leave it running
        raise
    load_start = os.getloadavg()[0]
    gc.collect()
    gc.freeze()  # the built frames stay; no collector pauses inside the client
    try:
        reading = drive(
            port,
            pools,
            endpoints=endpoints,
            rates=rates,
            duration=args.duration,
            connections=args.connections,
            server=server,
            phases=updates.phases if updates else None,
        )
        results = asyncio.run(updates.during(reading, port) if updates else reading)
        memory = worker_memory(server)
    finally:
        stop_server(server)
        if updates:
            updates.close()
    load_end = os.getloadavg()[0]
    result: dict[str, Any] = {name: results.get(name) for name in ENDPOINTS}
    result.update(
        {
            "workers": args.workers,
            "rss_mb": [w["rss_mb"] for w in memory],
            "memory": memory,
            "pinned": {"server_cpus": server_cpus, "client_cpus": sorted(os.sched_getaffinity(0))}
            if pin
            else None,
            "duration_s": args.duration,
            "connections": args.connections,
            "components": shop.components,
            "load_avg_1min": {"start": round(load_start, 2), "end": round(load_end, 2)},
            "machine": f"{platform.machine()}, {n_cpus} cores, 1-min load "
            f"{load_start:.2f} at start, {load_end:.2f} at end",
            "date": dt.date.today().isoformat(),
        }
    )
    result["command"] = " ".join(["nice -n 19", sys.executable, *sys.argv])
    if updates:
        result["item_updates"] = updates.result
        result["item_update_targets"] = updates.targets(result)
        print(f"\nitem updates during the load: {json.dumps(updates.result)}")
        print(f"targets under item updates: {json.dumps(result['item_update_targets'])}")
    print_table(result, rates, endpoints)
    print(f"\nrerun: {result['command']}")
    if args.json:
        print(json.dumps(result, default=float))


def _given(args: argparse.Namespace) -> Shop:
    """`--bundle`: an existing bundle and its shop's events."""
    bundle = Path(args.bundle).resolve()
    manifest = json.loads((bundle / "manifest.json").read_text())
    events = bundle.parent / "data" / "events.parquet"
    return Shop(bundle, events, dict(manifest["components"]), 0.0)


def _item_updates(
    shop: Shop, args: argparse.Namespace, work: Path, server_cpus: list[int] | None, n_cpus: int
) -> Any:
    """`--item-updates-per-s`: `_serve_catalog.ItemUpdates` (None without it)."""
    if args.item_updates_per_s <= 0:
        return None
    import _serve_catalog as catalog

    return catalog.ItemUpdates.start(
        shop.bundle,
        rate=args.item_updates_per_s,
        redis_url=args.redis_url,
        work=work,
        server_cpus=server_cpus,
        n_cpus=n_cpus,
        servers=(start_server, stop_server, free_port),
    )


def measure_swaps(shop: Shop, pools: dict[str, list[bytes]], args: argparse.Namespace) -> None:
    """`--swaps N`: reloads and promotions under a fixed rate (see `_serve_swaps.py`)."""
    import _serve_swaps as swaps

    work = ROOT / ".shelfwise" / f"bench-serve-load-{args.items}"
    if not shop.bundle.is_relative_to(work):  # --bundle: the server's root must hold both
        work = shop.bundle.parent
    copy = swaps.hard_linked_copy(shop.bundle, work / "swap-copy" / "bundle")
    uri, one, two = swaps.register_two_versions(work, shop.bundle, copy)
    token = swaps.new_token()
    n_cpus = os.cpu_count() or 1
    pin = not args.no_pin and n_cpus >= 2
    if pin:
        os.sched_setaffinity(0, set(range(n_cpus - 1)))
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    port = free_port()
    server = start_server(
        shop.bundle,
        port=port,
        workers=1,
        cpus=[n_cpus - 1] if pin else None,
        log=work / "server-swaps.log",
        env_overrides=swaps.server_environment(work, uri, token),
    )
    load_start = os.getloadavg()[0]
    gc.collect()
    gc.freeze()
    try:
        result = asyncio.run(
            swaps.run_phases(
                port,
                server.pid,
                pools["recommend"],
                token=token,
                paths=(shop.bundle, copy),
                versions=(one, two),
                uri=uri,
                swaps=args.swaps,
                promotions=args.promotions,
                rate=args.swap_rate,
                duration=args.duration,
                connections=args.connections,
                connection_factory=_Connection,
            )
        )
    finally:
        stop_server(server)
    load_end = os.getloadavg()[0]
    result["machine"] = (
        f"{platform.machine()}, {n_cpus} cores, 1-min load {load_start:.2f} at start, "
        f"{load_end:.2f} at end"
    )
    result["date"] = dt.date.today().isoformat()
    print(json.dumps(result["targets"]), flush=True)
    if args.json:
        print(json.dumps(result, default=float))


if __name__ == "__main__":
    main()
