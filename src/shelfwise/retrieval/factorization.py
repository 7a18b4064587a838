"""Matrix factorisation: implicit-feedback ALS and BPR, trained with `implicit`.

Only the user-independent part is saved (item factors, plus BPR's item biases), so a
bundle does not grow with the user count and any history, even one that arrived a
second ago, is scored the same way: its user vector is folded in at scoring time with
numpy alone. `implicit` is imported inside `fit` only.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from shelfwise._internal.artifacts import read_array, write_array
from shelfwise.errors import ArtifactError, ConfigError, NotReadyError
from shelfwise.retrieval.base import FloatArray
from shelfwise.retrieval.shared import check_histories, check_train, read_params, write_params

_FACTORS_FILE = "item_factors.npy"
_BIASES_FILE = "item_biases.npy"
_SOLVE_BATCH = 1024  # users whose normal equations are solved in one batched call


def _one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """One BLAS thread while implicit fits: its own threads do the work, and nested
    BLAS threads slow it down (implicit warns about this when it is not set)."""
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    limits: contextlib.AbstractContextManager[Any] = threadpool_limits(1, "blas")
    return limits


@functools.cache
def _blas_controller() -> Any:
    """threadpoolctl's handle on the loaded BLAS, found once (a fresh look-up costs
    0.3 ms on an idle machine, several on a busy one); None without threadpoolctl."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # scoring needs numpy only; BLAS then keeps its threads
        return None
    return ThreadpoolController()


def _single_threaded_blas() -> contextlib.AbstractContextManager[Any]:
    controller = _blas_controller()
    if controller is None:
        return contextlib.nullcontext()
    limits: contextlib.AbstractContextManager[Any] = controller.limit(limits=1, user_api="blas")
    return limits


def _check_common(model: str, factors: int, regularization: float, iterations: int) -> None:
    if factors < 1:
        raise ConfigError(f"{model}: factors must be >= 1, got {factors}")
    if not regularization >= 0.0:
        raise ConfigError(f"{model}: regularization must be >= 0, got {regularization}")
    if iterations < 1:
        raise ConfigError(f"{model}: iterations must be >= 1, got {iterations}")


def _read_factors(folder: Path, files: tuple[str, ...]) -> list[np.ndarray[Any, Any]]:
    try:
        return [read_array(folder / file) for file in files]
    except FileNotFoundError as exc:
        raise ArtifactError(f"{exc.filename} is missing; retrain the model") from None


def _check_shape(folder: Path, array: np.ndarray[Any, Any], expected: tuple[int, ...]) -> None:
    if array.shape != expected:
        raise ArtifactError(
            f"{folder} holds an array of shape {array.shape}, expected {expected}: "
            "the folder is damaged, retrain the model"
        )


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
    with _single_threaded_blas() if batch else contextlib.nullcontext():
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


