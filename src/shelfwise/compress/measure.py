"""Size, latency and quality of a model variant, measured the way `evaluate` does.

Quality is the primary metric on the validation split, from
`shelfwise.evaluate.recommend.evaluate_recommender` (the same code, users and
exclusions as the evaluate stage). Latency is the median time to score one user
(histories of one row, as a served request). Size is the bytes of the saved folder;
the bytes of its item embedding matrices (ALS / BPR item factors, GF-CF's singular
vectors: `Family.embeddings`) and of each blend component are reported too.
Batch role only.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shelfwise.compress.models import FAMILIES, KIND
from shelfwise.evaluate.recommend import EvalSplit, evaluate_recommender
from shelfwise.retrieval.base import Recommender, UserHistories


@dataclass(frozen=True)
class Measurement:
    """What one variant costs and how good it is.

    Attributes:
        size_bytes: bytes of the saved model folder.
        metric: the primary metric on the validation split.
        latency_ms: median milliseconds to score one user.
        embedding_bytes: bytes of the saved item embedding matrices (0: none).
        component_bytes: a blend's bytes per component folder (empty otherwise).
    """

    size_bytes: int
    metric: float
    latency_ms: float
    embedding_bytes: int = 0
    component_bytes: dict[str, int] = field(default_factory=dict)


def folder_bytes(folder: Path) -> int:
    """Total bytes of the regular files under `folder`."""
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def embedding_bytes(folder: Path) -> int:
    """Bytes of the item embedding matrices saved anywhere under `folder`.

    A model folder of a family with embeddings (`Family.embeddings`) counts its
    factor file; a compressed one counts that array's codes and scales.
    """
    total = 0
    for params_path in sorted(folder.rglob("params.json")):
        model_folder = params_path.parent
        try:
            params = json.loads(params_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        name = params.get("name") if isinstance(params, dict) else None
        if name == KIND and params.get("base") in FAMILIES:
            arrays = model_folder / "arrays"
            for attribute in FAMILIES[params["base"]].embeddings:
                files = [arrays / f"{attribute}.npy", *arrays.glob(f"{attribute}.*.npy")]
                total += sum(path.stat().st_size for path in files if path.is_file())
        elif name in FAMILIES:
            for file_name in FAMILIES[name].embeddings.values():
                path = model_folder / file_name
                total += path.stat().st_size if path.is_file() else 0
    return total


def component_bytes(folder: Path) -> dict[str, int]:
    """A saved blend's bytes per component (an empty dict for a single model)."""
    components = folder / "components"
    if not components.is_dir():
        return {}
    return {part.name: folder_bytes(part) for part in sorted(components.iterdir()) if part.is_dir()}


def saved_sizes(model: Recommender) -> tuple[int, int, dict[str, int]]:
    """(total bytes, embedding bytes, bytes per blend component) that `model.save` writes."""
    with tempfile.TemporaryDirectory(prefix="shelfwise-compress-") as tmp:
        folder = Path(tmp) / "model"
        model.save(folder)
        return folder_bytes(folder), embedding_bytes(folder), component_bytes(folder)


def saved_bytes(model: Recommender) -> int:
    """Bytes `model.save` writes (into a temporary folder)."""
    return saved_sizes(model)[0]


def median_latency_ms(model: Recommender, split: EvalSplit, users: int) -> float:
    """Median milliseconds to score one user, over the split's first `users` users."""
    sample = split.users[:users]
    times: list[float] = []
    for user in sample:
        # one user's history, its order sliced before the clock starts
        one = UserHistories(
            split.history[int(user) : int(user) + 1], split.sequences.take(np.array([user]))
        )
        started = time.perf_counter()
        model.score(one)
        times.append((time.perf_counter() - started) * 1000.0)
    return round(statistics.median(times), 4) if times else 0.0


def measure(
    model: Recommender,
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
    size, embeddings, parts = saved_sizes(model)
    return Measurement(
        size_bytes=size,
        metric=float(metrics.get(primary, 0.0)),
        latency_ms=median_latency_ms(model, split, latency_users),
        embedding_bytes=embeddings,
        component_bytes=parts,
    )


__all__ = [
    "Measurement",
    "component_bytes",
    "embedding_bytes",
    "folder_bytes",
    "measure",
    "median_latency_ms",
    "saved_bytes",
    "saved_sizes",
]
