"""Fitting the two click-model classifiers (batch role: imports lightgbm and torch)."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np

from shelfwise.contracts import FloatArray
from shelfwise.ranking.features import FEATURE_NAMES
from shelfwise.ranking.model import LightGBMScorer, MLPScorer, Scorer, standardise

LabelArray = np.ndarray[Any, np.dtype[np.int8]]

_THREADS: Final = 2
# Below this many rows LightGBM runs on one thread: a second one saves little there and,
# on a busy machine, OpenMP threads spin-waiting on each other cost 10-30x.
_SINGLE_THREAD_ROWS: Final = 50_000
LIGHTGBM_PARAMS: Final[dict[str, Any]] = {
    "objective": "binary",
    "metric": ["binary_logloss", "auc"],
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "num_threads": _THREADS,
    "deterministic": True,
    "force_row_wise": True,
    "verbose": -1,
}
LIGHTGBM_ROUNDS: Final = 500
LIGHTGBM_PATIENCE: Final = 30
MLP_HIDDEN: Final = (64, 32)
MLP_EPOCHS: Final = 30
MLP_PATIENCE: Final = 4
MLP_BATCH_RANGE: Final = (256, 4096)  # about 100 steps per epoch within these bounds
MLP_LEARNING_RATE: Final = 2e-3


@dataclass(frozen=True)
class Fitted:
    """A fitted classifier and how its training went."""

    scorer: Scorer
    report: dict[str, Any] = field(default_factory=dict)


def standardisation(features: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Column mean and std of the finite values (std 1 where constant or empty)."""
    finite = np.isfinite(features)
    counts = finite.sum(axis=0)
    filled = np.where(finite, features, 0.0).astype(np.float64)
    mean = filled.sum(axis=0) / np.maximum(counts, 1)
    squares = (np.where(finite, features - mean, 0.0) ** 2).sum(axis=0)
    std = np.sqrt(squares / np.maximum(counts, 1))
    # a (nearly) constant column carries no information: leave it unscaled rather
    # than turn a rounding error into a huge input
    std = np.where(std > 1e-3 * np.maximum(np.abs(mean), 1.0), std, 1.0)
    return mean.astype(np.float32), std.astype(np.float32)


def fit_lightgbm(
    train_x: FloatArray,
    train_y: LabelArray,
    holdout_x: FloatArray,
    holdout_y: LabelArray,
    *,
    seed: int,
    feature_names: Sequence[str] = FEATURE_NAMES,
) -> Fitted:
    """LightGBM binary classifier, early-stopped on the held-out users' log loss.

    Seeded and deterministic; 2 threads (1 below `_SINGLE_THREAD_ROWS` training rows).
    `feature_names` name the columns of the matrices (the importance report's keys).

    The booster goes through its text form (what is saved), so the returned scorer
    predicts exactly what a loaded model predicts.
    """
    threads = 1 if train_x.shape[0] < _SINGLE_THREAD_ROWS else _THREADS
    params = {**LIGHTGBM_PARAMS, "seed": seed, "num_threads": threads}
    reloaded, best = _early_stopped(
        params,
        train_x,
        train_y,
        holdout_x,
        holdout_y,
        rounds=LIGHTGBM_ROUNDS,
        feature_names=feature_names,
    )
    gains = reloaded.feature_importance(importance_type="gain")
    total = float(np.sum(gains)) or 1.0
    importance = {
        name: round(float(gain) / total, 4) for name, gain in zip(feature_names, gains, strict=True)
    }
    return Fitted(
        LightGBMScorer(reloaded),
        {
            "best_iteration": best,
            "params": {k: v for k, v in params.items() if k != "metric"},
            "feature_importance": dict(sorted(importance.items(), key=lambda kv: -kv[1])),
        },
    )


def fit_lightgbm_student(
    train_x: FloatArray,
    teacher_train: FloatArray,
    holdout_x: FloatArray,
    teacher_holdout: FloatArray,
    *,
    seed: int,
    num_leaves: int,
    max_trees: int,
    learning_rate: float = 0.1,
) -> Fitted:
    """A smaller LightGBM booster distilled from a teacher's probabilities.

    The soft labels are the teacher's P(click) of the same rows (objective
    `cross_entropy`, which takes labels in [0, 1]); early stopping watches the
    cross-entropy to the teacher on the held-out rows, so no click label is read.
    At most `max_trees` trees of at most `num_leaves` leaves; otherwise the teacher's
    parameters (`LIGHTGBM_PARAMS`), seeded and deterministic.

    Raises:
        ValueError: teacher probabilities outside [0, 1] or not one per row.
    """
    soft_train = np.asarray(teacher_train, dtype=np.float64)
    soft_holdout = np.asarray(teacher_holdout, dtype=np.float64)
    if soft_train.shape != (train_x.shape[0],) or soft_holdout.shape != (holdout_x.shape[0],):
        raise ValueError(
            f"need one teacher probability per row: {soft_train.shape} for {train_x.shape[0]} "
            f"training rows, {soft_holdout.shape} for {holdout_x.shape[0]} held-out rows"
        )
    if not (
        np.all((soft_train >= 0) & (soft_train <= 1))
        and np.all((soft_holdout >= 0) & (soft_holdout <= 1))
    ):
        raise ValueError("teacher probabilities must lie in [0, 1]")
    threads = 1 if train_x.shape[0] < _SINGLE_THREAD_ROWS else _THREADS
    params = {
        **LIGHTGBM_PARAMS,
        "objective": "cross_entropy",
        "metric": ["cross_entropy"],
        "num_leaves": num_leaves,
        "learning_rate": learning_rate,
        "seed": seed,
        "num_threads": threads,
    }
    # the teacher's pairs hold every feature, or the teacher's own columns (a teacher
    # trained on fewer): LightGBM's default names then
    full = train_x.shape[1] == len(FEATURE_NAMES)
    reloaded, best = _early_stopped(
        params,
        train_x,
        soft_train,
        holdout_x,
        soft_holdout,
        rounds=max_trees,
        feature_names=FEATURE_NAMES if full else None,
    )
    return Fitted(
        LightGBMScorer(reloaded),
        {
            "teacher": "soft labels (teacher P(click)), objective cross_entropy",
            "best_iteration": best,
            "params": {k: v for k, v in params.items() if k != "metric"},
        },
    )