class ALSRecommender:
    """Implicit-feedback matrix factorisation by alternating least squares.

    Minimises Σ_u,i c_ui (p_ui − x_uᵀ y_i)² + λ(‖X‖² + ‖Y‖²) over all user-item pairs,
    with p_ui = 1 where the user interacted (0 elsewhere) and confidence
    c_ui = 1 + alpha · w_ui (1 elsewhere); event-type weights w are already in the
    matrix. implicit 0.7 treats the stored value itself as c_ui (its solver adds
    (c − 1) y yᵀ), so `fit` passes 1 + alpha · w with implicit's own alpha at 1.

    score(u, ·) = x_u Yᵀ where x_u is solved from the history row in closed form
    (`fold_in_least_squares`): train users get nearly, not exactly, implicit's own
    user factors (implicit's conjugate-gradient steps are approximate and its last
    user step predates the last item step). Fitting limits BLAS to one thread, as
    implicit recommends, and so does the fold-in (many small solves); results are
    deterministic for a given `random_state`.

    Inputs:
        train: CSR (n_users, n_items), non-negative weights.
        histories: CSR (batch, n_items) in the same column space.

    Relations:
        `BPRRecommender` factorises with a pairwise ranking loss instead. `EASERecommender`
        is the full-rank, closed-form counterpart on item-item weights. Scoring and
        loading need numpy only.

    References:
        Hu, Koren, Volinsky. "Collaborative Filtering for Implicit Feedback Datasets."
        ICDM 2008.
        Takács, Pilászy, Tikk. "Applications of the conjugate gradient method for
        implicit feedback collaborative filtering." RecSys 2011.

    Example:
        >>> import scipy.sparse as sp
        >>> model = ALSRecommender(factors=2, iterations=3)
        >>> model.fit(sp.csr_matrix([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]]))
        >>> model.score(sp.csr_matrix([[1.0, 0.0, 0.0]])).shape
        (1, 3)
    """

    name: str = "als"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 10.0,
        alpha: float = 1.0,
        iterations: int = 15,
        random_state: int = 42,
        *,
        num_threads: int = 0,
    ) -> None:
        """Create an unfitted model.

        Args:
            factors: latent dimensions.
            regularization: L2 penalty λ on user and item factors, not scaled by
                counts (implicit's convention). implicit's default 0.01 overfits:
                on ml-100k valid NDCG@10 is 0.211 at 0.01, 0.235 at 10, 0.261 at 20,
                0.220 at 40; on amazon-beauty 0.029 from 0.01 to 10, 0.017 at 40.
            alpha: confidence per unit of weight, c = 1 + alpha · w.
            iterations: ALS sweeps (each solves all users, then all items).
            random_state: seed of the initial factors.
            num_threads: implicit's threads; 0 uses every core (results do not
                depend on it: each user's and item's solve is independent).

        Raises:
            ConfigError: a value outside its range.
        """
        _check_common(self.name, factors, regularization, iterations)
        if not alpha >= 0.0:
            raise ConfigError(f"als: alpha must be >= 0, got {alpha}")
        if num_threads < 0:
            raise ConfigError(f"als: num_threads must be >= 0, got {num_threads}")
        self.factors = factors
        self.regularization = float(regularization)
        self.alpha = float(alpha)
        self.iterations = iterations
        self.random_state = random_state
        self.num_threads = num_threads
        self.item_factors: FloatArray | None = None
        self.user_factors: FloatArray | None = None  # train users; not saved
        self._fold_in: tuple[FloatArray, float, FoldInParts] | None = None

    def fit(self, train: sp.csr_matrix) -> None:
        """Factorise the confidence matrix 1 + alpha · train.

        Raises:
            EmptyDataError: the matrix has no users, items or interactions.
            DataError: negative or non-finite weights.
        """
        csr = check_train(train, model=self.name)
        confidence = csr.copy()
        confidence.data = 1.0 + np.float32(self.alpha) * confidence.data
        from implicit.cpu.als import AlternatingLeastSquares

        with _one_blas_thread():
            als = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=1.0,
                iterations=self.iterations,
                random_state=self.random_state,
                num_threads=self.num_threads,
            )
            als.fit(confidence, show_progress=False)
        self.item_factors = np.asarray(als.item_factors, dtype=np.float32)
        self.user_factors = np.asarray(als.user_factors, dtype=np.float32)

    def user_vectors(self, histories: sp.csr_matrix) -> np.ndarray[Any, np.dtype[np.float64]]:
        """(batch, factors) float64 user vectors solved from the history rows."""
        item_factors = self._fitted_factors()
        rows = check_histories(histories, item_factors.shape[0], model=self.name)
        return fold_in_least_squares(
            rows,
            item_factors,
            regularization=self.regularization,
            alpha=self.alpha,
            parts=self._parts(),
        )

    def score(self, histories: sp.csr_matrix) -> FloatArray:
        """Dense (batch, n_items) float32 scores x_u Yᵀ."""
        users = self.user_vectors(histories)
        # float64 products: a row's scores do not depend on the rest of the batch.
        scores = users @ self._parts().factors_t
        return scores.astype(np.float32)

    def _parts(self) -> FoldInParts:
        """The fold-in constants of the current factors, computed once per factor array."""
        factors = self._fitted_factors()
        cached = self._fold_in
        if cached is None or cached[0] is not factors or cached[1] != self.regularization:
            cached = (factors, self.regularization, FoldInParts.of(factors, self.regularization))
            self._fold_in = cached
        return cached[2]

    def save(self, folder: Path) -> None:
        """Write `item_factors.npy` and `params.json` into `folder`."""
        item_factors = self._fitted_factors()
        folder.mkdir(parents=True, exist_ok=True)
        write_array(folder / _FACTORS_FILE, item_factors)
        write_params(
            folder,
            self.name,
            {
                "factors": self.factors,
                "regularization": self.regularization,
                "alpha": self.alpha,
                "iterations": self.iterations,
                "random_state": self.random_state,
                "num_threads": self.num_threads,
                "n_items": int(item_factors.shape[0]),
            },
        )

    @classmethod
    def load(cls, folder: Path) -> Self:
        """Read a model written by `save`.

        Raises:
            ArtifactError: missing files, another model's folder, or mismatched sizes.
        """
        params = read_params(folder, cls.name)
        (item_factors,) = _read_factors(folder, (_FACTORS_FILE,))
        _check_shape(folder, item_factors, (int(params["n_items"]), int(params["factors"])))
        model = cls(
            factors=int(params["factors"]),
            regularization=float(params["regularization"]),
            alpha=float(params["alpha"]),
            iterations=int(params["iterations"]),
            random_state=int(params["random_state"]),
            num_threads=int(params["num_threads"]),
        )
        model.item_factors = item_factors.astype(np.float32, copy=False)
        return model

    def _fitted_factors(self) -> FloatArray:
        if self.item_factors is None:
            raise NotReadyError(f"{self.name} model is not fitted; call fit() or load() first")
        return self.item_factors


