"""Folding a history into a user vector of implicit ALS, in closed form, with numpy.

A served request is one history row: it is solved with numpy alone. Batches (evaluation,
precomputed lists) solve with one BLAS thread (see `fold_in_least_squares`).
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from shelfwise.contracts import FloatArray

_SOLVE_BATCH = 1024  # users whose normal equations are solved in one batched call


@functools.cache
def _blas_controller() -> Any:
    """threadpoolctl's handle on the loaded BLAS, found once (a fresh look-up costs
    0.3 ms on an idle machine, several on a busy one); None without threadpoolctl."""
    try:
        from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]
    except ImportError:  # scoring needs numpy only; BLAS then keeps its threads
        return None
    return ThreadpoolController()


def single_threaded_blas() -> contextlib.AbstractContextManager[Any]:
    """A context that limits BLAS to one thread (a no-op without threadpoolctl)."""
    controller = _blas_controller()
    if controller is None:
        return contextlib.nullcontext()
    limits: contextlib.AbstractContextManager[Any] = controller.limit(limits=1, user_api="blas")
    return limits


@dataclass(frozen=True)
class FoldInParts:
    """What every fold-in of one model shares: Y in float64 (rows and a contiguous
    transpose for the scores product) and the Gram term YᵀY + λI.

    Computing them costs O(n_items · factors²) (YᵀY over 50k items × 64 factors: most
    of a served ALS request's time), so a model computes them once (`ALSRecommender`).
    """

    factors: np.ndarray[Any, np.dtype[np.float64]]
    factors_t: np.ndarray[Any, np.dtype[np.float64]]
    base: np.ndarray[Any, np.dtype[np.float64]]

    @classmethod
    def of(cls, item_factors: FloatArray, regularization: float) -> FoldInParts:
        """The parts for item factors Y and regularisation λ."""
        factors = np.ascontiguousarray(item_factors, dtype=np.float64)
        base = factors.T @ factors + regularization * np.eye(factors.shape[1])
        return cls(factors, np.ascontiguousarray(factors.T), base)


def fold_in_least_squares(
    histories: sp.csr_matrix,
    item_factors: FloatArray,
    *,
    regularization: float,
    alpha: float,
    parts: FoldInParts | None = None,
) -> np.ndarray[Any, np.dtype[np.float64]]:
    """User vectors of implicit ALS for arbitrary history rows, in closed form.

    With confidence c_ui = 1 + alpha · w_ui on the stored entries (1 elsewhere) and
    preference p_ui = 1 on them (0 elsewhere), Hu et al.'s user step is

        x_u = (YᵀY + λI + Yᵀ(C_u − I)Y)⁻¹ Yᵀ C_u p_u,

    the exact solve implicit's `recalculate_user=True` does. Returns (batch, factors)
    in float64. `parts` (from `FoldInParts.of(item_factors, regularization)`) skips
    recomputing what does not depend on the histories.
    """
    n_factors = item_factors.shape[1]
    if parts is None:
        parts = FoldInParts.of(item_factors, regularization)
    factors, base = parts.factors, parts.base
    users = np.zeros((histories.shape[0], n_factors), dtype=np.float64)
    # One BLAS thread: this loop makes one small product per user and batched
    # factors x factors solves, each too small to split across threads; the threads'
    # hand-offs cost more than they save, by far on a busy machine (943 ml-100k users
    # at 256 factors, 2 cores under load 4: 6.2 s with 2 BLAS threads, 1.4 s with one;
    # 300 users at 512 factors: 38 s against 1.8 s). Batches only: one history (a
    # served request) stays numpy-only. The limit is process-wide while it lasts; the
    # final scores product (`ALSRecommender.score`) keeps every thread.
    batch = histories.shape[0] > 1
    with single_threaded_blas() if batch else contextlib.nullcontext():
        for start in range(0, histories.shape[0], _SOLVE_BATCH):
            chunk = histories[start : start + _SOLVE_BATCH]
            lhs = np.repeat(base[None], chunk.shape[0], axis=0)
            rhs = np.zeros((chunk.shape[0], n_factors))
            for row in range(chunk.shape[0]):
                begin, end = chunk.indptr[row], chunk.indptr[row + 1]
                if begin == end:
                    continue
                rated = factors[chunk.indices[begin:end]]
                confidence = 1.0 + alpha * chunk.data[begin:end].astype(np.float64)
                lhs[row] += rated.T @ (rated * (confidence - 1.0)[:, None])
                rhs[row] = confidence @ rated
            users[start : start + chunk.shape[0]] = np.linalg.solve(lhs, rhs[..., None])[..., 0]
    return users


__all__ = ["FoldInParts", "fold_in_least_squares", "single_threaded_blas"]
