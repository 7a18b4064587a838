"""Search blend weights on the validation split.

The best `max_models` single matrix models (by the primary metric on valid) are
scored once on a seeded sample of validation users; Optuna (TPE, seeded) then tries
weight vectors, each a cheap weighted sum plus top-k on the cached, normalised
scores. The caller evaluates the winning blend on the whole validation split like any
model and keeps it only when it beats the best single model there.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna

from shelfwise.evaluate.metrics import ranking_metrics
from shelfwise.evaluate.recommend import EvalSplit
from shelfwise.retrieval.base import FloatArray, Recommender, top_k_batch
from shelfwise.retrieval.blend import BlendRecommender, normalise_rows
from shelfwise.tune.search import parse_metric

# Cached normalised scores: models × users × items float32; keep it near 400 MB.
_MAX_CACHE_CELLS = 100_000_000


def search_blend(
    models: dict[str, Recommender],
    valid: EvalSplit,
    *,
    metric: str,
    trials: int,
    seed: int,
) -> tuple[BlendRecommender, float, list[dict[str, Any]]]:
    """Best weights for `models` on a sample of `valid`.

    Returns:
        The blend, its metric on the sample, and every trial (weights, value).
    """
    _, k = parse_metric(metric)
    n_items = valid.history.shape[1]
    sample = valid.subset(
        max(1, min(valid.users.size, _MAX_CACHE_CELLS // (n_items * len(models))))
    )
    rows = sample.history[sample.users]
    excluded = sample.excluded[sample.users]
    targets = sample.targets[sample.users]
    cached: dict[str, FloatArray] = {
        name: normalise_rows(model.score(rows)) for name, model in models.items()
    }
    names = list(models)
    records: list[dict[str, Any]] = []

    def value_of(weights: dict[str, float]) -> float:
        total = sum(weight * cached[name] for name, weight in weights.items())
        ranked = top_k_batch(np.asarray(total, dtype=np.float32), k, exclude=excluded)
        return float(ranking_metrics(ranked, targets, [k]).get(metric, 0.0))

    def objective(trial: optuna.Trial) -> float:
        weights = {name: trial.suggest_float(name, 0.0, 1.0) for name in names}
        if sum(weights.values()) == 0:
            weights[names[0]] = 1.0
        value = value_of(weights)
        records.append({"weights": weights, "value": value})
        return value

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    # Start from equal weights and from each model alone: the blend can only do better.
    study.enqueue_trial(dict.fromkeys(names, 1.0))
    for name in names:
        study.enqueue_trial({other: float(other == name) for other in names})
    study.optimize(objective, n_trials=max(trials, len(names) + 1))
    best = {name: float(study.best_params[name]) for name in names}
    blend = BlendRecommender(
        {n: w for n, w in best.items() if w > 0}, {n: models[n] for n, w in best.items() if w > 0}
    )
    return blend, float(study.best_value), records
