"""Most-popular items: the baseline every other recommender must beat."""

from __future__ import annotations

from pathlib import Path
from typing import Self

import numpy as np

from shelfwise._internal.artifacts import read_array, write_array
from shelfwise.contracts import FloatArray
from shelfwise.errors import ArtifactError, NotReadyError
from shelfwise.retrieval.base import Histories
from shelfwise.retrieval.shared import check_histories, check_train, read_params, write_params

_SCORES_FILE = "item_scores.npy"


class PopularityRecommender:
    """Scores each item by its summed interaction weight in the train matrix.

    score(u, i) = Σ_v train[v, i], the same for every user, so a user's history is
    ignored (seen items are not masked here; the caller masks them).

    Inputs:
        train: CSR (n_users, n_items), non-negative weights (event-type weighted counts).
        histories: CSR (batch, n_items); only the shape is used.

    Relations:
        The non-personalised baseline and the fallback for users without history.
        `ItemKNNRecommender` personalises by item co-occurrence instead.

    References:
        Cremonesi, Koren, Turrin. "Performance of recommender algorithms on top-N
        recommendation tasks." RecSys 2010 (the TopPop baseline).

    Example:
        >>> import scipy.sparse as sp
        >>> model = PopularityRecommender()
        >>> model.fit(sp.csr_matrix([[1.0, 0.0], [1.0, 2.0]]))
        >>> model.score(sp.csr_matrix((1, 2))).tolist()
        [[2.0, 2.0]]
    """

    name: str = "popularity"

    def __init__(self) -> None:
        """Create an unfitted model."""
        self.item_scores: FloatArray | None = None

    @property
    def n_items(self) -> int:
        """Number of items (columns) the model was fitted on."""
        return int(self._fitted_scores().shape[0])

    def fit(self, train: Histories) -> None:
        """Sum the interaction weights of each item.

        Raises:
            EmptyDataError: the matrix has no users, items or interactions.
            DataError: negative or non-finite weights.
        """
        csr = check_train(train, model=self.name)
        sums = np.asarray(csr.sum(axis=0, dtype=np.float64)).ravel()
        self.item_scores = sums.astype(np.float32)

    def score(self, histories: Histories) -> FloatArray:
        """Dense (batch, n_items) float32 scores: the item scores on every row."""
        item_scores = self._fitted_scores()
        batch = check_histories(histories, item_scores.shape[0], model=self.name).shape[0]
        return np.tile(item_scores, (batch, 1))

    def save(self, folder: Path) -> None:
        """Write `item_scores.npy` and `params.json` into `folder`."""
        item_scores = self._fitted_scores()
        folder.mkdir(parents=True, exist_ok=True)
        write_array(folder / _SCORES_FILE, item_scores)
        write_params(folder, self.name, {"n_items": int(item_scores.shape[0])})

    @classmethod
    def load(cls, folder: Path) -> Self:
        """Read a model written by `save`.

        Raises:
            ArtifactError: missing files, another model's folder, or mismatched sizes.
        """
        params = read_params(folder, cls.name)
        try:
            item_scores = read_array(folder / _SCORES_FILE)
        except FileNotFoundError:
            raise ArtifactError(f"{folder / _SCORES_FILE} is missing; retrain the model") from None
        if item_scores.ndim != 1 or item_scores.shape[0] != params.get("n_items"):
            raise ArtifactError(
                f"{folder / _SCORES_FILE} has shape {item_scores.shape}, expected "
                f"({params.get('n_items')},): the folder is damaged, retrain the model"
            )
        model = cls()
        model.item_scores = item_scores.astype(np.float32, copy=False)
        return model

    def _fitted_scores(self) -> FloatArray:
        if self.item_scores is None:
            raise NotReadyError(f"{self.name} model is not fitted; call fit() or load() first")
        return self.item_scores


__all__ = ["PopularityRecommender"]
