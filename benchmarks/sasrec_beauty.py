"""SASRec on Amazon Beauty, leave-last-out, full ranking: against the published numbers.

Protocol (as in S3-Rec, TIGER and the eSASRec benchmark): per user, the last item is
the test target, the second-to-last the validation target, the rest trains. The
model trains on the train sequences with early stopping on validation NDCG@10, then
ranks all 12,101 items for every user from their train + valid sequence; the items of
that history are excluded (-inf) before the top 10. One target per user:
HR@10 = share of users whose target is in the top 10, NDCG@10 = mean 1/log2(rank + 1).

Usage:
    .venv/bin/python benchmarks/sasrec_beauty.py [--loss softmax] [--dropout 0.3] ...
        [--json] [--save FOLDER]
Every SASRecRecommender parameter has a flag (see --help). With --json the output
ends with one JSON line holding the settings, metrics, epochs and timings.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

# Idle OpenMP threads sleep instead of spinning: on a shared 2-core machine, spinning
# threads of a busy neighbour made 2-thread training 7x slower than 1 thread. Must be
# set before torch loads its OpenMP runtime.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from shelfwise.retrieval import Sequences  # noqa: E402
from shelfwise.retrieval.sasrec import SASRecRecommender  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "amazon-beauty" / "Beauty.txt"
K = 10
PARAMS = (
    "max_len",
    "hidden",
    "blocks",
    "heads",
    "dropout",
    "loss",
    "negatives",
    "negative_sampling",
    "epochs",
    "batch_size",
    "learning_rate",
    "weight_decay",
    "patience",
    "time_budget_s",
    "seed",
    "num_threads",
)
PUBLISHED = {  # HR@10, NDCG@10 under the same protocol (shared/data/README.md)
    "Pop (S3-Rec repo)": (0.0152, 0.0068),
    "SASRec, BCE (S3-Rec repo)": (0.0605, 0.0318),
    "S3-Rec": (0.0647, 0.0327),
    "TIGER": (0.0648, 0.0384),
    "SASRec + sampled softmax 256 (eSASRec)": (0.0921, 0.0531),
    "eSASRec": (0.0928, 0.0523),
}


def load_beauty(path: Path) -> tuple[list[np.ndarray[Any, Any]], int]:
    """One array of item_index per user (file ids are 1-based), and the item count."""
    rows: list[np.ndarray[Any, Any]] = []
    for line in path.read_text().splitlines():
        fields = line.split()
        if len(fields) > 1:
            rows.append(np.asarray(fields[1:], dtype=np.int64) - 1)
    n_items = int(max(int(row.max()) for row in rows)) + 1
    return rows, n_items


def rank_metrics(scores: np.ndarray[Any, Any], targets: np.ndarray[Any, Any]) -> tuple[Any, Any]:
    """(hit, ndcg) arrays: rank = 1 + items scored strictly above the target."""
    target_scores = scores[np.arange(targets.size), targets]
    rank = 1 + (scores > target_scores[:, None]).sum(axis=1)
    hit = (rank <= K) & np.isfinite(target_scores)
    ndcg = np.where(hit, 1.0 / np.log2(rank + 1.0), 0.0)
    return hit, ndcg


def evaluate(
    model: SASRecRecommender, histories: Sequences, targets: np.ndarray[Any, Any], n_items: int
) -> tuple[float, float]:
    """HR@10 and NDCG@10 over all users, full ranking, history items excluded."""
    hits: list[np.ndarray[Any, Any]] = []
    gains: list[np.ndarray[Any, Any]] = []
    for start in range(0, histories.n_users, 2048):
        users = np.arange(start, min(start + 2048, histories.n_users))
        chunk = histories.take(users)
        scores = model.score_sequences(chunk)
        rows = np.repeat(np.arange(users.size), chunk.lengths())
        scores[rows, chunk.items] = -np.inf
        hit, ndcg = rank_metrics(scores, targets[users])
        hits.append(hit)
        gains.append(ndcg)
    return float(np.concatenate(hits).mean()), float(np.concatenate(gains).mean())


def main() -> None:
    defaults = SASRecRecommender()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for key in PARAMS:
        value = getattr(defaults, key)
        kind = type(value) if value is not None else float
        parser.add_argument(f"--{key.replace('_', '-')}", type=kind, default=value)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument("--save", type=Path, default=None, help="save the model here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    rows, n_items = load_beauty(args.data)
    train = Sequences.from_rows([row[:-2] for row in rows])
    valid_targets = np.asarray([row[-2] for row in rows], dtype=np.int64)
    test_histories = Sequences.from_rows([row[:-1] for row in rows])
    test_targets = np.asarray([row[-1] for row in rows], dtype=np.int64)
    settings = {key: getattr(args, key) for key in PARAMS}
    model = SASRecRecommender(**settings)

    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    model.fit_sequences(train, n_items, valid=train, valid_targets=valid_targets)
    train_s = time.perf_counter() - started
    load_after = os.getloadavg()[0]
    started = time.perf_counter()
    hr, ndcg = evaluate(model, test_histories, test_targets, n_items)
    test_s = time.perf_counter() - started
    summary = model.summary
    if summary is None:
        raise RuntimeError("fit_sequences left no training summary")
    if args.save is not None:
        model.save(args.save)

    print(f"\nAmazon Beauty: {len(rows)} users, {n_items} items, leave-last-out, full ranking")
    print(f"settings: {json.dumps(settings, sort_keys=True)}")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch threads "
        f"{args.num_threads}; 1-min load average {load_before:.1f} before training, "
        f"{load_after:.1f} after (other processes share the cores)"
    )
    print(f"\n| model | HR@{K} | NDCG@{K} |\n|---|---|---|")
    for name, (pub_hr, pub_ndcg) in PUBLISHED.items():
        print(f"| {name} | {pub_hr:.4f} | {pub_ndcg:.4f} |")
    print(f"| **shelfwise SASRec ({args.loss})** | **{hr:.4f}** | **{ndcg:.4f}** |")
    print(
        f"\ntrain {train_s:.1f} s ({summary.epochs_run} epochs, kept epoch "
        f"{summary.best_epoch}, valid NDCG@{K} {summary.best_valid_ndcg:.4f}, stopped by "
        f"{summary.stopped_by}); test scoring {test_s:.1f} s"
    )
    if summary.stopped_by == "time_budget":
        # epochs and patience decide otherwise: only the safety cap depends on speed
        print(
            f"WARNING: the safety cap --time-budget-s {args.time_budget_s:g} ended training; "
            "this result depends on the machine's speed and load (not reproducible)"
        )
    if args.json:
        print(
            json.dumps(
                {
                    "settings": settings,
                    "test": {"hr@10": hr, "ndcg@10": ndcg},
                    "valid_ndcg@10": summary.best_valid_ndcg,
                    "best_epoch": summary.best_epoch,
                    "epochs_run": summary.epochs_run,
                    "stopped_by": summary.stopped_by,
                    "reproducible": summary.stopped_by != "time_budget",
                    "train_s": train_s,
                    "load_average": [load_before, load_after],
                    "test_s": test_s,
                }
            )
        )


if __name__ == "__main__":
    main()
