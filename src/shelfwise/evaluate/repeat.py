"""Repeat purchases in evaluation: repeat vs explore metrics and the repeat policy.

A target is a *repeat* when the user already has the item in the history the list is
scored from, an *explore* target otherwise. Next-basket studies report the two apart
(Li et al., "A Next Basket Recommendation Reality Check", TOIS 2023), because a model
can look good overall by re-listing what the user buys anyway. For user u with list
L_u (top K), repeat targets T_u^rep and explore targets T_u^exp:

    recall_repeat@K  = mean over users with T_u^rep ≠ ∅ of |L_u ∩ T_u^rep| / |T_u^rep|
    recall_explore@K = mean over users with T_u^exp ≠ ∅ of |L_u ∩ T_u^exp| / |T_u^exp|
    repeat_share@K   = mean over users of |L_u ∩ history_u| / K

The repeat policy (`models.repeat_policy`) says whether lists may hold seen items.
`learn` compares, on validation with repeat targets counted, the best model with seen
items left out against the best with them allowed, and keeps the better
(`choose_policy`); validation without a single repeat target resolves to `exclude`
without scoring anything twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from shelfwise.contracts import IntArray
from shelfwise.evaluate.metrics import ranking_metrics


def repeat_explore_metrics(
    ranked: IntArray, targets: sp.csr_matrix, history: sp.csr_matrix, k_values: list[int]
) -> dict[str, float]:
    """recall_repeat@K, recall_explore@K and repeat_share@K (module docstring).

    Args:
        ranked: (n_users, K_max) item indices, best first, -1 padding.
        targets: CSR (n_users, n_items) of targets, repeats included, same row order.
        history: CSR (n_users, n_items) the lists were scored from (positive = seen).

    Example:
        >>> import numpy as np, scipy.sparse as sp
        >>> ranked = np.array([[0, 2, 3]])
        >>> targets = sp.csr_matrix([[1.0, 1.0, 1.0, 0.0]])
        >>> history = sp.csr_matrix([[1.0, 1.0, 0.0, 0.0]])
        >>> repeat_explore_metrics(ranked, targets, history, [2])
        {'recall_repeat@2': 0.5, 'recall_explore@2': 1.0, 'repeat_share@2': 0.5}
    """
    seen = sp.csr_matrix(history > 0, dtype=np.float32)
    truth = sp.csr_matrix(targets > 0, dtype=np.float32)
    repeat = sp.csr_matrix(truth.multiply(seen))
    explore = sp.csr_matrix(truth - repeat)
    explore.eliminate_zeros()
    result: dict[str, float] = {}
    for k in k_values:
        top = ranked[:, :k]
        listed = _indicator(top, seen.shape)
        for label, part in (("repeat", repeat), ("explore", explore)):
            sizes = part.getnnz(axis=1)
            users = sizes > 0
            hits = np.asarray(listed.multiply(part).sum(axis=1)).ravel()
            value = float((hits[users] / sizes[users]).mean()) if users.any() else 0.0
            result[f"recall_{label}@{k}"] = value
        in_history = np.asarray(listed.multiply(seen).sum(axis=1)).ravel()
        result[f"repeat_share@{k}"] = float((in_history / k).mean()) if top.shape[0] else 0.0
    return result


def _indicator(top: IntArray, shape: tuple[int, int]) -> sp.csr_matrix:
    """CSR with 1 at (row, item) for every listed item (-1 padding left out)."""
    rows = np.repeat(np.arange(top.shape[0]), top.shape[1])
    items = top.ravel()
    keep = items >= 0
    return sp.csr_matrix(
        (np.ones(int(keep.sum()), dtype=np.float32), (rows[keep], items[keep])), shape=shape
    )


def count_repeat_targets(targets_all: sp.csr_matrix, history: sp.csr_matrix) -> int:
    """Targets the user already has in `history` (what exclude-seen evaluation drops)."""
    seen = sp.csr_matrix(history > 0, dtype=np.float32)
    return int(sp.csr_matrix(sp.csr_matrix(targets_all > 0).multiply(seen)).nnz)


@dataclass
class PolicyChoice:
    """What the repeat policy resolved to, and the validation numbers behind it."""

    configured: str
    resolved: str
    reason: str
    best: dict[str, dict[str, Any]] = field(default_factory=dict)  # mode -> {model, value}

    def as_report(self) -> dict[str, Any]:
        """The `repeat.policy` entry of metrics.json."""
        return {
            "configured": self.configured,
            "resolved": self.resolved,
            "reason": self.reason,
            "best": self.best,
        }


def choose_policy(
    configured: str,
    valid_repeat_targets: int,
    by_mode: dict[str, dict[str, dict[str, float]]],
    metric: str,
) -> PolicyChoice:
    """Resolve the repeat policy from validation metrics with repeat targets counted.

    Args:
        configured: "exclude", "allow" or "learn".
        valid_repeat_targets: repeat targets in validation (0: nothing to learn from).
        by_mode: "exclude" / "allow" -> model -> validation metrics, both over the same
            targets (repeats included) and users.
        metric: the primary metric.

    Returns:
        `allow` under `learn` only when the best allow-seen model beats the best
        exclude-seen model strictly (ties keep the conservative exclude).
    """
    best: dict[str, dict[str, Any]] = {}
    for mode, models in by_mode.items():
        if models:
            name = max(models, key=lambda n: models[n].get(metric, 0.0))
            best[mode] = {"model": name, metric: models[name].get(metric, 0.0)}
    if configured != "learn":
        return PolicyChoice(configured, configured, "configured", best)
    if valid_repeat_targets == 0:
        return PolicyChoice(configured, "exclude", "no repeat targets in validation", best)
    allow = best.get("allow", {}).get(metric, 0.0)
    exclude = best.get("exclude", {}).get(metric, 0.0)
    if allow > exclude:
        reason = f"allowing repeats wins on valid: {metric} {allow:.4f} vs {exclude:.4f}"
        return PolicyChoice(configured, "allow", reason, best)
    reason = f"excluding seen items is no worse on valid: {metric} {exclude:.4f} vs {allow:.4f}"
    return PolicyChoice(configured, "exclude", reason, best)


def metrics_on(ranked: IntArray, targets: sp.csr_matrix, k_values: list[int]) -> dict[str, float]:
    """Plain ranking metrics of `ranked` against `targets` rows (same user order)."""
    return {
        name: float(value) for name, value in ranking_metrics(ranked, targets, k_values).items()
    }


__all__ = [
    "PolicyChoice",
    "choose_policy",
    "count_repeat_targets",
    "metrics_on",
    "repeat_explore_metrics",
]
