"""EASE: a closed-form item-item linear autoencoder (Steck 2019)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Self

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from shelfwise._internal.artifacts import read_array, write_array
from shelfwise.contracts import FloatArray, IntArray
from shelfwise.errors import ArtifactError, ConfigError, NotReadyError
from shelfwise.retrieval.base import Histories
from shelfwise.retrieval.shared import check_histories, check_train, read_params, write_params

logger = logging.getLogger(__name__)

# Up to this many items B is solved in float64; above, in float32 (half the memory,
# about twice as fast; rankings on ml-100k and amazon-beauty are unchanged).
FLOAT64_MAX_ITEMS = 8192
_WEIGHTS_FILE = "weights.npy"
_ITEMS_FILE = "items.npy"
FULL = "full"
TOP_ITEMS = "top-items"


def _gram_inverse(
    train: sp.csr_matrix, penalty: np.ndarray[Any, Any], dtype: type[np.floating[Any]]
) -> Any:
    """P = (XᵀX + diag(penalty))⁻¹ through a Cholesky factorisation done in place (LAPACK potrf,
    potri).

    One dense n x n array of `dtype` is alive at a time (both calls overwrite it), so
    the peak is n² x itemsize bytes plus the sparse Gram.
    """
    n_items = train.shape[1]
    gram = (sp.csr_matrix(train, dtype=np.float64).T @ train).tocoo()
    # Fortran order: LAPACK works on it in place (a C-ordered array would be copied).
    dense = np.zeros((n_items, n_items), dtype=dtype, order="F")
    dense[gram.row, gram.col] = gram.data
    del gram
    dense[np.diag_indices(n_items)] += penalty
    potrf, potri = lapack.get_lapack_funcs(("potrf", "potri"), (dense,))
    factor, info = potrf(dense, lower=1, overwrite_a=1, clean=0)
    if info != 0:  # cannot happen for λ > 0 (XᵀX + λI is positive definite)
        raise ArithmeticError(f"ease: Cholesky factorisation failed (LAPACK info {info})")
    inverse, info = potri(factor, lower=1, overwrite_c=1)
    if info != 0:
        raise ArithmeticError(f"ease: inverting the Gram matrix failed (LAPACK info {info})")
    _mirror_lower(inverse)
    # P is symmetric, so its transpose is P itself, C-ordered and without a copy:
    # rows of B = P / -diag(P) are then contiguous, as `histories @ B` reads them.
    return inverse.T


def _mirror_lower(matrix: np.ndarray[Any, Any], block: int = 1024) -> None:
    """Copy the lower triangle onto the upper one, in place, a block of rows at a time.

    LAPACK's potri fills the lower triangle only; blocks keep the scratch memory at
    block x n instead of the n² index arrays `np.triu_indices` would need.
    """
    n = matrix.shape[0]
    for start in range(0, n, block):
        end = min(start + block, n)
        square = matrix[start:end, start:end]
        square[...] = np.tril(square) + np.tril(square, -1).T
        matrix[start:end, end:] = matrix[end:, start:end].T


class EASERecommender:
    """Scores items with EASE's item-item weights B learnt in closed form.

    B minimises ‖X − XB‖²_F + λ‖B‖²_F subject to diag(B) = 0, whose solution is

        P = (XᵀX + λI)⁻¹,   B = I − P · diag(1 / diag(P)),   i.e. B_ij = −P_ij / P_jj,
        B_jj = 0,

    and score(u, ·) = histories[u] @ B. Seen items are not masked here.

    Fitting costs O(n_items³) time and n_items² x 8 bytes: B is solved in float64 up
    to `FLOAT64_MAX_ITEMS` (8192) items and in float32 above (n_items² x 4 bytes, about
    twice as fast); it is stored as float32. Above `max_dense_items` items the model switches to
    the *top-items* variant and logs a warning: EASE on the `max_dense_items` items
    with most interactions (they carry most of them), every other item scores 0 and
    is ignored in histories. The trade-off: tail items are never recommended by this
    model (pair it with item_knn or rp3beta, which are sparse, to cover them), in
    exchange for a bounded fit. `params.json` records the variant (`"full"` or
    `"top-items"`), so bundle manifests show it.

    On RecBole's ml-100k split, λ=250 reproduces RecBole's EASE exactly (NDCG@10
    0.3295) when scored from the train rows, as RecBole does.

    Inputs:
        train: CSR (n_users, n_items), non-negative weights.
        histories: CSR (batch, n_items) in the same column space.

    Relations:
        `ItemKNNRecommender` and `RP3betaRecommender` also score `histories @ W` with an
        item-item W, but from heuristic co-occurrence scores; EASE learns W as a
        regression and is usually the strongest of the three on dense data. Needs
        numpy/scipy only, for fitting and scoring.

    References:
        Steck. "Embarrassingly Shallow Autoencoders for Sparse Data." WWW 2019.

    Example:
        >>> import scipy.sparse as sp
        >>> model = EASERecommender(l2=1.0)
        >>> model.fit(sp.csr_matrix([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]]))
        >>> scores = model.score(sp.csr_matrix([[1.0, 0.0, 0.0]]))
        >>> [round(value, 3) for value in scores[0].tolist()]
        [0.0, 0.5, -0.2]
    """

    name: str = "ease"

    def __init__(
        self, l2: float = 250.0, max_dense_items: int = 10000, dropout: float = 0.0
    ) -> None:
        """Create an unfitted model.

        Args:
            l2: the L2 penalty λ on B; larger smooths towards popularity-free weights.
            max_dense_items: most items fitted exactly; above, the top-items variant.
            dropout: p > 0 gives EDLAE (Steck, NeurIPS 2020): the penalty becomes
                Λ = λI + p/(1−p)·diag(XᵀX) and B_ij = −P_ij·Λ_jj (off-diagonal), the
                closed form of a denoising autoencoder with dropout p. 0 is plain EASE.

        Raises:
            ConfigError: `l2` <= 0, `dropout` outside [0, 1) or `max_dense_items` < 1.
        """
        if not l2 > 0.0:
            raise ConfigError(f"ease: l2 must be > 0, got {l2}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"ease: dropout must be in [0, 1), got {dropout}")
        self.dropout = float(dropout)
        if max_dense_items < 1:
            raise ConfigError(f"ease: max_dense_items must be >= 1, got {max_dense_items}")
        self.l2 = float(l2)
        self.max_dense_items = max_dense_items
        self.weights: FloatArray | None = None
        self.items: IntArray | None = None
        self.n_items_total = 0

    @property
    def variant(self) -> str:
        """`"full"` when every item is in B, `"top-items"` when only the most popular are."""
        weights = self._fitted_weights()
        return FULL if weights.shape[0] == self.n_items_total else TOP_ITEMS

    def fit(self, train: Histories) -> None:
        """Solve for B (on every item, or on the most popular when there are too many).

        Raises:
            EmptyDataError: the matrix has no users, items or interactions.
            DataError: negative or non-finite weights.
        """
        csr = check_train(train, model=self.name)
        n_items = csr.shape[1]
        if n_items > self.max_dense_items:
            counts = np.diff(csr.tocsc().indptr)
            # Stable sort: ties keep the lower item_index; the kept set is then sorted.
            kept = np.sort(np.argsort(-counts, kind="stable")[: self.max_dense_items])
            share = counts[kept].sum() / max(counts.sum(), 1)
            itemsize = 8 if n_items <= FLOAT64_MAX_ITEMS else 4
            logger.warning(
                "ease: %d items need a %.2f GB dense Gram matrix (n² x %d bytes), more than "
                "max_dense_items=%d allows; fitting the approximate top-items variant on "
                "the %d items with most interactions (%.1f%% of them); the other %d items "
                "score 0. Raise max_dense_items for exact EASE.",
                n_items,
                n_items**2 * itemsize / 1e9,
                itemsize,
                self.max_dense_items,
                kept.size,
                100.0 * share,
                n_items - kept.size,
            )
            csr = sp.csr_matrix(csr[:, kept])
        else:
            kept = np.arange(n_items)
        dtype = np.float64 if csr.shape[1] <= FLOAT64_MAX_ITEMS else np.float32
        gram_diagonal = np.asarray(csr.multiply(csr).sum(axis=0), dtype=np.float64).ravel()
        penalty = self.l2 + self.dropout / (1.0 - self.dropout) * gram_diagonal
        inverse = _gram_inverse(csr, penalty, dtype)
        if self.dropout > 0.0:
            inverse *= -penalty[None, :].astype(inverse.dtype)  # EDLAE: column j times −Λ_jj
        else:
            inverse /= -np.diag(inverse).copy()  # in place: column j divided by -P_jj
        np.fill_diagonal(inverse, 0.0)
        self.weights = inverse.astype(np.float32, copy=False)
        del inverse
        self.items = kept.astype(np.int64)
        self.n_items_total = n_items

    def score(self, histories: Histories) -> FloatArray:
        """Dense (batch, n_items) float32 scores `histories @ B` (0 outside B's items)."""
        weights = self._fitted_weights()
        rows = check_histories(histories, self.n_items_total, model=self.name)
        if weights.shape[0] == self.n_items_total:
            return np.asarray(rows @ weights, dtype=np.float32)
        assert self.items is not None  # set together with weights
        scores = np.zeros(rows.shape, dtype=np.float32)
        scores[:, self.items] = rows[:, self.items] @ weights
        return scores

    def save(self, folder: Path) -> None:
        """Write `weights.npy` (B, float32), `items.npy` and `params.json` into `folder`."""
        weights = self._fitted_weights()
        assert self.items is not None  # set together with weights
        folder.mkdir(parents=True, exist_ok=True)
        write_array(folder / _WEIGHTS_FILE, weights)
        write_array(folder / _ITEMS_FILE, self.items)
        write_params(
            folder,
            self.name,
            {
                "l2": self.l2,
                "dropout": self.dropout,
                "max_dense_items": self.max_dense_items,
                "n_items": self.n_items_total,
                "variant": self.variant,
                "fitted_items": int(weights.shape[0]),
            },
        )

    @classmethod
    def load(cls, folder: Path) -> Self:
        """Read a model written by `save`.

        Raises:
            ArtifactError: missing files, another model's folder, or mismatched sizes.
        """
        params = read_params(folder, cls.name)
        try:
            weights = read_array(folder / _WEIGHTS_FILE)
            items = read_array(folder / _ITEMS_FILE)
        except FileNotFoundError as exc:
            raise ArtifactError(f"{exc.filename} is missing; retrain the model") from None
        n_items = int(params["n_items"])
        fitted = items.shape[0] if items.ndim == 1 else -1
        if (
            weights.shape != (fitted, fitted)
            or fitted != params.get("fitted_items")
            or (fitted and not 0 <= int(items.min()) <= int(items.max()) < n_items)
        ):
            raise ArtifactError(
                f"{folder} holds B of shape {weights.shape} for {fitted} item(s) of "
                f"{n_items}: the folder is damaged, retrain the model"
            )
        model = cls(
            l2=float(params["l2"]),
            max_dense_items=int(params["max_dense_items"]),
            dropout=float(params.get("dropout", 0.0)),
        )
        model.weights = weights.astype(np.float32, copy=False)
        model.items = items.astype(np.int64, copy=False)
        model.n_items_total = n_items
        return model

    def _fitted_weights(self) -> FloatArray:
        if self.weights is None:
            raise NotReadyError(f"{self.name} model is not fitted; call fit() or load() first")
        return self.weights


__all__ = ["EASERecommender"]
