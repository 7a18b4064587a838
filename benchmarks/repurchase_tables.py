"""Cost of the click model's repurchase tables at shop size (issue 15).

Builds, from seeded random events (30% purchases, Zipf-popular items), what the ranking
stage builds once per cutoff (`shelfwise.ranking.repurchase`): the distinct purchases,
the per-(user, item) last-purchase table and the items' typical repurchase gaps; then
times the serving lookup of 100 (user, item) pairs (one candidate list).

Usage:
    .venv/bin/python benchmarks/repurchase_tables.py [--events 10000000]
        [--users 200000] [--items 50000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import polars as pl


def main() -> None:
    """Generate, build, time, print one JSON line."""
    from shelfwise.ranking.repurchase import purchase_table, purchases_of, typical_gaps

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    n = args.events
    events = pl.DataFrame(
        {
            "user_index": rng.integers(0, args.users, n),
            "item_index": rng.zipf(1.3, n) % args.items,
            "timestamp": rng.integers(0, 180 * 86_400, n),
            "event_type": np.where(rng.random(n) < 0.3, "purchase", "view"),
        }
    )
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    purchases = purchases_of(events)
    seconds["purchases_of"] = time.perf_counter() - started
    started = time.perf_counter()
    table = purchase_table(purchases, n_items=args.items)
    seconds["purchase_table"] = time.perf_counter() - started
    started = time.perf_counter()
    gaps = typical_gaps(purchases, n_items=args.items)
    seconds["typical_gaps"] = time.perf_counter() - started
    users = rng.integers(0, args.users, 100)
    items = rng.integers(0, args.items, 100)
    started = time.perf_counter()
    for _ in range(1000):
        table.last_purchase(users, items)
    lookup_ms = (time.perf_counter() - started) / 1000 * 1000.0
    print(
        json.dumps(
            {
                "events": n,
                "purchases": purchases.height,
                "pairs": int(table.keys.size),
                "items_with_a_gap": int(np.isfinite(gaps).sum()),
                "table_bytes": int(table.keys.nbytes + table.times.nbytes),
                "seconds": {name: round(value, 2) for name, value in seconds.items()},
                "lookup_100_pairs_ms": round(lookup_ms, 4),
            }
        )
    )


if __name__ == "__main__":
    main()