def _early_stopped(
    params: dict[str, Any],
    train_x: FloatArray,
    train_y: Any,
    holdout_x: FloatArray,
    holdout_y: Any,
    *,
    rounds: int,
    feature_names: Sequence[str] | None = None,
) -> tuple[Any, int]:
    """A LightGBM booster early-stopped on the held-out rows' first metric, reloaded from
    its text form at the best iteration (what is saved is what predicts); and that
    iteration. Columns are named `feature_names`, or LightGBM's defaults when None (a
    distilled student reads whatever columns its teacher's pairs have)."""
    import lightgbm

    names: list[str] | Literal["auto"] = (
        list(feature_names) if feature_names is not None else "auto"
    )
    train_set = lightgbm.Dataset(train_x, label=train_y, feature_name=names, free_raw_data=True)
    holdout_set = lightgbm.Dataset(holdout_x, label=holdout_y, reference=train_set)
    booster = lightgbm.train(
        params,
        train_set,
        num_boost_round=rounds,
        valid_sets=[holdout_set],
        valid_names=["holdout"],
        callbacks=[
            lightgbm.early_stopping(LIGHTGBM_PATIENCE, first_metric_only=True, verbose=False)
        ],
    )
    best = int(booster.best_iteration) or booster.current_iteration()
    return lightgbm.Booster(model_str=booster.model_to_string(num_iteration=best)), best


@contextlib.contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def fit_mlp(
    train_x: FloatArray,
    train_y: LabelArray,
    holdout_x: FloatArray,
    holdout_y: LabelArray,
    *,
    seed: int,
    feature_names: Sequence[str] = FEATURE_NAMES,
) -> Fitted:
    """A 2-hidden-layer ReLU MLP with a sigmoid output, trained with BCE (Adam).

    Features are standardised with the training rows' mean/std (`standardise`).
    Training stops when the held-out log loss has not improved for `MLP_PATIENCE`
    epochs; the best epoch's weights are kept. `feature_names` is accepted for the
    trainers' common signature (the network does not name its inputs).
    """
    del feature_names
    import torch
    from torch import nn

    mean, std = standardisation(train_x)
    scaled_train = standardise(train_x, mean, std)
    scaled_holdout = standardise(holdout_x, mean, std)
    # one thread: a network this small gains nothing from more, and loses a lot when
    # the machine is busy (threads spin-wait on each other's tiny kernels)
    with _torch_threads(1):
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        sizes = (train_x.shape[1], *MLP_HIDDEN)
        layers: list[nn.Module] = []
        for width_in, width_out in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [nn.Linear(width_in, width_out), nn.ReLU()]
        network = nn.Sequential(*layers, nn.Linear(sizes[-1], 1))
        optimiser = torch.optim.Adam(network.parameters(), lr=MLP_LEARNING_RATE)
        # BCE on the logit: the numerically stable form of sigmoid + BCE
        loss_function = nn.BCEWithLogitsLoss()
        inputs = torch.from_numpy(scaled_train)
        targets = torch.from_numpy(train_y.astype(np.float32))
        holdout_inputs = torch.from_numpy(scaled_holdout)
        holdout_targets = torch.from_numpy(holdout_y.astype(np.float32))
        best_loss, best_epoch, best_state = float("inf"), 0, network.state_dict()
        history: list[float] = []
        batch_size = int(np.clip(inputs.shape[0] // 100, *MLP_BATCH_RANGE))
        for epoch in range(1, MLP_EPOCHS + 1):
            network.train()
            order = torch.randperm(inputs.shape[0], generator=generator)
            for start in range(0, inputs.shape[0], batch_size):
                batch = order[start : start + batch_size]
                optimiser.zero_grad()
                loss = loss_function(network(inputs[batch]).squeeze(1), targets[batch])
                loss.backward()
                optimiser.step()
            network.eval()
            with torch.no_grad():
                holdout_loss = float(
                    loss_function(network(holdout_inputs).squeeze(1), holdout_targets)
                )
            history.append(round(holdout_loss, 5))
            if holdout_loss < best_loss - 1e-5:
                best_loss, best_epoch = holdout_loss, epoch
                best_state = {k: v.detach().clone() for k, v in network.state_dict().items()}
            elif epoch - best_epoch >= MLP_PATIENCE:
                break
        network.load_state_dict(best_state)
        linear = [module for module in network if isinstance(module, nn.Linear)]
        weights = tuple(
            (
                layer.weight.detach().numpy().astype(np.float32),
                layer.bias.detach().numpy().astype(np.float32),
            )
            for layer in linear
        )
    scorer = _through_safetensors(MLPScorer(weights=weights, mean=mean, std=std))
    return Fitted(
        scorer,
        {
            "hidden": list(MLP_HIDDEN),
            "best_epoch": best_epoch,
            "epochs": len(history),
            "holdout_loss_per_epoch": history,
            "batch_size": batch_size,
            "learning_rate": MLP_LEARNING_RATE,
        },
    )


def _through_safetensors(scorer: MLPScorer) -> MLPScorer:
    """The scorer as saved and loaded again, so evaluation sees the served weights."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        scorer.save(folder)
        return MLPScorer.load(folder, mean=scorer.mean, std=scorer.std)
