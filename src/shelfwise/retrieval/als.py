"""Implicit-feedback ALS, trained with `implicit`, scored by folding histories in.

Only the item factors are saved, so a bundle does not grow with the user count and any
history, even one that arrived a second ago, is scored the same way: its user vector is
solved at scoring time with numpy alone (`shelfwise.retrieval.fold_in`). `implicit` is
imported inside `fit` only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

import numpy as np

from shelfwise._internal.artifacts import write_array
from shelfwise.contracts import FloatArray
from shelfwise.errors import ConfigError, NotReadyError
from shelfwise.retrieval.base import Histories
from shelfwise.retrieval.factors import (
    FACTORS_FILE,
    check_factor_params,
    check_factor_shape,
    one_blas_thread,
    read_factor_arrays,
)
from shelfwise.retrieval.fold_in import FoldInParts, fold_in_least_squares
from shelfwise.retrieval.shared import check_histories, check_train, read_params, write_params


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
        check_factor_params(self.name, factors, regularization, iterations)
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

    def fit(self, train: Histories) -> None:
        """Factorise the confidence matrix 1 + alpha · train.

        Raises:
            EmptyDataError: the matrix has no users, items or interactions.
            DataError: negative or non-finite weights.
        """
        csr = check_train(train, model=self.name)
        confidence = csr.copy()
        confidence.data = 1.0 + np.float32(self.alpha) * confidence.data
        from implicit.cpu.als import AlternatingLeastSquares

        with one_blas_thread():
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

    def user_vectors(self, histories: Histories) -> np.ndarray[Any, np.dtype[np.float64]]:
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

    def score(self, histories: Histories) -> FloatArray:
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
        write_array(folder / FACTORS_FILE, item_factors)
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
        (item_factors,) = read_factor_arrays(folder, (FACTORS_FILE,))
        check_factor_shape(folder, item_factors, (int(params["n_items"]), int(params["factors"])))
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


__all__ = ["ALSRecommender"]
