"""TIFU-KNN: time-decayed personal item vectors, blended with the nearest users' vectors.

Hu et al. (SIGIR 2020) found this simple model beats the neural next-basket models of
its time, because it captures repeat purchases (the user's own decayed item
frequencies) and a little exploration (the neighbours'). Written here because no
installable library ships it; the formula is short (below) and tested against a direct
computation of the paper's.

A user's history b_1 … b_n (oldest first; each event a one-hot "basket" over items,
since `UserHistories` carries the order but not the basket boundaries) is cut into
groups of `group_size` events from the newest backwards (the oldest group may be
shorter). With r_b the within-group and r_g the across-group decay:

    group g with events e_1 … e_m:  v_g = (1 / m) Σ_j r_b ** (m − j) · b_{e_j}
    user with groups g_1 … g_k:      u   = (1 / k) Σ_i r_g ** (k − i) · v_{g_i}
    score:                           p_u = α · u + (1 − α) · mean of the `neighbours`
                                           training users' vectors most cosine-similar to u
                                           (the mean divides by `neighbours` even when
                                           fewer users share an item with u)

Training users' vectors are kept (sparse) for the neighbour search; the scored user may
be among their own neighbours (an evaluated or served user is a training user).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, Self

import numpy as np
import scipy.sparse as sp

from shelfwise._internal.artifacts import read_csr, write_csr
from shelfwise._internal.sequences import Sequences
from shelfwise.contracts import FloatArray
from shelfwise.errors import ArtifactError, NotReadyError
from shelfwise.retrieval.base import Histories
from shelfwise.retrieval.shared import check_ordered, check_train, read_params, write_params
from shelfwise.retrieval.sparse import keep_top_per_row

_VECTORS_FILE = "user_vectors.npz"
# Users whose neighbours are searched at once: the similarity block is sparse
# (chunk, n_train_users), holding the training users that share an item with each.
_CHUNK: Final = 256


def user_vectors(
    sequences: Sequences, n_items: int, *, group_size: int, within_decay: float, across_decay: float
) -> sp.csr_matrix:
    """CSR (n_users, n_items) of TIFU user vectors u (see the module docstring)."""
    lengths = sequences.lengths()
    total = int(sequences.items.size)
    if total == 0:
        return sp.csr_matrix((sequences.n_users, n_items), dtype=np.float32)
    users = np.repeat(np.arange(sequences.n_users), lengths)
    ends = np.repeat(sequences.indptr[1:], lengths)
    age = ends - 1 - np.arange(total)  # 0 = newest event
    group_from_end = age // group_size  # 0 = newest group
    user_length = np.repeat(lengths, lengths)
    n_groups = (user_length + group_size - 1) // group_size
    # the oldest group holds what is left over; every other group holds group_size
    oldest = group_from_end == n_groups - 1
    group_length = np.where(oldest, user_length - (n_groups - 1) * group_size, group_size)
    position_from_end = age % group_size  # m - j
    weight = (
        np.power(float(within_decay), position_from_end)
        / group_length
        * np.power(float(across_decay), group_from_end)
        / n_groups
    )
    vectors = sp.csr_matrix(
        (weight.astype(np.float64), (users, sequences.items)),
        shape=(sequences.n_users, n_items),
    )
    vectors.sum_duplicates()
    return vectors.astype(np.float32)


def _unit_rows(vectors: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(vectors.multiply(vectors).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / norms) @ vectors, dtype=np.float32)


class TIFUKNNRecommender:
    """Temporal item frequency user vectors plus nearest-user smoothing (module docstring).

    Inputs:
        train: `UserHistories` with sequences (each training user's items, oldest first).
        histories: `UserHistories` with sequences.

    Relations:
        A `SequentialRecommender`. `BuyAgainRecommender` is its α = 1 limit with a
        single decay; `UserKNNRecommender` is a neighbour model over undecayed rows
        that never scores the user's own items above the neighbours'.

    References:
        Hu, Li, et al. "Modeling Personalized Item Frequency Information for
        Next-basket Recommendation." SIGIR 2020.

    Example:
        >>> from shelfwise.retrieval.base import UserHistories
        >>> rows = sp.csr_matrix([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
        >>> train = UserHistories(rows, Sequences.from_rows([[0, 1], [1, 2]]))
        >>> model = TIFUKNNRecommender(group_size=2, neighbours=1, alpha=1.0)
        >>> model.fit(train)
        >>> model.score(train).shape
        (2, 3)
    """

    name: str = "tifu_knn"

    def __init__(
        self,
        group_size: int = 7,
        within_decay: float = 0.9,
        across_decay: float = 0.7,
        neighbours: int = 100,
        alpha: float = 0.7,
    ) -> None:
        """Create an unfitted model.

        Args:
            group_size: events per group (the paper's baskets per group, m).
            within_decay: r_b in (0, 1], weight kept per later event in a group.
            across_decay: r_g in (0, 1], weight kept per later group.
            neighbours: nearest training users averaged (k).
            alpha: weight of the user's own vector against the neighbours' mean.
        """
        if group_size < 1 or neighbours < 1:
            raise ValueError(
                f"group_size and neighbours must be >= 1, got {group_size} and {neighbours}"
            )
        for label, value in (("within_decay", within_decay), ("across_decay", across_decay)):
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{label} must be in (0, 1], got {value}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.group_size = int(group_size)
        self.within_decay = float(within_decay)
        self.across_decay = float(across_decay)
        self.neighbours = int(neighbours)
        self.alpha = float(alpha)
        self.train_vectors: sp.csr_matrix | None = None
        # the unit rows transposed, as CSR (items x users), kept once: `block @ unit.T`
        # would convert the whole transpose on every call (seconds per request at
        # 1.8M users x 600k items), where a CSR transpose touches only the block's items
        self._unit_t: sp.csr_matrix | None = None

    def _vectors(self, sequences: Sequences, n_items: int) -> sp.csr_matrix:
        return user_vectors(
            sequences,
            n_items,
            group_size=self.group_size,
            within_decay=self.within_decay,
            across_decay=self.across_decay,
        )

    def fit(self, train: Histories) -> None:
        """Build every training user's vector.

        Raises:
            EmptyDataError: the matrix has no users, items or interactions.
            DataError: negative or non-finite weights, or no sequences.
        """
        n_items = int(check_train(train, model=self.name).shape[1])
        self.fit_sequences(check_ordered(train, n_items, model=self.name), n_items)

    def fit_sequences(self, sequences: Sequences, n_items: int) -> None:
        """Build every training user's vector from bare sequences."""
        self.train_vectors = self._vectors(sequences, n_items)
        self._unit_t = None

    def score(self, histories: Histories) -> FloatArray:
        """Dense (batch, n_items) float32 scores p_u.

        Raises:
            DataError: no sequences, or another item count than the fit's.
        """
        train = self._fitted()
        return self.score_sequences(check_ordered(histories, train.shape[1], model=self.name))

    def score_sequences(self, sequences: Sequences) -> FloatArray:
        """Dense (batch, n_items) float32 scores p_u from bare sequences."""
        train = self._fitted()
        own = self._vectors(sequences, train.shape[1])
        scores = np.zeros(own.shape, dtype=np.float32)
        k = min(self.neighbours, train.shape[0])
        for start in range(0, own.shape[0], _CHUNK):
            block = own[start : start + _CHUNK]
            mixed = sp.csr_matrix(block * np.float32(self.alpha))
            if self.alpha < 1.0 and k > 0:
                # the k most similar training users among those sharing an item; users
                # with no shared item (similarity 0) are never neighbours, so the
                # dense (block x n_train_users) table is never built
                similarity = sp.csr_matrix(_unit_rows(block) @ self._neighbour_index())
                pick = keep_top_per_row(similarity, k)
                pick.data[:] = (1.0 - self.alpha) / k
                mixed = sp.csr_matrix(mixed + pick @ train, dtype=np.float32)
            # summed sparse, made dense once, straight into the result's rows
            mixed.toarray(out=scores[start : start + _CHUNK])
        return scores

    def save(self, folder: Path) -> None:
        """Write the training vectors and `params.json` into `folder`."""
        train = self._fitted()
        folder.mkdir(parents=True, exist_ok=True)
        write_csr(folder / _VECTORS_FILE, train)
        write_params(
            folder,
            self.name,
            {
                "group_size": self.group_size,
                "within_decay": self.within_decay,
                "across_decay": self.across_decay,
                "neighbours": self.neighbours,
                "alpha": self.alpha,
                "n_items": int(train.shape[1]),
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
            vectors = read_csr(folder / _VECTORS_FILE)
        except FileNotFoundError:
            raise ArtifactError(f"{folder / _VECTORS_FILE} is missing; retrain the model") from None
        if vectors.shape[1] != params.get("n_items"):
            raise ArtifactError(
                f"{folder / _VECTORS_FILE} has {vectors.shape[1]} items, params.json says "
                f"{params.get('n_items')}: the folder is damaged, retrain the model"
            )
        model = cls(
            group_size=int(params["group_size"]),
            within_decay=float(params["within_decay"]),
            across_decay=float(params["across_decay"]),
            neighbours=int(params["neighbours"]),
            alpha=float(params["alpha"]),
        )
        model.train_vectors = sp.csr_matrix(vectors, dtype=np.float32)
        if model.alpha < 1.0:  # built now, so a server's first request does not pay for it
            model._neighbour_index()  # (2.7 s at 1.8M users x 600k items)
        return model

    def _neighbour_index(self) -> sp.csr_matrix:
        """The training users' unit rows transposed (items x users), built once."""
        if self._unit_t is None:
            self._unit_t = sp.csr_matrix(_unit_rows(self._fitted()).T)
        return self._unit_t

    def _fitted(self) -> sp.csr_matrix:
        if self.train_vectors is None:
            raise NotReadyError(f"{self.name} model is not fitted; call fit() or load() first")
        return self.train_vectors


__all__ = ["TIFUKNNRecommender", "user_vectors"]
