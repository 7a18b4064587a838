"""Size, latency and quality of a model variant, measured the way `evaluate` does.

Quality is the primary metric on the validation split, from
`shelfwise.evaluate.recommend.evaluate_recommender` (the same code, users and
exclusions as the evaluate stage). Latency is the median time to score one user
(histories of one row, as a served request). Size is the bytes of the saved folder.
Batch role only.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shelfwise.evaluate.recommend import EvalSplit, evaluate_recommender
from shelfwise.retrieval.base import Recommender, SequentialRecommender, score_users

Model = Recommender | SequentialRecommender


@dataclass(frozen=True)
class Measurement:
    """What one variant costs and how good it is.

    Attributes:
        size_bytes: bytes of the saved model folder.
        metric: the primary metric on the validation split.
        latency_ms: median milliseconds to score one user.
    """

    size_bytes: int
    metric: float
    latency_ms: float


def folder_bytes(folder: Path) -> int:
    """Total bytes of the regular files under `folder`."""
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def saved_bytes(model: Model) -> int:
    """Bytes `model.save` writes (into a temporary folder)."""
    with tempfile.TemporaryDirectory(prefix="shelfwise-compress-") as tmp:
        model.save(Path(tmp) / "model")
        return folder_bytes(Path(tmp) / "model")


def median_latency_ms(model: Model, split: EvalSplit, users: int) -> float:
    """Median milliseconds to score one user, over the split's first `users` users."""
    sample = split.users[:users]
    sequential = isinstance(model, SequentialRecommender)
    times: list[float] = []
    for user in sample:
        rows = split.history[int(user) : int(user) + 1]
        sequences = split.sequences.take(np.array([user])) if sequential else None
        started = time.perf_counter()
        score_users(model, rows, sequences)
        times.append((time.perf_counter() - started) * 1000.0)
    return round(statistics.median(times), 4) if times else 0.0


def measure(
    model: Model,
    split: EvalSplit,
    *,
    k_values: list[int],
    primary: str,
    item_popularity: np.ndarray[Any, np.dtype[np.float64]],
    latency_users: int,
    label: str,
) -> Measurement:
    """Size, primary metric on `split` and median one-user latency of `model`."""
    metrics, _ = evaluate_recommender(
        model, split, k_values, item_popularity=item_popularity, label=label
    )
    return Measurement(
        size_bytes=saved_bytes(model),
        metric=float(metrics.get(primary, 0.0)),
        latency_ms=median_latency_ms(model, split, latency_users),
    )


__all__ = ["Measurement", "folder_bytes", "measure", "median_latency_ms", "saved_bytes"]
