"""Time-ordered interaction sequences per user, stored ragged (CSR-style) without pickle.

`items[indptr[u]:indptr[u + 1]]` are user u's item indices, oldest first. Written by
`features/` next to the weighted matrices; read by sequential models (SASRec) and by
the evaluator and server to feed them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shelfwise.contracts import IntArray


@dataclass(frozen=True)
class Sequences:
    """Ragged per-user item sequences, oldest first."""

    indptr: IntArray  # (n_users + 1,)
    items: IntArray  # (total,)

    @property
    def n_users(self) -> int:
        """Number of users (rows)."""
        return int(self.indptr.size - 1)

    def row(self, user: int) -> IntArray:
        """User `user`'s items, oldest first."""
        return self.items[self.indptr[user] : self.indptr[user + 1]]

    def lengths(self) -> IntArray:
        """Sequence length per user."""
        return np.diff(self.indptr)

    def take(self, users: Sequence[int] | IntArray) -> Sequences:
        """The sequences of `users`, in that order."""
        rows = [self.row(int(user)) for user in users]
        return Sequences.from_rows(rows)

    @staticmethod
    def from_rows(rows: Sequence[IntArray | Sequence[int]]) -> Sequences:
        """Build from one array (or list) of item indices per user."""
        lengths = np.fromiter((len(row) for row in rows), dtype=np.int64, count=len(rows))
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        items = (
            np.concatenate([np.asarray(row, dtype=np.int64) for row in rows])
            if rows and indptr[-1] > 0
            else np.empty(0, dtype=np.int64)
        )
        return Sequences(indptr=indptr, items=items)

    @staticmethod
    def from_sorted(users: IntArray, items: IntArray, n_users: int) -> Sequences:
        """Build from (user, item) pairs already sorted by user, then time."""
        counts = np.bincount(users, minlength=n_users).astype(np.int64)
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return Sequences(indptr=indptr, items=np.asarray(items, dtype=np.int64))

    def save(self, path: Path) -> None:
        """Write as an `.npz` of two arrays, atomically."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        with tmp.open("wb") as handle:
            np.savez(handle, indptr=self.indptr, items=self.items)
        os.replace(tmp, path)

    @staticmethod
    def load(path: Path) -> Sequences:
        """Read a file written by `save` (pickle refused)."""
        with np.load(path, allow_pickle=False) as arrays:
            return Sequences(
                indptr=arrays["indptr"].astype(np.int64), items=arrays["items"].astype(np.int64)
            )
