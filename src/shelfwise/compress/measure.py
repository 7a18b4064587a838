"""Size, latency and quality of a model variant, measured the way `evaluate` does.

Quality is the primary metric on the validation split, from
`shelfwise.evaluate.recommend.evaluate_recommender` (the same code, users and
exclusions as the evaluate stage). Latency is the median time to score one user
(histories of one row, as a served request), on the split's first `latency_users`
users; given the uncompressed model, a variant is timed in turn with it, user by user
(`paired_median_ms`), so a change of the machine's load during the stage slows both
alike and their ratio, which the latency budget reads, stays fair. Size is the bytes
of the saved folder; the bytes of its item embedding matrices (ALS / BPR item
factors, GF-CF's singular vectors: `Family.embeddings`) and of each blend component
are reported too.
Batch role only.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable
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
        baseline_latency_ms: the uncompressed model's median, timed in turn with this
            one (None when no baseline was given).
    """

    size_bytes: int
    metric: float
    latency_ms: float
    embedding_bytes: int = 0
    component_bytes: dict[str, int] = field(default_factory=dict)
    baseline_latency_ms: float | None = None


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


def _milliseconds(call: Callable[[int], object], request: int) -> float:
    started = time.perf_counter()
    call(request)
    return (time.perf_counter() - started) * 1000.0


def paired_median_ms(
    first: Callable[[int], object], second: Callable[[int], object], requests: int
) -> tuple[float, float]:
    """Median milliseconds of two ways to answer requests 0..`requests`-1, timed in turn.

    Request i is answered by both, back to back, with the order alternating (first
    goes first on even i), so a change of load or a warm cache favours neither.
    """
    times: tuple[list[float], list[float]] = ([], [])
    for request in range(requests):
        order = (0, 1) if request % 2 == 0 else (1, 0)
        for side in order:
            times[side].append(_milliseconds((first, second)[side], request))
    if not requests:
        return 0.0, 0.0
    return round(statistics.median(times[0]), 4), round(statistics.median(times[1]), 4)


def _one_user_requests(split: EvalSplit, users: int) -> list[UserHistories]:
    """One `UserHistories` per user (a served request), sliced before any clock starts."""
    return [
        UserHistories(
            split.history[int(user) : int(user) + 1], split.sequences.take(np.array([user]))
        )
        for user in split.users[:users]
    ]


def median_latency_ms(model: Recommender, split: EvalSplit, users: int) -> float:
    """Median milliseconds to score one user, over the split's first `users` users."""
    requests = _one_user_requests(split, users)
    times = [_milliseconds(lambda i: model.score(requests[i]), i) for i in range(len(requests))]
    return round(statistics.median(times), 4) if times else 0.0


def paired_latency_ms(
    baseline: Recommender, variant: Recommender, split: EvalSplit, users: int
) -> tuple[float, float]:
    """(baseline, variant) median milliseconds to score one user, timed in turn."""
    requests = _one_user_requests(split, users)
    return paired_median_ms(
        lambda i: baseline.score(requests[i]),
        lambda i: variant.score(requests[i]),
        len(requests),
    )


def measure(
    model: Recommender,
    split: EvalSplit,
    *,
    k_values: list[int],
    primary: str,
    item_popularity: np.ndarray[Any, np.dtype[np.float64]],
    latency_users: int,
    label: str,
    latency_baseline: Recommender | None = None,
) -> Measurement:
    """Size, primary metric on `split` and median one-user latency of `model`.

    With `latency_baseline` (the uncompressed model), both are timed in turn on the
    same users and the baseline's median is returned too.
    """
    metrics, _ = evaluate_recommender(
        model, split, k_values, item_popularity=item_popularity, label=label
    )
    size, embeddings, parts = saved_sizes(model)
    baseline_ms: float | None = None
    if latency_baseline is None:
        latency = median_latency_ms(model, split, latency_users)
    else:
        baseline_ms, latency = paired_latency_ms(latency_baseline, model, split, latency_users)
    return Measurement(
        size_bytes=size,
        metric=float(metrics.get(primary, 0.0)),
        latency_ms=latency,
        embedding_bytes=embeddings,
        component_bytes=parts,
        baseline_latency_ms=baseline_ms,
    )


__all__ = [
    "Measurement",
    "component_bytes",
    "embedding_bytes",
    "folder_bytes",
    "measure",
    "median_latency_ms",
    "paired_latency_ms",
    "paired_median_ms",
    "saved_bytes",
    "saved_sizes",
]
