"""The bundle's users: raw id -> user_index, weighted histories and time-ordered items.

Shared read-only by the recommending, searching and predicting jobs of an `Engine`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp

from shelfwise._internal.sequences import Sequences
from shelfwise.contracts import IntArray as IndexArray


class Histories:
    """Each known user's history, as the bundle's `histories.npz` and `sequences.npz`.

    Args:
        user_index: raw user id -> row of `matrix`.
        matrix: CSR (n_users, n_items) of weighted interactions, float32.
        sequences: each user's items oldest first, when the bundle has them (read by
            sequential recommenders).
    """

    def __init__(
        self, user_index: dict[str, int], matrix: sp.csr_matrix, sequences: Sequences | None
    ) -> None:
        """Hold the loaded arrays (no copies)."""
        self.user_index = user_index
        self.matrix = matrix
        self.sequences = sequences

    def user(self, raw_user_id: str | None) -> int | None:
        """The user_index of a known user; None for anonymous or unknown users."""
        return None if raw_user_id is None else self.user_index.get(raw_user_id)

    def row(self, user: int) -> sp.csr_matrix:
        """A bundle user's (1, n_items) history."""
        return self.matrix[user]

    def order(self, user: int) -> IndexArray | None:
        """A bundle user's items oldest first; None when the bundle has no sequences."""
        return self.sequences.row(user) if self.sequences is not None else None

    def ordered(self, rows: list[IndexArray]) -> Sequences | None:
        """Item rows (oldest first) as a sequential model's input; None without sequences.

        A bundle without sequences serves no sequential recommender, so nothing reads
        the order.
        """
        return Sequences.from_rows(rows) if self.sequences is not None else None

    def ordered_users(self, users: Iterable[int]) -> Sequences | None:
        """Bundle users' items (oldest first) as a sequential model's input; None
        without sequences.
        """
        sequences = self.sequences
        if sequences is None:
            return None
        return Sequences.from_rows([sequences.row(int(user)) for user in users])

    def seen(self, user: int) -> IndexArray:
        """The items of a bundle user's history with a positive weight."""
        matrix = self.matrix
        start, end = matrix.indptr[user], matrix.indptr[user + 1]
        items: IndexArray = matrix.indices[start:end][matrix.data[start:end] > 0]
        return items

    def items(self, raw_user_id: str | None) -> IndexArray | None:
        """The item indices a known user interacted with; None for unknown users."""
        user = self.user(raw_user_id)
        if user is None:
            return None
        return np.asarray(self.matrix[user].indices, dtype=np.int64)
