"""What pseudonymous user ids cost: ingest's hashing and the API edge's body rewrite.

    nice -n 19 .venv/bin/python benchmarks/privacy_edge.py [--events 2000000 --users 200000]

Batch: `pseudonymize_column` over events with repeated users (each distinct id is
hashed once, then mapped), and `drop_forgotten` with a 1,000-user forget list. Edge:
`PseudonymizeMiddleware` rewriting a /v1/recommend body and a 100-event /v1/events
body, per request, against the JSON parse alone (the floor of any rewrite).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from shelfwise.config import PrivacyConfig
from shelfwise.privacy import (
    ForgetList,
    Pseudonymizer,
    UserPrivacy,
    drop_forgotten,
    pseudonymize_column,
)
from shelfwise.serve.privacy import PseudonymizeMiddleware

KEY = b"benchmark-key-0123456789abcdefghijklmnop"


def _per_call_us(action: Callable[[], object], repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        action()
    return (time.perf_counter() - start) / repeat * 1e6


def main() -> None:
    """Print the batch and edge timings."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--users", type=int, default=200_000)
    args = parser.parse_args()
    hasher = Pseudonymizer(KEY)
    rng = np.random.default_rng(0)
    users = rng.integers(0, args.users, size=args.events)
    frame = pl.DataFrame({"raw_user_id": [f"U{n:07d}" for n in users], "raw_item_id": users % 997})
    start = time.perf_counter()
    hashed = pseudonymize_column(frame, "raw_user_id", hasher)
    seconds = time.perf_counter() - start
    print(
        f"batch: pseudonymised {args.events:,} events of {args.users:,} users in "
        f"{seconds:.2f} s ({args.events / seconds / 1e6:.2f} M events/s)"
    )
    forgotten = frozenset(hasher(f"U{n:07d}") for n in range(1000))
    start = time.perf_counter()
    kept, dropped = drop_forgotten(hashed, "raw_user_id", forgotten, hasher)
    seconds = time.perf_counter() - start
    print(f"batch: forget list of 1,000 users dropped {dropped:,} events in {seconds:.2f} s")

    unused = ForgetList(Path("/nonexistent"))  # the edge never reads the forget list
    privacy = UserPrivacy(PrivacyConfig(pseudonymize_users=True), hasher, unused)
    edge = PseudonymizeMiddleware(None, privacy=privacy)  # type: ignore[arg-type]
    recommend = json.dumps({"user_id": "U0000042", "k": 10, "exclude": ["sku-1"]}).encode()
    events = json.dumps(
        {
            "events": [
                {"user_id": f"U{n:07d}", "item_id": f"sku-{n}", "event_type": "view"}
                for n in range(100)
            ]
        }
    ).encode()
    for name, body, repeat in (("recommend", recommend, 20_000), ("100 events", events, 2_000)):
        rewrite = _per_call_us(lambda body=body: edge._rewrite(body), repeat)
        parse = _per_call_us(lambda body=body: json.loads(body), repeat)
        print(f"edge: {name} body rewritten in {rewrite:.1f} us (JSON parse alone {parse:.1f} us)")


if __name__ == "__main__":
    main()
