"""Build and fit recommenders from the features folder (batch role only).

Every model reads the same inputs: the weighted train matrix (event-type weights and
time decay applied once, in one place), the time-ordered sequences, and the catalog
text. `fit_model` gives every model the same `UserHistories` (the matrix and the
sequences; each reads what it needs), text first to text-aware ones, and the valid
users' next items to models that stop early on them (SASRec).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from shelfwise._internal.artifacts import read_csr
from shelfwise._internal.matrices import weighted_matrix
from shelfwise._internal.sequences import Sequences
from shelfwise.contracts import IntArray
from shelfwise.errors import ConfigError
from shelfwise.retrieval import recommender_class
from shelfwise.retrieval.base import Recommender, TextRecommender, UserHistories

TEXT_FIELDS = ("title", "brand", "category", "description")
SPLITS = {"train": ("train",), "train_valid": ("train", "valid")}


@dataclass
class TrainingData:
    """What models fit on, read once from a features folder."""

    features: Path
    matrix: sp.csr_matrix
    sequences: Sequences
    texts: dict[str, list[str | None]]
    split: str = "train"
    _decayed: dict[float, sp.csr_matrix] = field(default_factory=dict)

    @property
    def n_items(self) -> int:
        """Items in the catalog (columns)."""
        return int(self.matrix.shape[1])

    @classmethod
    def load(cls, features: Path, *, split: str = "train") -> TrainingData:
        """Train (or train+valid) matrix and sequences, and the catalog text."""
        items = pl.read_parquet(features / "items.parquet")
        texts = {
            name: items[name].cast(pl.String).to_list()
            for name in TEXT_FIELDS
            if name in items.columns and items[name].drop_nulls().str.len_chars().sum() > 0
        }
        return cls(
            features=features,
            matrix=read_csr(features / f"{split}.npz"),
            sequences=Sequences.load(features / f"{split}_seq.npz"),
            texts=texts,
            split=split,
        )

    def next_valid_items(self, max_users: int = 10_000) -> tuple[Sequences, IntArray]:
        """Each valid user's train sequence and first valid item (seeded sample).

        Used for early stopping of sequential models; empty when there is no valid split.
        """
        interactions = pl.read_parquet(
            self.features / "interactions.parquet",
            columns=["user_index", "item_index", "split", "weight"],
        )
        first = (
            interactions.filter((pl.col("split") == "valid") & (pl.col("weight") > 0))
            .group_by("user_index", maintain_order=True)
            .first()
        )
        users = first["user_index"].to_numpy().astype(np.int64)
        items = first["item_index"].to_numpy().astype(np.int64)
        keep = self.sequences.lengths()[users] > 0
        users, items = users[keep], items[keep]
        if users.size > max_users:
            chosen = np.sort(np.random.default_rng(0).choice(users.size, max_users, replace=False))
            users, items = users[chosen], items[chosen]
        return self.sequences.take(users), items

    def matrix_with_decay(self, half_life_days: float | None) -> sp.csr_matrix:
        """The matrix, or one rebuilt (from the same split) with this model's own half-life."""
        if half_life_days is None:
            return self.matrix
        if half_life_days not in self._decayed:
            interactions = pl.read_parquet(self.features / "interactions.parquet")
            n_users, n_items = self.matrix.shape
            self._decayed[half_life_days] = weighted_matrix(
                interactions,
                n_users,
                n_items,
                splits=SPLITS[self.split],
                half_life_days=half_life_days,
            )
        return self._decayed[half_life_days]


def build_model(name: str, params: dict[str, Any]) -> Recommender:
    """Construct a registered recommender, checking `params` against its constructor.

    Raises:
        ConfigError: a parameter the model does not take, or a value it refuses.
    """
    cls = recommender_class(name)
    accepted = inspect.signature(cls).parameters
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        known = ", ".join(p for p in accepted if p not in ("self",)) or "none"
        raise ConfigError(
            f"models.{name}.params: unknown parameter(s) {', '.join(unknown)}; "
            f"{name} takes: {known}"
        )
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"models.{name}.params: {exc}") from None


def why_not(name: str, data: TrainingData) -> str | None:
    """Why a family cannot be trained on this data, or None when it can."""
    if data.matrix.nnz == 0:
        return "no interactions to learn from"
    if name == "content" and not data.texts:
        return "the catalog has no text fields"
    if name == "sasrec" and int(data.sequences.lengths().max(initial=0)) < 2:
        return "no user has two ordered events"
    return None


def stops_early(model: Recommender) -> bool:
    """True for a model whose `fit` early-stops on valid users' next items (SASRec).

    Such a model stays fitted on train alone: refitted on train + valid it would
    have nothing left to stop on.
    """
    return "valid_targets" in inspect.signature(model.fit).parameters


def fit_model(
    model: Recommender,
    data: TrainingData,
    *,
    half_life_days: float | None = None,
) -> None:
    """Fit `model` on the training histories (and text, and valid next items if it reads them)."""
    if isinstance(model, TextRecommender):
        model.fit_text(data.texts)
    train = UserHistories(data.matrix_with_decay(half_life_days), data.sequences)
    if stops_early(model):
        valid, targets = data.next_valid_items()
        if targets.size:
            model.fit(train, valid=valid, valid_targets=targets)  # type: ignore[call-arg]
            return
    model.fit(train)
