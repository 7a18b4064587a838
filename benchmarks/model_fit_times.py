"""Fit and scoring times of each recommender on a random 50k users x 20k items matrix.

About 1M interactions, uniform (default) or Zipf-skewed item popularity. Run it on an
otherwise idle machine, single-threaded BLAS for comparable numbers:

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 .venv/bin/python benchmarks/model_fit_times.py \
        rp3beta,item_knn,user_knn,als,bpr,ease_guarded5000,ease_full20000 [skewed]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from shelfwise.retrieval.als import ALSRecommender
from shelfwise.retrieval.base import Recommender
from shelfwise.retrieval.bpr import BPRRecommender
from shelfwise.retrieval.ease import EASERecommender
from shelfwise.retrieval.item_knn import ItemKNNRecommender
from shelfwise.retrieval.rp3beta import RP3betaRecommender
from shelfwise.retrieval.user_knn import UserKNNRecommender

MODELS: dict[str, Callable[[], Recommender]] = {
    "rp3beta": RP3betaRecommender,
    "item_knn": lambda: ItemKNNRecommender(neighbours=100),
    "user_knn": lambda: UserKNNRecommender(neighbours=100),
    "als": ALSRecommender,
    "bpr": BPRRecommender,
    "ease_guarded5000": lambda: EASERecommender(max_dense_items=5000),
    "ease_full20000": lambda: EASERecommender(max_dense_items=20000),
}


def matrix(skewed: bool) -> sp.csr_matrix:
    """The random binary interaction matrix."""
    rng = np.random.default_rng(0)
    n_users, n_items, nnz = 50_000, 20_000, 1_000_000
    if skewed:  # Zipf-like popularity: p(i) ∝ 1 / (i + 10)
        weights = 1.0 / (np.arange(n_items) + 10.0)
        columns = rng.choice(n_items, size=nnz, p=weights / weights.sum())
    else:
        columns = rng.integers(0, n_items, nnz)
    rows = rng.integers(0, n_users, nnz)
    result = sp.csr_matrix((np.ones(nnz, np.float32), (rows, columns)), shape=(n_users, n_items))
    result.sum_duplicates()
    result.data[:] = 1.0
    return result


def main() -> None:
    """Fit each named model, then score 1,000 users; print the times."""
    names = sys.argv[1].split(",") if len(sys.argv) > 1 else list(MODELS)
    skewed = len(sys.argv) > 2 and sys.argv[2] == "skewed"
    data = matrix(skewed)
    print(f"matrix {data.shape}, {data.nnz:,} interactions, {'skewed' if skewed else 'uniform'}")
    for name in names:
        model = MODELS[name]()
        started = time.perf_counter()
        model.fit(data)
        fit_s = time.perf_counter() - started
        started = time.perf_counter()
        model.score(data[:1000])
        print(f"{name}: fit {fit_s:.2f} s, score 1000 users {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
