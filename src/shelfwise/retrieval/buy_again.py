"""Buy again: the user's own items by exponentially decayed counts and repurchase cycle.

Most of a grocery basket is bought before (70% of last-basket items in the shop issue
15 tried), and "the user's own most-bought items" beat every exploration model there
by a factor of thirty. This is that rule with recency: each past event of an item adds
`decay ** (events since it)`, so an item bought often and lately ranks first.

Written here rather than taken from a library: it is a weighted count over the
ordered history (a dozen numpy lines); no recommender library we could install ships
it behind our protocol.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

import numpy as np

from shelfwise._internal.sequences import Sequences
from shelfwise.contracts import FloatArray
from shelfwise.errors import NotReadyError
from shelfwise.retrieval.base import Histories
from shelfwise.retrieval.shared import check_ordered, check_train, read_params, write_params


def decayed_counts(sequences: Sequences, n_items: int, decay: float) -> FloatArray:
    """Dense (n_users, n_items): Σ over each user's events of `decay ** age`.

    The age of an event is the number of the user's events after it (the newest
    event has age 0), so with `decay` 1 this is the plain count of each item.

    Example:
        >>> from shelfwise._internal.sequences import Sequences
        >>> decayed_counts(Sequences.from_rows([[0, 1, 0]]), 3, 0.5).tolist()
        [[1.25, 0.5, 0.0]]
    """
    scores = np.zeros((sequences.n_users, n_items), dtype=np.float64)
    lengths = sequences.lengths()
    if sequences.items.size == 0:
        return scores.astype(np.float32)
    users = np.repeat(np.arange(sequences.n_users), lengths)
    age = np.repeat(sequences.indptr[1:], lengths) - 1 - np.arange(sequences.items.size)
    np.add.at(scores, (users, sequences.items), np.power(float(decay), age))
    counts: FloatArray = scores.astype(np.float32)
    return counts


def due_scores(sequences: Sequences, n_items: int, width: float) -> FloatArray:
    """Dense (n_users, n_items): how due each item the user bought twice or more is.

    An item's personal cycle is the mean gap between its events in the user's order
    (in events: positions stand in for time, which `UserHistories` does not carry); it
    is due when the events since its last one are near that gap:
    due = exp(-((since / gap - 1) / width)² / 2), 0 for an item bought once.

    Example:
        >>> from shelfwise._internal.sequences import Sequences
        >>> due = due_scores(Sequences.from_rows([[0, 1, 0, 1, 2]]), 3, 0.5)
        >>> [round(float(value), 3) for value in due[0]]  # gaps 2; since 3 and 2
        [0.607, 1.0, 0.0]
    """
    scores = np.zeros((sequences.n_users, n_items), dtype=np.float64)
    lengths = sequences.lengths()
    total = int(sequences.items.size)
    if total == 0:
        return scores.astype(np.float32)
    users = np.repeat(np.arange(sequences.n_users), lengths)
    position = np.arange(total) - np.repeat(sequences.indptr[:-1], lengths)
    keys = users * n_items + sequences.items
    order = np.argsort(keys, kind="stable")  # positions stay increasing within a key
    keys, position = keys[order], position[order]
    unique, first, counts = np.unique(keys, return_index=True, return_counts=True)
    repeated = counts > 1
    unique, first, counts = unique[repeated], first[repeated], counts[repeated]
    last = position[first + counts - 1]
    gap = (last - position[first]) / (counts - 1)
    since = lengths[unique // n_items] - last
    scores[unique // n_items, unique % n_items] = np.exp(
        -0.5 * np.square((since / np.maximum(gap, 1.0) - 1.0) / width)
    )
    due: FloatArray = scores.astype(np.float32)
    return due


class BuyAgainRecommender:
    """Scores a user's own items by decayed counts and how due they are; others score 0.

    count(u, i) = Σ_{events e of u on item i} decay ** (number of u's events after e)
    score(u, i) = count(u, i) · (1 + cycle_weight · due(u, i))   (`due_scores`)

    With `cycle_weight` 0 and `decay` 1 it is "the user's most-bought items". The cycle
    term is the repurchase cycle (issue 15): staples come back every week or month, so
    an item whose usual gap has passed is more likely in the next basket than one
    bought yesterday (+10% recall@10 on the generated grocery shop, benchmarks/
    RESULTS.md).

    Inputs:
        train: `UserHistories` with sequences (only the item count is learnt).
        histories: `UserHistories` whose `sequences` (each user's items, oldest first)
            the score reads.

    Relations:
        A `SequentialRecommender` (it reads the order) that needs no training. With
        the repeat policy `exclude` it can list nothing (every item it scores is
        seen); evaluation then never picks it. `TIFUKNNRecommender` adds neighbours'
        items and basket-group decay; the blend mixes it with an exploration model
        (the repeat-explore mixture).

    References:
        Ariannezhad et al., "ReCANet: A Repeat Consumption-Aware Neural Network for
        Next Basket Recommendation", SIGIR 2022 (the personal-frequency baseline);
        Li et al., "A Next Basket Recommendation Reality Check", TOIS 2023.

    Example:
        >>> from shelfwise.retrieval.base import UserHistories
        >>> import scipy.sparse as sp
        >>> model = BuyAgainRecommender(decay=0.5, cycle_weight=0.0)
        >>> rows = sp.csr_matrix([[2.0, 1.0, 0.0]])
        >>> history = UserHistories(rows, Sequences.from_rows([[0, 1, 0]]))
        >>> model.fit(history)
        >>> model.score(history).tolist()
        [[1.25, 0.5, 0.0]]
    """

    name: str = "buy_again"

    def __init__(
        self, decay: float = 1.0, cycle_weight: float = 2.0, cycle_width: float = 0.5
    ) -> None:
        """Create an unfitted model.

        Args:
            decay: weight kept per later event, in (0, 1]; 1 = plain counts.
            cycle_weight: how much being due multiplies an item's count (0 = off).
            cycle_width: how far from its usual gap an item still counts as due
                (a share of the gap: 0.5 = due within about ±50%).
        """
        if not 0.0 < decay <= 1.0:
            raise ValueError(f"decay must be in (0, 1], got {decay}")
        if cycle_weight < 0.0 or cycle_width <= 0.0:
            raise ValueError(
                f"cycle_weight must be >= 0 and cycle_width > 0, got {cycle_weight} and "
                f"{cycle_width}"
            )
        self.decay = float(decay)
        self.cycle_weight = float(cycle_weight)
        self.cycle_width = float(cycle_width)
        self.n_items: int | None = None

    def fit(self, train: Histories) -> None:
        """Learn the item count (the scores come from each scored history alone).

        Raises:
            EmptyDataError: the matrix has no users, items or interactions.
            DataError: negative or non-finite weights.
        """
        self.n_items = int(check_train(train, model=self.name).shape[1])

    def fit_sequences(self, sequences: Sequences, n_items: int) -> None:
        """Learn the item count from bare sequences."""
        self.n_items = int(n_items)

    def score(self, histories: Histories) -> FloatArray:
        """Dense (batch, n_items) float32 scores of each user's own items.

        Raises:
            DataError: no sequences, or another item count than the fit's.
        """
        n_items = self._fitted_items()
        return self.score_sequences(check_ordered(histories, n_items, model=self.name))

    def score_sequences(self, sequences: Sequences) -> FloatArray:
        """Dense (batch, n_items) float32 scores from bare sequences."""
        n_items = self._fitted_items()
        counts = decayed_counts(sequences, n_items, self.decay)
        if self.cycle_weight == 0.0:
            return counts
        due = due_scores(sequences, n_items, self.cycle_width)
        scores: FloatArray = (counts * (1.0 + self.cycle_weight * due)).astype(np.float32)
        return scores

    def save(self, folder: Path) -> None:
        """Write `params.json` into `folder`."""
        n_items = self._fitted_items()
        folder.mkdir(parents=True, exist_ok=True)
        write_params(
            folder,
            self.name,
            {
                "decay": self.decay,
                "cycle_weight": self.cycle_weight,
                "cycle_width": self.cycle_width,
                "n_items": n_items,
            },
        )

    @classmethod
    def load(cls, folder: Path) -> Self:
        """Read a model written by `save`.

        Raises:
            ArtifactError: missing files or another model's folder.
        """
        params = read_params(folder, cls.name)
        model = cls(
            decay=float(params["decay"]),
            cycle_weight=float(params["cycle_weight"]),
            cycle_width=float(params["cycle_width"]),
        )
        model.n_items = int(params["n_items"])
        return model

    def _fitted_items(self) -> int:
        if self.n_items is None:
            raise NotReadyError(f"{self.name} model is not fitted; call fit() or load() first")
        return self.n_items


__all__ = ["BuyAgainRecommender", "decayed_counts", "due_scores"]