class BPRRecommender:
    """Matrix factorisation by Bayesian Personalised Ranking (pairwise SGD).

    Learns item vectors y_i and item biases b_i so that, for each user, items they
    interacted with outrank sampled others: maximise Σ ln σ(x_uᵀ(y_i − y_j) + b_i −
    b_j) − λ‖Θ‖². implicit's BPR ignores the weights' size (any stored entry is a
    positive).

    A history is folded in as the weighted mean of its items' vectors, x_u =
    Σ_i w_ui y_i / Σ_i w_ui, and score(u, j) = x_uᵀ y_j + b_j (an empty history
    scores by the biases alone). This is an approximation, chosen on RecBole's
    ml-100k split (NDCG@10, default parameters, train rows as histories): the mean
    fold-in scores 0.289, implicit's own train user vectors 0.201, and a
    least-squares fold-in against the item vectors 0.155; implicit's user vectors
    are therefore not stored (SGD steps on a new history would only approximate
    them).

    Fitting runs on one thread by default: implicit's multi-threaded SGD is
    Hogwild-style, so only `num_threads=1` is deterministic for a `random_state`.

    Inputs:
        train: CSR (n_users, n_items), non-negative weights (used as 0/1).
        histories: CSR (batch, n_items) in the same column space.

    Relations:
        `ALSRecommender` fits a weighted squared loss and folds users in exactly;
        this optimises ranking directly. Scoring and loading need numpy only.

    References:
        Rendle, Freudenthaler, Gantner, Schmidt-Thieme. "BPR: Bayesian Personalized
        Ranking from Implicit Feedback." UAI 2009.

    Example:
        >>> import scipy.sparse as sp
        >>> model = BPRRecommender(factors=2, iterations=3)
        >>> model.fit(sp.csr_matrix([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]]))
        >>> model.score(sp.csr_matrix([[1.0, 0.0, 0.0]])).shape
        (1, 3)
    """

    name: str = "bpr"

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.01,
        regularization: float = 0.01,
        iterations: int = 100,
        random_state: int = 42,
        *,
        num_threads: int = 1,
    ) -> None:
        """Create an unfitted model.

        Args:
            factors: latent dimensions (the bias is extra).
            learning_rate: SGD step size.
            regularization: L2 penalty λ.
            iterations: epochs over the interactions.
            random_state: seed of the initial factors and of the sampling.
            num_threads: SGD threads; 1 (default) is deterministic, more is faster
                but not reproducible; 0 uses every core.

        Raises:
            ConfigError: a value outside its range.
        """
        _check_common(self.name, factors, regularization, iterations)
        if not learning_rate > 0.0:
            raise ConfigError(f"bpr: learning_rate must be > 0, got {learning_rate}")
        if num_threads < 0:
            raise ConfigError(f"bpr: num_threads must be >= 0, got {num_threads}")
        self.factors = factors
        self.learning_rate = float(learning_rate)
        self.regularization = float(regularization)
        self.iterations = iterations
        self.random_state = random_state
        self.num_threads = num_threads
        self.item_factors: FloatArray | None = None
        self.item_biases: FloatArray | None = None
        self.user_factors: FloatArray | None = None  # train users; not saved

    def fit(self, train: sp.csr_matrix) -> None:
        """Run BPR's SGD on the train matrix.

        Raises:
            EmptyDataError: the matrix has no users, items or interactions.
            DataError: negative or non-finite weights.
        """
        csr = check_train(train, model=self.name)
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        with _one_blas_thread():
            bpr = BayesianPersonalizedRanking(
                factors=self.factors,
                learning_rate=self.learning_rate,
                regularization=self.regularization,
                iterations=self.iterations,
                random_state=self.random_state,
                num_threads=self.num_threads,
            )
            bpr.fit(csr, show_progress=False)
        # implicit appends the bias as the last factor (users hold 1 there).
        factors = np.asarray(bpr.item_factors, dtype=np.float32)
        self.item_factors = np.ascontiguousarray(factors[:, :-1])
        self.item_biases = np.ascontiguousarray(factors[:, -1])
        self.user_factors = np.asarray(bpr.user_factors, dtype=np.float32)[:, :-1]

    def user_vectors(self, histories: sp.csr_matrix) -> np.ndarray[Any, np.dtype[np.float64]]:
        """(batch, factors) float64 weighted mean of each history's item vectors (0 if
        empty)."""
        item_factors, _ = self._fitted()
        rows = check_histories(histories, item_factors.shape[0], model=self.name)
        rows = sp.csr_matrix(rows, dtype=np.float64)
        totals = np.asarray(rows.sum(axis=1)).ravel()
        inverse = np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0)
        means = sp.diags(inverse) @ rows
        return np.asarray(means @ item_factors.astype(np.float64), dtype=np.float64)

    def score(self, histories: sp.csr_matrix) -> FloatArray:
        """Dense (batch, n_items) float32 scores x_uᵀ y_j + b_j."""
        item_factors, item_biases = self._fitted()
        users = self.user_vectors(histories)
        # float64 products: a row's scores do not depend on the rest of the batch.
        scores = users @ item_factors.T.astype(np.float64) + item_biases
        return scores.astype(np.float32)

    def save(self, folder: Path) -> None:
        """Write `item_factors.npy`, `item_biases.npy` and `params.json` into `folder`."""
        item_factors, item_biases = self._fitted()
        folder.mkdir(parents=True, exist_ok=True)
        write_array(folder / _FACTORS_FILE, item_factors)
        write_array(folder / _BIASES_FILE, item_biases)
        write_params(
            folder,
            self.name,
            {
                "factors": self.factors,
                "learning_rate": self.learning_rate,
                "regularization": self.regularization,
                "iterations": self.iterations,
                "random_state": self.random_state,
                "num_threads": self.num_threads,
                "n_items": int(item_factors.shape[0]),
            },
        )

    @classmethod
    def load(cls, folder: Path) -> Self:
        """Read a model written by `save`.

        Raises:
            ArtifactError: missing files, another model's folder, or mismatched sizes.
        """
        params = read_params(folder, cls.name)
        item_factors, item_biases = _read_factors(folder, (_FACTORS_FILE, _BIASES_FILE))
        n_items = int(params["n_items"])
        _check_shape(folder, item_factors, (n_items, int(params["factors"])))
        _check_shape(folder, item_biases, (n_items,))
        model = cls(
            factors=int(params["factors"]),
            learning_rate=float(params["learning_rate"]),
            regularization=float(params["regularization"]),
            iterations=int(params["iterations"]),
            random_state=int(params["random_state"]),
            num_threads=int(params["num_threads"]),
        )
        model.item_factors = item_factors.astype(np.float32, copy=False)
        model.item_biases = item_biases.astype(np.float32, copy=False)
        return model

    def _fitted(self) -> tuple[FloatArray, FloatArray]:
        if self.item_factors is None or self.item_biases is None:
            raise NotReadyError(f"{self.name} model is not fitted; call fit() or load() first")
        return self.item_factors, self.item_biases


__all__ = ["ALSRecommender", "BPRRecommender", "fold_in_least_squares"]
