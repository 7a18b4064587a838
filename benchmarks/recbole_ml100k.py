"""Our models on RecBole's exact ml-100k split, against RecBole 1.2.1's reference numbers.

Reads ../shared/data/ml-100k/recbole_split_seed2020.csv.gz (user, item, set), trains on
`train`, scores test users from their train + valid history with train and valid items
excluded, full ranking, metrics @10 (RecBole's protocol; see ../shared/data/README.md).

Usage: .venv/bin/python benchmarks/recbole_ml100k.py
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

from shelfwise.evaluate.metrics import ranking_metrics
from shelfwise.retrieval import ItemKNNRecommender, PopularityRecommender, Recommender
from shelfwise.retrieval.base import top_k_batch

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SPLIT = DATA / "ml-100k" / "recbole_split_seed2020.csv.gz"


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
    reference = json.loads((DATA / "peer_results.json").read_text())["ml-100k"]["models"]
    models: list[tuple[str, str, Recommender]] = [
        ("popularity", "Pop", PopularityRecommender()),
        ("item_knn (K=100)", "ItemKNN", ItemKNNRecommender(neighbours=100)),
    ]
    columns = "recall@10 | ndcg@10 | mrr@10 | hit@10 | precision@10 | fit s | RecBole ndcg@10"
    print(f"| model | {columns} |")
    print("|---|---|---|---|---|---|---|---|")
    for label, recbole_name, model in models:
        started = time.perf_counter()
        model.fit(train)
        fit_s = time.perf_counter() - started
        rows = history[evaluated]
        ranked = top_k_batch(model.score(rows), 10, exclude=rows)
        metrics = ranking_metrics(ranked, test[evaluated], [10])
        cells = " | ".join(
            f"{metrics[m + '@10']:.4f}" for m in ("recall", "ndcg", "mrr", "hit", "precision")
        )
        theirs = reference[recbole_name]["ndcg@10"]
        print(f"| {label} | {cells} | {fit_s:.2f} | {theirs:.4f} |")


if __name__ == "__main__":
    main()
