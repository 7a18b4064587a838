"""What the operator console costs the server: server time per page, at shop-size state.

Serves the bundle of `benchmarks/live_catalog.py` (a generated shop, default 50,000
items; built once, reused) with the admin routes and the console, then fills the state
the pages read:

* `--requests` recommendations for known users (per-version counters and histograms);
* `--catalog-changes` item changes in the catalog log (what `PUT /v1/items` writes; the
  audit page reads the whole log each time it is opened);
* `--rules-versions` rules versions and `--decisions` canary decisions.

Then it times each page and the two fragments the browser reloads every
`console_refresh_s` (5 s by default), in-process through the ASGI app (`httpx`'s
`TestClient`, no network), `--renders` times each after one warm-up: p50 / p99 ms.
The cost of an open console is the KPI plus the drift fragment every 5 s.

Usage:
    .venv/bin/python benchmarks/console_pages.py [--items 50000] [--catalog-changes 100000]
        [--requests 2000] [--renders 30] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-console-8Hq2Wm9Xc4Rz8Lb1Nt5Vy3Kd6Pf0"  # noqa: S105 - a local benchmark's token
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PAGES = (
    "/console/versions",
    "/console/kpis",
    "/console/kpis/live",
    "/console/drift/live",
    "/console/audit",
    "/console/playground",
)


def _fill_home(home: Path, items: list[str], catalog_changes: int, decisions: int) -> None:
    """Catalog log and canary decisions, written as the server and `canary judge` do."""
    from shelfwise.stores.catalog_log import CatalogChange, append_changes, open_catalog_log

    log = open_catalog_log(home / "catalog", fsync=False)
    batch = 1000
    for start in range(0, catalog_changes, batch):
        changes = [
            CatalogChange(
                "upsert",
                items[n % 5000],
                {"price": float(n % 997), "in_stock": n % 3 > 0},
                time.time_ns() + n,
                "bench",
            )
            for n in range(start, min(start + batch, catalog_changes))
        ]
        append_changes(log, changes)
    log.close()
    folder = home / "canary"
    folder.mkdir(parents=True, exist_ok=True)
    side = {"lists": 4000.0, "clicks": 400.0, "ctr": 0.1}
    line = {"decision": "wait", "champion": "1", "challenger": "2", "reasons": ["not yet"]}
    with (folder / "decisions.jsonl").open("w", encoding="utf-8") as out:
        for n in range(decisions):
            at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1800 * n))
            record = {**line, "kpis": {"champion": side, "challenger": side}, "at": at}
            out.write(json.dumps(record) + "\n")


def _ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": round(ordered[len(ordered) // 2] * 1000, 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
    }


def main() -> None:
    """Build or reuse the bundle, fill the state, time every page; print JSON with --json."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--catalog-changes", type=int, default=100_000)
    parser.add_argument("--rules-versions", type=int, default=50)
    parser.add_argument("--decisions", type=int, default=5_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--renders", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from fastapi.testclient import TestClient
    from live_catalog import build  # the same generated shop and bundle

    from shelfwise.runtime import load_engine
    from shelfwise.serve import ServeSettings, create_app

    bundle = build(ROOT / ".shelfwise" / f"bench-live-catalog-{args.items}", args.items)
    engine = load_engine(bundle, verify=False)
    users = [str(user) for user in list(engine.user_index)[:5000]]
    items = engine.catalog.raw_item_ids
    home = Path(tempfile.mkdtemp(prefix="bench-console-"))
    _fill_home(home, items, args.catalog_changes, args.decisions)
    settings = ServeSettings(
        bundle_path=None,
        admin_enabled=True,
        admin_token=TOKEN,
        event_log_dir=home / "events",
        catalog_log_dir=home / "catalog",
        drift_interval_s=0,
        omp_threads=0,
        freeze_heap=False,
    )
    os.environ["SHELFWISE_HOME"] = str(home)
    started = time.perf_counter()
    with TestClient(create_app(settings, engine=engine)) as client:
        startup_s = time.perf_counter() - started  # includes replaying the catalog log
        rules = {"rules": [{"id": "pin-1", "action": "pin", "items": [items[0]], "position": 1}]}
        for n in range(args.rules_versions):
            rules["comment"] = f"version {n}"
            client.put("/v1/admin/rules", json=rules, headers=AUTH)
        rng = random.Random(7)
        for _ in range(args.requests):
            client.post("/v1/recommend", json={"user_id": rng.choice(users), "k": 10})
        client.post("/console/drift/measure", headers=AUTH)
        pages: dict[str, Any] = {}
        for path in PAGES:
            client.get(path, headers=AUTH)  # warm-up: templates compiled, files cached
            times = []
            for _ in range(args.renders):
                start = time.perf_counter()
                answer = client.get(path, headers=AUTH)
                times.append(time.perf_counter() - start)
                answer.raise_for_status()
            pages[path] = {**_ms(times), "bytes": len(answer.content)}
    refresh = pages["/console/kpis/live"]["p50_ms"] + pages["/console/drift/live"]["p50_ms"]
    result = {
        "items": args.items,
        "catalog_changes": args.catalog_changes,
        "rules_versions": args.rules_versions,
        "decisions": args.decisions,
        "requests": args.requests,
        "renders": args.renders,
        "startup_s": round(startup_s, 2),
        "pages": pages,
        # the share of one core an open console takes with the default 5 s refresh
        "open_console_core_share": round(refresh / 5000, 5),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_average": os.getloadavg(),
    }
    if args.json:
        print(json.dumps(result, indent=2))  # noqa: T201
        return
    for path, numbers in pages.items():
        print(f"{path:24s} p50 {numbers['p50_ms']:8.2f} ms  p99 {numbers['p99_ms']:8.2f} ms")  # noqa: T201
    print(f"an open console: {result['open_console_core_share']:.3%} of a core")  # noqa: T201


if __name__ == "__main__":
    main()
