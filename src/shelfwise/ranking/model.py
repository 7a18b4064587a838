"""The click model at inference time: load a saved folder, turn pairs into probabilities.

This module belongs to the online role: it needs numpy, scipy and the classifiers of
`shelfwise.ranking.scorers` (re-exported here): `lightgbm.Booster` reads `model.txt`
when such a model loads; the MLP runs in numpy, so serving never imports torch.

Folder layout (no pickle)::

    features.json          format, kind, feature names, standardisation, threshold,
                           rerank flag, candidates N, retriever name, MLP layer sizes,
                           repeats (candidates may be items the user has)
    model.txt              LightGBM text model (kind "lightgbm")
    mlp.safetensors        MLP weights layers.{i}.weight / layers.{i}.bias (kind "mlp")
    item_<field>.npy       the `ItemTable` arrays, index = item_index
    user_last_seen.npy     the `UserTable` (reference time in features.json)
    user_purchase_keys.npy, user_purchase_times.npy
                           the `PurchaseTable`: sorted user_index * n_items + item_index
                           keys and the unix seconds of each pair's newest purchase

A folder saved with an older feature list (no repurchase features: no
`item_typical_gap.npy`, no purchase files) still loads: the model reads only the
columns it was trained on (`ClickModel.feature_names`), a subset of `FEATURE_NAMES`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import numpy as np
import scipy.sparse as sp

from shelfwise._internal.artifacts import atomic_write_json, read_array, write_array
from shelfwise.contracts import FloatArray, IntArray
from shelfwise.errors import ArtifactError, DataError
from shelfwise.ranking.features import (
    FEATURE_NAMES,
    ITEM_FIELDS,
    ItemTable,
    UserTable,
    pair_features,
    unseen_ranks,
)
from shelfwise.ranking.repurchase import PurchaseTable
from shelfwise.ranking.scorers import (
    LIGHTGBM_FILE,
    MLP_FILE,
    STANDARD_CLIP,
    LightGBMScorer,
    MLPScorer,
    ModelKind,
    Scorer,
    standardise,
)

MODEL_FORMAT: Final = "shelfwise-click-model"
MODEL_SCHEMA_VERSION: Final = 1
FEATURES_FILE: Final = "features.json"
USERS_FILE: Final = "user_last_seen.npy"
PURCHASE_KEYS_FILE: Final = "user_purchase_keys.npy"
PURCHASE_TIMES_FILE: Final = "user_purchase_times.npy"


@dataclass(frozen=True)
class ClickModel:
    """P(click or purchase | user history, item, retriever score).

    Build with `load` (or, in training, from a fitted `Scorer`). Attributes:
    `scorer` (the classifier), `items` / `users` (the tables its features read),
    `mean` / `std` (standardisation of the training rows), `threshold` (decision
    threshold chosen on held-out users), `rerank` (True when re-ranking beat the
    retriever's order on held-out users: serving may re-rank), `candidates` (N, the
    candidate list length it was trained on), `retriever` (the recommender whose
    scores it reads), `feature_names` (the columns of `FEATURE_NAMES` its scorer reads,
    in that order: all of them, or fewer for a model saved by an older shelfwise or
    trained with `ranking.repurchase_features: false`), `repeats` (True when its
    candidates could be items the user has: retriever ranks and the best score are
    then taken over every item, as the training lists were).

    Relations:
        Retrievers score every item; the click model scores a short candidate list
        and is calibrated as a probability, so `/v1/predict` can show it. Implements
        `shelfwise.ranking.base.Ranker`, as the search re-ranker does.

    Example:
        >>> model = ClickModel.load(folder)  # doctest: +SKIP
        >>> model.predict(history_row, np.array([3, 17]), retriever_scores=scores)  # doctest: +SKIP
        array([0.12, 0.03], dtype=float32)
    """

    scorer: Scorer
    items: ItemTable
    users: UserTable
    mean: FloatArray
    std: FloatArray
    threshold: float = 0.5
    rerank: bool = False
    candidates: int = 100
    retriever: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    feature_names: tuple[str, ...] = FEATURE_NAMES
    repeats: bool = False

    @property
    def columns(self) -> IntArray:
        """Positions of `feature_names` in `FEATURE_NAMES` (the columns the scorer reads)."""
        return np.array([FEATURE_NAMES.index(name) for name in self.feature_names], np.int64)

    @property
    def kind(self) -> ModelKind:
        """ "lightgbm" or "mlp"."""
        return self.scorer.kind

    @property
    def n_items(self) -> int:
        """Size of the item space."""
        return self.items.n_items

    def with_tables(self, items: ItemTable, users: UserTable) -> ClickModel:
        """The same classifier reading other tables (another history cutoff)."""
        return replace(self, items=items, users=users)

    def predict(
        self,
        histories: sp.csr_matrix,
        item_indices: IntArray,
        retriever_scores: FloatArray | None = None,
        *,
        user_indices: IntArray | None = None,
    ) -> FloatArray:
        """Click probabilities of items for users.

        Args:
            histories: CSR (1, n_items) for one user, or (batch, n_items).
            item_indices: (m,) items for one user, or (batch, m) with -1 padding.
            retriever_scores: the retriever's dense (batch, n_items) scores for these
                histories (what `Recommender.score` returns); None when unavailable
                (the score features are then missing).
            user_indices: (batch,) user_index of each history row in the model's user
                table (-1 unknown), for the recency feature; None = unknown.

        Returns:
            float32 probabilities shaped like `item_indices`; NaN at padding.

        Raises:
            DataError: shapes disagree, or an item index is outside the item space.
        """
        rows_matrix = sp.csr_matrix(histories)
        items = np.asarray(item_indices, dtype=np.int64)
        batch = rows_matrix.shape[0]
        grid = items.reshape(1, -1) if items.ndim == 1 else items
        if grid.ndim != 2 or grid.shape[0] != batch or rows_matrix.shape[1] != self.n_items:
            raise DataError(
                f"histories {rows_matrix.shape} and item_indices {items.shape} do not match "
                f"a model of {self.n_items} items: pass (1, n_items) with (m,) or "
                "(batch, n_items) with (batch, m)"
            )
        if grid.size and int(grid.max()) >= self.n_items:
            raise DataError(f"item_index {int(grid.max())} is outside 0..{self.n_items - 1}")
        rows, columns = np.nonzero(grid >= 0)
        features = self.grid_features(rows_matrix, grid, retriever_scores, user_indices)
        probabilities = np.full(grid.shape, np.nan, dtype=np.float32)
        probabilities[rows, columns] = self.probabilities(features)
        return probabilities.reshape(items.shape)

    def grid_features(
        self,
        histories: sp.csr_matrix,
        grid: IntArray,
        retriever_scores: FloatArray | None,
        user_indices: IntArray | None,
    ) -> FloatArray:
        """The feature rows (this model's columns) of a (batch, m) item grid's entries >= 0,
        row-major: what `predict` scores and `runtime.explain` decomposes.

        Args:
            histories: CSR (batch, n_items).
            grid: (batch, m) item indices, -1 padding.
            retriever_scores: dense (batch, n_items) or None, as in `predict`.
            user_indices: (batch,) or None, as in `predict`.
        """
        batch = histories.shape[0]
        rows, columns = np.nonzero(grid >= 0)
        pair_items = grid[rows, columns]
        scores = ranks = top = None
        if retriever_scores is not None:
            dense = np.asarray(retriever_scores, dtype=np.float32).reshape(batch, -1)
            scores = dense[rows, pair_items]
            # ranks and the best score over the items the training lists could hold:
            # every item with repeats, else the unseen ones only
            seen = sp.csr_matrix(histories.shape, dtype=np.float32) if self.repeats else histories
            ranks = unseen_ranks(dense, seen, rows, pair_items, limit=self.candidates)
            masked = dense.copy()
            coo = sp.coo_matrix(seen)
            masked[coo.row, coo.col] = -np.inf
            top = masked.max(axis=1) if masked.shape[1] else np.zeros(batch, np.float32)
        days = bought = None
        if user_indices is not None:
            users = np.asarray(user_indices, dtype=np.int64).reshape(-1)
            days = self.users.days_since_last(users)
            bought = self.users.days_since_bought(users[rows], pair_items)
        return self.features(
            histories,
            rows,
            pair_items,
            retriever_scores=scores,
            retriever_ranks=ranks,
            top_scores=top,
            user_days_since_last=days,
            days_since_bought=bought,
        )

    def predict_pairs(
        self,
        histories: sp.csr_matrix,
        rows: IntArray,
        item_indices: IntArray,
        *,
        retriever_scores: FloatArray | None = None,
        retriever_ranks: FloatArray | None = None,
        top_scores: FloatArray | None = None,
        user_days_since_last: FloatArray | None = None,
        days_since_bought: FloatArray | None = None,
    ) -> FloatArray:
        """Probabilities of (row, item) pairs; arguments as in `pair_features`."""
        features = self.features(
            histories,
            rows,
            item_indices,
            retriever_scores=retriever_scores,
            retriever_ranks=retriever_ranks,
            top_scores=top_scores,
            user_days_since_last=user_days_since_last,
            days_since_bought=days_since_bought,
        )
        return self.probabilities(features)

    def features(
        self,
        histories: sp.csr_matrix,
        rows: IntArray,
        item_indices: IntArray,
        *,
        retriever_scores: FloatArray | None = None,
        retriever_ranks: FloatArray | None = None,
        top_scores: FloatArray | None = None,
        user_days_since_last: FloatArray | None = None,
        days_since_bought: FloatArray | None = None,
    ) -> FloatArray:
        """The feature rows of pairs in this model's columns (`feature_names`), ranks
        clipped at `candidates` (the training range); arguments as in `pair_features`."""
        ranks = (
            None
            if retriever_ranks is None
            else np.minimum(np.asarray(retriever_ranks, np.float32), float(self.candidates))
        )
        full = pair_features(
            self.items,
            histories,
            rows,
            item_indices,
            retriever_scores=retriever_scores,
            retriever_ranks=ranks,
            top_scores=top_scores,
            user_days_since_last=user_days_since_last,
            days_since_bought=days_since_bought,
        )
        return self.own_columns(full)

    def own_columns(self, features: FloatArray) -> FloatArray:
        """This model's columns of feature rows: rows with every `FEATURE_NAMES` column
        are cut down to `feature_names`; rows already that wide pass unchanged.

        Raises:
            DataError: the rows have neither width.
        """
        matrix = np.asarray(features, dtype=np.float32)
        own = len(self.feature_names)
        if matrix.ndim != 2 or matrix.shape[1] not in (own, len(FEATURE_NAMES)):
            raise DataError(
                f"click model: features must be (rows, {len(FEATURE_NAMES)}) for the "
                f"columns {FEATURE_NAMES[:3]}... or (rows, {own}) for the model's own "
                f"columns; got shape {matrix.shape}"
            )
        if matrix.shape[1] == own:
            return matrix
        return np.ascontiguousarray(matrix[:, self.columns])

    def probabilities(self, features: FloatArray) -> FloatArray:
        """P(click) for raw feature rows (every `FEATURE_NAMES` column, or the model's own)."""
        return self.scorer.probabilities(self.own_columns(features))

    def score_candidates(self, features: FloatArray) -> FloatArray:
        """P(click) of candidate rows (the `Ranker` protocol): columns `FEATURE_NAMES`
        (or the model's own `feature_names`).

        Raises:
            DataError: the rows have neither width.
        """
        return self.probabilities(features)

    def save(self, folder: Path) -> None:
        """Write the model folder (created if missing)."""
        folder.mkdir(parents=True, exist_ok=True)
        recorded = self.scorer.save(folder)
        for name, array in self.items.arrays().items():
            write_array(folder / f"item_{name}.npy", array)
        write_array(folder / USERS_FILE, self.users.last_seen)
        write_array(folder / PURCHASE_KEYS_FILE, self.users.purchases.keys)
        write_array(folder / PURCHASE_TIMES_FILE, self.users.purchases.times)
        atomic_write_json(
            folder / FEATURES_FILE,
            {
                "format": MODEL_FORMAT,
                "schema_version": MODEL_SCHEMA_VERSION,
                "kind": self.kind,
                "feature_names": list(self.feature_names),
                "repeats": bool(self.repeats),
                "standardisation": {
                    "mean": [float(v) for v in self.mean],
                    "std": [float(v) for v in self.std],
                },
                "threshold": float(self.threshold),
                "rerank": bool(self.rerank),
                "candidates": int(self.candidates),
                "retriever": self.retriever,
                "reference_time": float(self.users.reference_time),
                "model": recorded,
                "info": self.info,
            },
        )

    @classmethod
    def load(cls, folder: Path) -> ClickModel:
        """Read a folder written by `save`.

        A folder saved with fewer features (an older shelfwise) loads with its own
        `feature_names`; the tables it lacks (typical gaps, purchases) are empty.

        Raises:
            ArtifactError: not a click-model folder, a feature this shelfwise does not
                compute, or a file is missing.
        """
        path = folder / FEATURES_FILE
        try:
            spec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ArtifactError(
                f"{path} is missing or unreadable ({exc}); rebuild the model"
            ) from None
        if spec.get("format") != MODEL_FORMAT or spec.get("schema_version") != MODEL_SCHEMA_VERSION:
            raise ArtifactError(f"{folder} is not a click model of schema {MODEL_SCHEMA_VERSION}")
        names = tuple(str(name) for name in spec.get("feature_names", ()))
        unknown = sorted(set(names) - set(FEATURE_NAMES))
        if not names or unknown:
            raise ArtifactError(
                f"the click model in {folder} reads features this shelfwise does not compute "
                f"({unknown or 'none listed'}); serve it with the version that built it, "
                "or retrain"
            )
        try:
            items = ItemTable.from_arrays(
                {
                    name: read_array(folder / f"item_{name}.npy")
                    for name in ITEM_FIELDS
                    if (folder / f"item_{name}.npy").is_file() or name != "typical_gap"
                }
            )
            users = UserTable(
                last_seen=read_array(folder / USERS_FILE).astype(np.float64),
                reference_time=float(spec["reference_time"]),
                purchases=_purchases(folder, items.n_items),
            )
            mean = np.asarray(spec["standardisation"]["mean"], dtype=np.float32)
            std = np.asarray(spec["standardisation"]["std"], dtype=np.float32)
            scorer: Scorer = (
                LightGBMScorer.load(folder)
                if spec["kind"] == "lightgbm"
                else MLPScorer.load(folder, mean=mean, std=std)
            )
        except (OSError, KeyError, ValueError) as exc:
            raise ArtifactError(f"click model {folder} is incomplete: {exc}") from None
        if scorer.n_features != len(names) or mean.size != len(names):
            raise ArtifactError(
                f"the click model in {folder} lists {len(names)} features but its "
                f"{spec['kind']} model reads {scorer.n_features} (standardisation: "
                f"{mean.size}); the folder is inconsistent: rebuild the model"
            )
        return cls(
            scorer=scorer,
            items=items,
            users=users,
            mean=mean,
            std=std,
            threshold=float(spec["threshold"]),
            rerank=bool(spec["rerank"]),
            candidates=int(spec["candidates"]),
            retriever=str(spec["retriever"]),
            info=dict(spec.get("info", {})),
            feature_names=names,
            repeats=bool(spec.get("repeats", False)),
        )


def _purchases(folder: Path, n_items: int) -> PurchaseTable:
    """The folder's purchase table; empty for a folder saved before it had one."""
    keys, times = folder / PURCHASE_KEYS_FILE, folder / PURCHASE_TIMES_FILE
    if not keys.is_file():
        return PurchaseTable.empty(n_items)
    return PurchaseTable(
        keys=read_array(keys).astype(np.int64),
        times=read_array(times).astype(np.int64),
        n_items=n_items,
    )


__all__ = [
    "FEATURES_FILE",
    "LIGHTGBM_FILE",
    "MLP_FILE",
    "MODEL_FORMAT",
    "MODEL_SCHEMA_VERSION",
    "PURCHASE_KEYS_FILE",
    "PURCHASE_TIMES_FILE",
    "STANDARD_CLIP",
    "USERS_FILE",
    "ClickModel",
    "LightGBMScorer",
    "MLPScorer",
    "ModelKind",
    "Scorer",
    "standardise",
]
