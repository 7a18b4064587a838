"""User-user cosine kNN: score items by what the most similar train users did."""

from __future__ import annotations

from pathlib import Path
from typing import Self

import numpy as np
import scipy.sparse as sp

from shelfwise._internal.artifacts import read_csr, write_csr
from shelfwise.contracts import FloatArray
from shelfwise.errors import ArtifactError, ConfigError, NotReadyError
from shelfwise.retrieval.base import Histories
from shelfwise.retrieval.shared import check_histories, check_train, read_params, write_params
from shelfwise.retrieval.sparse import keep_top_per_row

_USERS_FILE = "train_users.npz"
# History rows scored at once: at most this many (rows x n_train_users) similarities.
_BLOCK_VALUES = 1 << 24


def _l2_normalised(matrix: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1, dtype=np.float64)).ravel())
    inverse = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.csr_matrix(sp.diags(inverse) @ matrix, dtype=np.float32)


class UserKNNRecommender:
    """Scores items by the cosine-weighted interactions of the most similar train users.

    With X̂ the train matrix with L2-normalised rows and ĥ a history row, also
    L2-normalised, sim(h, v) = ĥ · X̂[v]; N(h) holds the `neighbours` train users of
    largest positive similarity and

        score(h, j) = Σ_{v ∈ N(h)} sim(h, v) · X̂[v, j].

    Neighbours' rows enter normalised, so a heavy user counts no more than a light
    one (it scored higher than raw rows on ml-100k). A history equal to a train
    user's row finds that user first (sim 1); it only adds that user's own items,
    which the caller masks.

    The whole normalised train matrix is the model (saved as CSR), and scoring costs
    O(batch x n_users) dense similarities: `fit` refuses more than `max_users` train
    users (ConfigError) rather than build a model too slow to serve.

    Inputs:
        train: CSR (n_users, n_items), non-negative weights.
        histories: CSR (batch, n_items) in the same column space.

    Relations:
        The user-side twin of `ItemKNNRecommender`; adapts to a new history without
        refitting, but its size grows with users, not items. Numpy/scipy only.

    References:
        Herlocker, Konstan, Borchers, Riedl. "An algorithmic framework for performing
        collaborative filtering." SIGIR 1999.
        Resnick, Iacovou, Suchak, Bergstrom, Riedl. "GroupLens: an open architecture
        for collaborative filtering of netnews." CSCW 1994.

    Example:
        >>> import scipy.sparse as sp
        >>> model = UserKNNRecommender(neighbours=1)
        >>> model.fit(sp.csr_matrix([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))
        >>> [round(v, 3) for v in model.score(sp.csr_matrix([[1.0, 0.0, 0.0]]))[0].tolist()]
        [0.5, 0.5, 0.0]
    """

    name: str = "user_knn"

    def __init__(self, neighbours: int = 100, max_users: int = 50000) -> None:
        """Create an unfitted model.

        Args:
            neighbours: most similar train users that score each history.
            max_users: most train users accepted by `fit`.

        Raises:
            ConfigError: `neighbours` or `max_users` < 1.
        """
        if neighbours < 1:
            raise ConfigError(f"user_knn: neighbours must be >= 1, got {neighbours}")
        if max_users < 1:
            raise ConfigError(f"user_knn: max_users must be >= 1, got {max_users}")
        self.neighbours = neighbours
        self.max_users = max_users
        self.users: sp.csr_matrix | None = None
        self._users_t: sp.csr_matrix | None = None

    def fit(self, train: Histories) -> None:
        """Store the train rows, L2-normalised.

        Raises:
            EmptyDataError: the matrix has no users, items or interactions.
            DataError: negative or non-finite weights.
            ConfigError: more train users than `max_users`.
        """
        csr = check_train(train, model=self.name)
        n_users = csr.shape[0]
        if n_users > self.max_users:
            raise ConfigError(
                f"user_knn: the train matrix has {n_users:,} users, more than "
                f"max_users={self.max_users:,}; scoring compares every history with every "
                "train user. Raise models.user_knn.params.max_users if serving can afford "
                "it, or disable user_knn (item_knn, ease and rp3beta scale with items)"
            )
        users = _l2_normalised(csr)
        users.sum_duplicates()
        users.eliminate_zeros()  # users without interactions keep empty rows
        self.users = users
        self._users_t = None

    def score(self, histories: Histories) -> FloatArray:
        """Dense (batch, n_items) float32 scores from each history's nearest train users."""
        users = self._fitted_users()
        rows = _l2_normalised(check_histories(histories, users.shape[1], model=self.name))
        if self._users_t is None:
            self._users_t = sp.csr_matrix(users.T)
        n_users = users.shape[0]
        scores = np.zeros(rows.shape, dtype=np.float32)
        step = max(1, _BLOCK_VALUES // max(n_users, 1))
        for start in range(0, rows.shape[0], step):
            block = rows[start : start + step]
            nearest = keep_top_per_row(sp.csr_matrix(block @ self._users_t), self.neighbours)
            scores[start : start + step] = (nearest @ users).toarray()
        return scores

    def save(self, folder: Path) -> None:
        """Write `train_users.npz` (normalised CSR rows) and `params.json` into `folder`."""
        users = self._fitted_users()
        folder.mkdir(parents=True, exist_ok=True)
        write_csr(folder / _USERS_FILE, users)
        write_params(
            folder,
            self.name,
            {
                "neighbours": self.neighbours,
                "max_users": self.max_users,
                "n_users": int(users.shape[0]),
                "n_items": int(users.shape[1]),
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
            users = read_csr(folder / _USERS_FILE)
        except FileNotFoundError:
            raise ArtifactError(f"{folder / _USERS_FILE} is missing; retrain the model") from None
        expected = (params.get("n_users"), params.get("n_items"))
        if users.shape != expected:
            raise ArtifactError(
                f"{folder / _USERS_FILE} has shape {users.shape}, expected {expected}: "
                "the folder is damaged, retrain the model"
            )
        model = cls(neighbours=int(params["neighbours"]), max_users=int(params["max_users"]))
        model.users = sp.csr_matrix(users, dtype=np.float32)
        return model

    def _fitted_users(self) -> sp.csr_matrix:
        if self.users is None:
            raise NotReadyError(f"{self.name} model is not fitted; call fit() or load() first")
        return self.users


__all__ = ["UserKNNRecommender"]
