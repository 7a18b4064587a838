"""Issue 18's privacy test: a run and a live server with pseudonymisation on leave no raw
user id in any file or log line they wrote, and a raw id still gets its own list.

A real `shelfwise run` and a real `shelfwise serve` (uvicorn, access log on) as
subprocesses, their output captured to files; then every file under the home (runs,
bundle, registry, event log, forget list, audit) and the captured logs are searched for
the raw id, Parquet files through their decoded rows (their pages are compressed).
"""

from __future__ import annotations

import gzip
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import polars as pl
import pyarrow.parquet as pq
import pytest

from shelfwise.sample import ShopSummary

pytestmark = pytest.mark.slow  # a pipeline run and a server start: about a minute

KEY = "e2e-privacy-key-0123456789abcdefghijk"
TOKEN = "Zq8vN3kR1xW7pL5mT9cB2hY6dF4gJ0sA"
EMBEDDING_CACHE = Path(tempfile.gettempdir()) / "shelfwise-test-embeddings"  # as in conftest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _text_of(path: Path) -> bytes:
    """A file's bytes as an id would appear in them (Parquet and gzip decoded)."""
    data = path.read_bytes()
    if path.suffix == ".parquet":
        return str(pq.read_table(path).to_pylist()).encode() + data
    if path.suffix == ".gz":
        return gzip.decompress(data)
    return data


def _config(tmp_path: Path, shop: ShopSummary) -> Path:
    config = tmp_path / "shelfwise.yaml"
    config.write_text(
        f"home: {tmp_path / 'home'}\n"
        "data:\n"
        f"  catalog: {{path: {shop.catalog_path}}}\n"
        f"  events: {{path: {shop.events_path}}}\n"
        f"  queries: {{path: {shop.queries_path}}}\n"
        "privacy: {pseudonymize_users: true, log_queries: hashed}\n"
        "tune: {budget_seconds: 4, trials_per_model: 2}\n"
        "search: {latency_queries: 3}\n"
        f"models: {{blend: {{trials: 5}}, dense: {{cache_dir: {EMBEDDING_CACHE}}}}}\n",
        encoding="utf-8",
    )
    return config


def test_no_raw_user_id_in_anything_a_run_and_a_server_wrote(
    tiny_shop: ShopSummary, tmp_path: Path
) -> None:
    raw = tiny_shop.example_user_id
    config = _config(tmp_path, tiny_shop)
    env = {
        **os.environ,
        "SHELFWISE_PRIVACY_KEY": KEY,
        "SHELFWISE_SERVE_ADMIN_ENABLED": "true",
        "SHELFWISE_SERVE_ADMIN_TOKEN": TOKEN,
    }
    shelfwise = [sys.executable, "-m", "shelfwise"]
    run_log = tmp_path / "run.log"
    with run_log.open("wb") as out:
        ran = subprocess.run(
            [*shelfwise, "run", "-c", str(config)], env=env, stdout=out, stderr=out
        )
    assert ran.returncode == 0, run_log.read_text()[-3000:]

    port = _free_port()
    serve_log = tmp_path / "serve.log"
    with serve_log.open("wb") as out:
        server = subprocess.Popen(
            [*shelfwise, "serve", "-c", str(config), "--port", str(port)],
            env=env,
            stdout=out,
            stderr=out,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(240):
                try:
                    if httpx.get(f"{base}/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.25)
            recommended = httpx.post(f"{base}/v1/recommend", json={"user_id": raw, "k": 5}).json()
            assert recommended["fallback"] is None, recommended  # the raw id found its list
            search = {"query": "laptop", "user_id": raw, "k": 3}
            assert httpx.post(f"{base}/v1/search", json=search).status_code == 200
            item = recommended["items"][0]["item_id"]
            events = [
                {"user_id": raw, "item_id": item, "event_type": "click"},
                {"user_id": raw, "item_id": item, "event_type": "search", "query": "laptop"},
            ]
            assert httpx.post(f"{base}/v1/events", json={"events": events}).status_code == 202
            auth = {"Authorization": f"Bearer {TOKEN}"}
            forgot = httpx.delete(f"{base}/v1/users/{raw}", headers=auth)
            assert forgot.status_code == 200, forgot.text
            assert forgot.json()["online_events_removed"] == 2
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)

    logs = serve_log.read_text()
    assert "DELETE /v1/users/<redacted>" in logs  # the access log was on
    assert (tmp_path / "home" / "privacy" / "audit.jsonl").is_file()
    token = re.compile(rb"(?<![A-Za-z0-9])" + re.escape(raw.encode()) + rb"(?![A-Za-z0-9])")
    written = [p for p in (tmp_path / "home").rglob("*") if p.is_file()]
    assert any(p.suffix == ".jsonl" and "events" in p.parts for p in written)  # the event log
    assert any(p.name == "manifest.json" for p in written)  # a bundle
    leaks = [str(p) for p in [*written, run_log, serve_log] if token.search(_text_of(p))]
    assert not leaks, f"raw user id {raw} found in {leaks}"
    # the shop's own file does hold it: the search above would have found it there
    assert token.search(_text_of(Path(tiny_shop.events_path)))
    assert pl.read_parquet(tiny_shop.events_path)["raw_user_id"].str.contains(raw).any()
