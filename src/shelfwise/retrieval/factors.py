"""What ALS and BPR share: file names, parameter checks, reading saved factor arrays,
and the BLAS thread limit while `implicit` fits (functions, not a base class).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Final

import numpy as np

from shelfwise._internal.artifacts import read_array
from shelfwise.errors import ArtifactError, ConfigError

FACTORS_FILE: Final = "item_factors.npy"
BIASES_FILE: Final = "item_biases.npy"


def one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """One BLAS thread while implicit fits: its own threads do the work, and nested
    BLAS threads slow it down (implicit warns about this when it is not set)."""
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    limits: contextlib.AbstractContextManager[Any] = threadpool_limits(1, "blas")
    return limits


def check_factor_params(model: str, factors: int, regularization: float, iterations: int) -> None:
    """Check the parameters ALS and BPR share.

    Raises:
        ConfigError: fewer than one factor or iteration, or a negative regularisation.
    """
    if factors < 1:
        raise ConfigError(f"{model}: factors must be >= 1, got {factors}")
    if not regularization >= 0.0:
        raise ConfigError(f"{model}: regularization must be >= 0, got {regularization}")
    if iterations < 1:
        raise ConfigError(f"{model}: iterations must be >= 1, got {iterations}")


def read_factor_arrays(folder: Path, files: tuple[str, ...]) -> list[np.ndarray[Any, Any]]:
    """The saved `.npy` arrays `files` of a model folder, in order.

    Raises:
        ArtifactError: a file is missing.
    """
    try:
        return [read_array(folder / file) for file in files]
    except FileNotFoundError as exc:
        raise ArtifactError(f"{exc.filename} is missing; retrain the model") from None


def check_factor_shape(
    folder: Path, array: np.ndarray[Any, Any], expected: tuple[int, ...]
) -> None:
    """Check a saved array's shape against what params.json says.

    Raises:
        ArtifactError: another shape (a damaged folder).
    """
    if array.shape != expected:
        raise ArtifactError(
            f"{folder} holds an array of shape {array.shape}, expected {expected}: "
            "the folder is damaged, retrain the model"
        )


__all__ = [
    "BIASES_FILE",
    "FACTORS_FILE",
    "check_factor_params",
    "check_factor_shape",
    "one_blas_thread",
    "read_factor_arrays",
]
