"""Our models on RecBole's exact ml-100k split, against RecBole 1.2.1's reference numbers.

Reads ../shared/data/ml-100k/recbole_split_seed2020.csv.gz (user, item, set), trains on
`train`, ranks all items for every test user with train and valid items excluded,
metrics @10 (RecBole's protocol; see ../shared/data/README.md).

Test users are scored from their *train* rows, as RecBole's `full_sort_predict` does
(it reads the train interaction matrix, so valid items are excluded but never used as
input): that is what makes EASE reproduce RecBole's 0.3295 exactly. The last column
scores the same users from train + valid rows instead (what serving would do: every
known interaction is history); models that fold a history in gain from it. The column
before it keeps RecBole's input (train rows) but fits the model on train + valid
(the usual final refit once parameters are chosen; RecBole fits on train only).

Rows marked "tuned on valid" use parameters chosen by searching NDCG@10 on the valid
set (fit on train, score train rows, valid items as targets), never on test.

Usage: .venv/bin/python benchmarks/recbole_ml100k.py [model label substring ...]
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

from shelfwise.evaluate.metrics import ranking_metrics
from shelfwise.retrieval import ItemKNNRecommender, PopularityRecommender, Recommender
from shelfwise.retrieval.als import ALSRecommender
from shelfwise.retrieval.base import top_k_batch
from shelfwise.retrieval.bpr import BPRRecommender
from shelfwise.retrieval.ease import EASERecommender
from shelfwise.retrieval.gfcf import GFCFRecommender
from shelfwise.retrieval.rp3beta import RP3betaRecommender
from shelfwise.retrieval.user_knn import UserKNNRecommender

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SPLIT = DATA / "ml-100k" / "recbole_split_seed2020.csv.gz"
METRICS = ("recall", "ndcg", "mrr", "hit", "precision")

# (label, RecBole model to compare with or None, factory)
MODELS: list[tuple[str, str | None, Callable[[], Recommender]]] = [
    ("popularity", "Pop", PopularityRecommender),
    ("item_knn (K=100)", "ItemKNN", lambda: ItemKNNRecommender(neighbours=100)),
    (
        "item_knn (K=100, tfidf)",
        "ItemKNN",
        lambda: ItemKNNRecommender(neighbours=100, weighting="tfidf"),
    ),
    ("user_knn (K=100)", None, lambda: UserKNNRecommender(neighbours=100)),
    ("ease (l2=250)", "EASE", lambda: EASERecommender(l2=250.0)),
    (
        "ease (EDLAE l2=419, dropout=0.50, tuned on valid)",
        "EASE",
        lambda: EASERecommender(l2=419.17, dropout=0.4957),
    ),
    ("gfcf (paper: k=256, alpha=0.3)", None, lambda: GFCFRecommender(factors=256, alpha=0.3)),
    ("gfcf (defaults: k=64, alpha=0.3)", None, GFCFRecommender),
    ("rp3beta (defaults)", None, RP3betaRecommender),
    (
        "rp3beta (tuned on valid)",
        None,
        lambda: RP3betaRecommender(alpha=0.8, beta=0.6, neighbours=200),
    ),
    ("als (defaults)", None, ALSRecommender),
    ("als (tuned on valid)", None, lambda: ALSRecommender(factors=64, regularization=20.0)),
    (
        "als (AutoML pick: 256 factors, tuned on valid)",
        None,
        lambda: ALSRecommender(factors=256, regularization=35.27, alpha=2.754, iterations=18),
    ),
    ("bpr (defaults)", "BPR", BPRRecommender),
    (
        "bpr (tuned on valid)",
        "BPR",
        lambda: BPRRecommender(learning_rate=0.0114, regularization=0.0187, iterations=169),
    ),
]


def main() -> None:
    """Fit, evaluate and print a Markdown table next to RecBole's numbers."""
    frame = pl.read_csv(SPLIT)
    users = {u: i for i, u in enumerate(sorted(frame["user"].unique().to_list()))}
    items = {v: i for i, v in enumerate(sorted(frame["item"].unique().to_list()))}

    def matrix(sets: list[str]) -> sp.csr_matrix:
        rows = frame.filter(pl.col("set").is_in(sets))
        result = sp.csr_matrix(
            (
                np.ones(rows.height, dtype=np.float32),
                ([users[u] for u in rows["user"]], [items[i] for i in rows["item"]]),
            ),
            shape=(len(users), len(items)),
        )
        result.sum_duplicates()
        result.data[:] = 1.0
        return result

    train, history, test = matrix(["train"]), matrix(["train", "valid"]), matrix(["test"])
    evaluated = np.flatnonzero(test.getnnz(axis=1) > 0)
    seen, targets = history[evaluated], test[evaluated]
    reference = json.loads((DATA / "peer_results.json").read_text())["ml-100k"]["models"]
    wanted = sys.argv[1:]
    columns = " | ".join(f"{m}@10" for m in METRICS)
    print(
        f"| model | {columns} | fit s | RecBole ndcg@10 | ndcg@10, fit on train+valid "
        "| ndcg@10, train+valid rows |"
    )
    print("|---|" + "---|" * (len(METRICS) + 4))
    for label, recbole_name, make in MODELS:
        if wanted and not any(part in label for part in wanted):
            continue
        model = make()
        started = time.perf_counter()
        model.fit(train)
        fit_s = time.perf_counter() - started
        ranked = top_k_batch(model.score(train[evaluated]), 10, exclude=seen)
        metrics = ranking_metrics(ranked, targets, [10])
        ranked_with_valid = top_k_batch(model.score(seen), 10, exclude=seen)
        with_valid = ranking_metrics(ranked_with_valid, targets, [10])
        refitted = make()
        refitted.fit(history)
        ranked_refit = top_k_batch(refitted.score(train[evaluated]), 10, exclude=seen)
        refit = ranking_metrics(ranked_refit, targets, [10])
        cells = " | ".join(f"{metrics[m + '@10']:.4f}" for m in METRICS)
        theirs = f"{reference[recbole_name]['ndcg@10']:.4f}" if recbole_name else "–"
        print(
            f"| {label} | {cells} | {fit_s:.2f} | {theirs} | {refit['ndcg@10']:.4f} "
            f"| {with_valid['ndcg@10']:.4f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
