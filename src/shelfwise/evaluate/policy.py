"""The repeat policy in the evaluate stage: resolve `learn`, build the splits it implies.

Under `exclude` (and a `learn` that resolves to it) evaluation is what it always was:
seen items are never ranked and targets leave them out, and the report says how many
repeat targets that left out. Under `allow`, lists may hold seen items and targets
keep them (`<split>_targets_all.npz`), so a "buy again" model is finally measured on
what users buy. `learn` first scores every model on validation both ways, over the
same repeat-inclusive targets and users, and keeps the better (`choose_policy`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from shelfwise._internal.artifacts import read_csr
from shelfwise.compute import Executor
from shelfwise.config import ShelfwiseConfig
from shelfwise.evaluate.recommend import EvalSplit, evaluation_users, rank_users
from shelfwise.evaluate.repeat import (
    PolicyChoice,
    choose_policy,
    count_repeat_targets,
    metrics_on,
)
from shelfwise.retrieval import REPEAT_MODELS
from shelfwise.retrieval.base import Recommender

ALL_TARGETS = "{split}_targets_all.npz"  # written by the features stage


def repeat_targets(features: Path, split: str) -> sp.csr_matrix | None:
    """The split's targets with repeats kept; None for a features folder without them."""
    path = features / ALL_TARGETS.format(split=split)
    return read_csr(path) if path.is_file() else None


def allow_split(
    split: EvalSplit, targets_all: sp.csr_matrix, *, max_users: int | None, seed: int
) -> EvalSplit:
    """`split` with seen items listable and repeat targets counted (its own users)."""
    users = np.sort(evaluation_users(targets_all, max_users=max_users, seed=seed))
    return replace(split, targets=targets_all, users=users, exclude_seen=False)


def resolve_policy(
    config: ShelfwiseConfig,
    valid: EvalSplit,
    valid_all: sp.csr_matrix | None,
    models: dict[str, Recommender],
    executor: Executor | None = None,
) -> tuple[PolicyChoice, dict[str, Any]]:
    """Resolve `models.repeat_policy` on validation (module docstring).

    Args:
        config: the run's config.
        valid: the validation split as evaluated today (seen items excluded).
        valid_all: its targets with repeats kept (None: an older features folder).
        models: the train-only fits, by name.
        executor: where user blocks are scored.

    Returns:
        The choice, and the validation metrics of each model in each mode scored
        (mode -> model -> metrics) for the report.
    """
    configured = config.models.repeat_policy
    metric = config.evaluate.primary_metric
    n_repeats = 0 if valid_all is None else count_repeat_targets(valid_all, valid.history)
    if configured == "exclude" or valid_all is None:
        return choose_policy("exclude", n_repeats, {}, metric), {}
    if configured == "learn" and n_repeats == 0:
        return choose_policy(configured, 0, {}, metric), {}
    both = allow_split(valid, valid_all, max_users=config.evaluate.max_eval_users, seed=config.seed)
    modes = ("exclude", "allow") if configured == "learn" else ("allow",)
    k_values = config.evaluate.k_values
    k_max = max(k_values)
    by_mode: dict[str, dict[str, dict[str, float]]] = {mode: {} for mode in modes}
    if both.users.size:
        for mode in modes:
            split = replace(both, exclude_seen=mode == "exclude")
            for name, model in models.items():
                if mode == "exclude" and name in LISTS_ONLY_SEEN:
                    continue  # it lists only seen items: nothing to compare
                ranked = rank_users(
                    model,
                    split,
                    k_max,
                    label=f"{name} on valid, repeats {mode}d",
                    executor=executor,
                )
                by_mode[mode][name] = metrics_on(ranked, both.targets[both.users], k_values)
    return choose_policy(configured, n_repeats, by_mode, metric), by_mode


# Families whose every listed item is one the user has: meaningless with seen excluded.
LISTS_ONLY_SEEN: frozenset[str] = REPEAT_MODELS & frozenset({"buy_again"})

__all__ = ["ALL_TARGETS", "LISTS_ONLY_SEEN", "allow_split", "repeat_targets", "resolve_policy"]
