"""Optuna search spaces, one per tunable recommender family.

Each `space_<name>(trial)` draws constructor keyword arguments of the registered
model `<name>`; `SPACES` maps registry names to them (popularity has no parameters,
so no space). Ranges follow the literature and what scored on RecBole's ml-100k split
(benchmarks/recbole_ml100k.py); iteration counts and neighbourhoods are bounded so one
trial on ml-100k fits in seconds on 2 cores.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna

FACTOR_CHOICES: tuple[int, ...] = (32, 64, 128, 256)


def space_item_knn(trial: optuna.Trial) -> dict[str, Any]:
    """Neighbourhood size (log 10..1000) and the column weighting of implicit's kNN."""
    params: dict[str, Any] = {
        "neighbours": trial.suggest_int("neighbours", 10, 1000, log=True),
        "weighting": trial.suggest_categorical("weighting", ["none", "bm25", "tfidf"]),
    }
    if params["weighting"] == "bm25":
        params["bm25_k1"] = trial.suggest_float("bm25_k1", 0.2, 3.0)
        params["bm25_b"] = trial.suggest_float("bm25_b", 0.0, 1.0)
    return params


def space_user_knn(trial: optuna.Trial) -> dict[str, Any]:
    """Neighbourhood size, log 10..500 (ml-100k peaks at 50..100)."""
    return {"neighbours": trial.suggest_int("neighbours", 10, 500, log=True)}


def space_ease(trial: optuna.Trial) -> dict[str, Any]:
    """L2 penalty, log 10..5000 (Steck: 100..1000 on MovieLens and Netflix); EDLAE dropout.

    Dropout 0..0.7 covers plain EASE (0) and the EDLAE variant, which on ml-100k's
    RecBole split scored higher than EASE (λ 350, p 0.5: test NDCG@10 0.3375 vs 0.3295).
    """
    return {
        "l2": trial.suggest_float("l2", 10.0, 5000.0, log=True),
        "dropout": trial.suggest_float("dropout", 0.0, 0.7),
    }


def space_gfcf(trial: optuna.Trial) -> dict[str, Any]:
    """Singular vectors k, log 8..512, and the ideal low-pass weight alpha, 0..2.

    Shen et al. use k=256, alpha=0.3 on catalogs of 40k items; on ml-100k's RecBole
    split valid NDCG@10 peaks at k 48..64 and is flat for alpha 0.3..2 (k=256 loses 0.03).
    """
    return {
        "factors": trial.suggest_int("factors", 8, 512, log=True),
        "alpha": trial.suggest_float("alpha", 0.0, 2.0),
    }


def space_rp3beta(trial: optuna.Trial) -> dict[str, Any]:
    """alpha 0.3..1.5, beta 0..1, neighbours log 20..500, row normalisation on/off.

    Dacrema et al. search alpha 0..2, beta 0..2, topK 5..1000; the narrower box keeps
    the values that ever won there and on ml-100k.
    """
    return {
        "alpha": trial.suggest_float("alpha", 0.3, 1.5),
        "beta": trial.suggest_float("beta", 0.0, 1.0),
        "neighbours": trial.suggest_int("neighbours", 20, 500, log=True),
        "normalize": trial.suggest_categorical("normalize", [True, False]),
    }


def space_als(trial: optuna.Trial) -> dict[str, Any]:
    """factors {32..256}, regularization log 0.1..100, alpha log 0.3..10, 8..25 sweeps.

    The regularization range reaches 100 because shelfwise's λ is not scaled by the
    user's item count (as in implicit): ml-100k's best value is about 10..20.
    """
    return {
        "factors": trial.suggest_categorical("factors", list(FACTOR_CHOICES)),
        "regularization": trial.suggest_float("regularization", 0.1, 100.0, log=True),
        "alpha": trial.suggest_float("alpha", 0.3, 10.0, log=True),
        "iterations": trial.suggest_int("iterations", 8, 25),
    }


def space_bpr(trial: optuna.Trial) -> dict[str, Any]:
    """factors {32..256}, learning rate log 1e-3..0.1, regularization log 1e-4..1,
    epochs log 20..200 (a 200-epoch fit of ml-100k takes a few seconds on one thread).
    """
    return {
        "factors": trial.suggest_categorical("factors", list(FACTOR_CHOICES)),
        "learning_rate": trial.suggest_float("learning_rate", 1e-3, 0.1, log=True),
        "regularization": trial.suggest_float("regularization", 1e-4, 1.0, log=True),
        "iterations": trial.suggest_int("iterations", 20, 200, log=True),
    }


def space_buy_again(trial: optuna.Trial) -> dict[str, Any]:
    """decay 0.95..1, cycle_weight 0..8, cycle_width 0.2..1 (the repurchase cycle's pull)."""
    return {
        "decay": trial.suggest_float("decay", 0.95, 1.0),
        "cycle_weight": trial.suggest_float("cycle_weight", 0.0, 8.0),
        "cycle_width": trial.suggest_float("cycle_width", 0.2, 1.0),
    }


def space_tifu_knn(trial: optuna.Trial) -> dict[str, Any]:
    """group_size 3..20, both decays 0.5..1, neighbours log 10..300, alpha 0.5..1."""
    return {
        "group_size": trial.suggest_int("group_size", 3, 20),
        "within_decay": trial.suggest_float("within_decay", 0.5, 1.0),
        "across_decay": trial.suggest_float("across_decay", 0.5, 1.0),
        "neighbours": trial.suggest_int("neighbours", 10, 300, log=True),
        "alpha": trial.suggest_float("alpha", 0.5, 1.0),
    }


SPACES: dict[str, Callable[[optuna.Trial], dict[str, Any]]] = {
    "item_knn": space_item_knn,
    "user_knn": space_user_knn,
    "ease": space_ease,
    "gfcf": space_gfcf,
    "rp3beta": space_rp3beta,
    "als": space_als,
    "bpr": space_bpr,
    "buy_again": space_buy_again,
    "tifu_knn": space_tifu_knn,
}

__all__ = [
    "FACTOR_CHOICES",
    "SPACES",
    "space_als",
    "space_bpr",
    "space_buy_again",
    "space_ease",
    "space_gfcf",
    "space_item_knn",
    "space_rp3beta",
    "space_tifu_knn",
    "space_user_knn",
]
