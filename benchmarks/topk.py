"""Row-wise top-k selection: numpy introselect against torch.topk (retrieval/_select.py).

Blocks shaped like evaluation's (users × items, float32 scores), k as evaluation and
candidate retrieval use it. Prints milliseconds per block for: the old path
(argpartition of the negated block), the numpy path and the torch path of
`select_top_k` (both with the lower-index tie rule), best of `--repeats`.

Usage:
    .venv/bin/python benchmarks/topk.py [--rows 1000] [--items 20000,200000] [--k 20,100]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from shelfwise.retrieval._select import select_top_k


def best_ms(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return 1000 * min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--items", default="20000,200000")
    parser.add_argument("--k", default="20,100")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    select_top_k(np.zeros((64, 1 << 15), np.float32), 5, use_torch=True)  # import torch first
    print(f"cpus {os.cpu_count()}, load {os.getloadavg()[0]:.2f}")
    print("| rows × items | k | old argpartition ms | numpy ms | torch ms |")
    print("|---|---|---|---|---|")
    for items in (int(x) for x in args.items.split(",")):
        values = rng.standard_normal((args.rows, items)).astype(np.float32)
        for k in (int(x) for x in args.k.split(",")):
            old = best_ms(
                lambda v=values, k=k: np.argpartition(-v, k - 1, axis=1)[:, :k], args.repeats
            )
            new_np = best_ms(
                lambda v=values, k=k: select_top_k(v, k, use_torch=False), args.repeats
            )
            new_t = best_ms(lambda v=values, k=k: select_top_k(v, k, use_torch=True), args.repeats)
            print(f"| {args.rows} × {items:,} | {k} | {old:.0f} | {new_np:.0f} | {new_t:.0f} |")


if __name__ == "__main__":
    main()
