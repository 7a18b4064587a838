"""The click model at inference time: load a saved folder, turn pairs into probabilities.

This module belongs to the online role: it needs numpy, scipy and, for a LightGBM
model, `lightgbm.Booster` to read `model.txt` (imported when such a model loads). The
MLP runs in numpy from its safetensors weights, so serving never imports torch.

Folder layout (no pickle)::

    features.json          format, kind, feature names, standardisation, threshold,
                           rerank flag, candidates N, retriever name, MLP layer sizes
    model.txt              LightGBM text model (kind "lightgbm")
    mlp.safetensors        MLP weights layers.{i}.weight / layers.{i}.bias (kind "mlp")
    item_<field>.npy       the `ItemTable` arrays, index = item_index
    user_last_seen.npy     the `UserTable` (reference time in features.json)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final, Literal, Protocol

import numpy as np
import scipy.sparse as sp

from shelfwise._internal.artifacts import atomic_write_json, read_array, write_array
from shelfwise.contracts import FloatArray, IntArray
from shelfwise.errors import ArtifactError, DataError
from shelfwise.ranking.base import Ranker
from shelfwise.ranking.features import (
    FEATURE_NAMES,
    ITEM_FIELDS,
    ItemTable,
    UserTable,
    pair_features,
    unseen_ranks,
)

MODEL_FORMAT: Final = "shelfwise-click-model"
MODEL_SCHEMA_VERSION: Final = 1
FEATURES_FILE: Final = "features.json"
LIGHTGBM_FILE: Final = "model.txt"
MLP_FILE: Final = "mlp.safetensors"
USERS_FILE: Final = "user_last_seen.npy"

ModelKind = Literal["lightgbm", "mlp"]


class Scorer(Ranker, Protocol):
    """A fitted binary classifier over raw feature rows: the `Ranker` inside a `ClickModel`."""

    @property
    def kind(self) -> ModelKind:
        """ "lightgbm" or "mlp"."""
        ...

    def probabilities(self, features: FloatArray) -> FloatArray:
        """P(click) for each row of a (m, n_features) float32 matrix."""
        ...

    def save(self, folder: Path) -> dict[str, Any]:
        """Write the model file(s) into `folder`; return what features.json records."""
        ...


@dataclass(frozen=True)
class LightGBMScorer:
    """A LightGBM binary booster (the text model is the saved form)."""

    booster: Any  # lightgbm.Booster
    kind: ModelKind = "lightgbm"

    def score_candidates(self, features: FloatArray) -> FloatArray:
        """P(click) per row (the `Ranker` protocol)."""
        return self.probabilities(features)

    def probabilities(self, features: FloatArray) -> FloatArray:
        """P(click) per row."""
        if features.shape[0] == 0:
            return np.empty(0, dtype=np.float32)
        predicted = self.booster.predict(features, num_threads=1)
        return np.asarray(predicted, dtype=np.float32)

    def save(self, folder: Path) -> dict[str, Any]:
        """Write `model.txt` (best iteration only)."""
        self.booster.save_model(str(folder / LIGHTGBM_FILE))
        return {"num_trees": int(self.booster.num_trees())}

    @classmethod
    def load(cls, folder: Path) -> LightGBMScorer:
        """Read `model.txt`."""
        import lightgbm  # the serve extra; only bundles with a LightGBM click model need it

        return cls(lightgbm.Booster(model_file=str(folder / LIGHTGBM_FILE)))


STANDARD_CLIP: Final = 5.0


def standardise(features: FloatArray, mean: FloatArray, std: FloatArray) -> FloatArray:
    """(x - mean) / std, NaN -> 0 (the mean), clipped to ±`STANDARD_CLIP`.

    The clip bounds what the MLP sees when a feature drifts far from its training
    range (histories are longer at test and serving time than at training time).
    """
    scaled = np.nan_to_num((features - mean) / std, nan=0.0, posinf=0.0, neginf=0.0)
    clipped: FloatArray = np.clip(scaled, -STANDARD_CLIP, STANDARD_CLIP).astype(np.float32)
    return clipped


@dataclass(frozen=True)
class MLPScorer:
    """A small MLP (ReLU hidden layers, sigmoid output) evaluated in numpy.

    Inputs are standardised with `mean` / `std` (from the training rows) by
    `standardise`: NaN becomes the training mean, values are clipped to ±5 std.
    """

    weights: tuple[tuple[np.ndarray[Any, np.dtype[np.float32]], FloatArray], ...]
    mean: FloatArray
    std: FloatArray
    kind: ModelKind = "mlp"

    def score_candidates(self, features: FloatArray) -> FloatArray:
        """P(click) per row (the `Ranker` protocol)."""
        return self.probabilities(features)

    def probabilities(self, features: FloatArray) -> FloatArray:
        """P(click) per row."""
        hidden = standardise(features, self.mean, self.std)
        for depth, (weight, bias) in enumerate(self.weights):
            hidden = hidden @ weight.T + bias
            if depth < len(self.weights) - 1:
                hidden = np.maximum(hidden, 0.0)
        logits = np.clip(hidden[:, 0].astype(np.float64), -50.0, 50.0)
        probabilities: FloatArray = (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
        return probabilities

    def save(self, folder: Path) -> dict[str, Any]:
        """Write `mlp.safetensors`."""
        from safetensors.numpy import save_file

        tensors: dict[str, np.ndarray[Any, Any]] = {}
        for depth, (weight, bias) in enumerate(self.weights):
            tensors[f"layers.{depth}.weight"] = np.ascontiguousarray(weight, dtype=np.float32)
            tensors[f"layers.{depth}.bias"] = np.ascontiguousarray(bias, dtype=np.float32)
        save_file(tensors, str(folder / MLP_FILE))
        return {"layer_sizes": [int(w.shape[0]) for w, _ in self.weights]}

    @classmethod
    def load(cls, folder: Path, *, mean: FloatArray, std: FloatArray) -> MLPScorer:
        """Read `mlp.safetensors`."""
        from safetensors.numpy import load_file

        tensors = load_file(str(folder / MLP_FILE))
        depth = len(tensors) // 2
        weights = tuple(
            (
                np.asarray(tensors[f"layers.{i}.weight"], dtype=np.float32),
                np.asarray(tensors[f"layers.{i}.bias"], dtype=np.float32),
            )
            for i in range(depth)
        )
        return cls(weights=weights, mean=mean, std=std)


@dataclass(frozen=True)
class ClickModel:
    """P(click or purchase | user history, item, retriever score).

    Build with `load` (or, in training, from a fitted `Scorer`). Attributes:
    `scorer` (the classifier), `items` / `users` (the tables its features read),
    `mean` / `std` (standardisation of the training rows), `threshold` (decision
    threshold chosen on held-out users), `rerank` (True when re-ranking beat the
    retriever's order on held-out users: serving may re-rank), `candidates` (N, the
    candidate list length it was trained on), `retriever` (the recommender whose
    scores it reads).

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
        valid = grid >= 0
        rows, columns = np.nonzero(valid)
        pair_items = grid[rows, columns]
        scores = ranks = top = None
        if retriever_scores is not None:
            dense = np.asarray(retriever_scores, dtype=np.float32).reshape(batch, -1)
            scores = dense[rows, pair_items]
            ranks = unseen_ranks(dense, rows_matrix, rows, pair_items, limit=self.candidates)
            masked = dense.copy()
            coo = rows_matrix.tocoo()
            masked[coo.row, coo.col] = -np.inf
            top = masked.max(axis=1) if masked.shape[1] else np.zeros(batch, np.float32)
        days = None if user_indices is None else self.users.days_since_last(user_indices)
        probabilities = np.full(grid.shape, np.nan, dtype=np.float32)
        probabilities[rows, columns] = self.predict_pairs(
            rows_matrix,
            rows,
            pair_items,
            retriever_scores=scores,
            retriever_ranks=ranks,
            top_scores=top,
            user_days_since_last=days,
        )
        return probabilities.reshape(items.shape)

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
    ) -> FloatArray:
        """The feature rows of pairs, ranks clipped at `candidates` (the training range)."""
        ranks = (
            None
            if retriever_ranks is None
            else np.minimum(np.asarray(retriever_ranks, np.float32), float(self.candidates))
        )
        return pair_features(
            self.items,
            histories,
            rows,
            item_indices,
            retriever_scores=retriever_scores,
            retriever_ranks=ranks,
            top_scores=top_scores,
            user_days_since_last=user_days_since_last,
        )

    def probabilities(self, features: FloatArray) -> FloatArray:
        """P(click) for raw feature rows."""
        return self.scorer.probabilities(np.asarray(features, dtype=np.float32))

    def score_candidates(self, features: FloatArray) -> FloatArray:
        """P(click) of candidate rows (the `Ranker` protocol): columns `FEATURE_NAMES`.

        Raises:
            DataError: the rows do not have one column per feature.
        """
        matrix = np.asarray(features, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != len(FEATURE_NAMES):
            raise DataError(
                f"click model: features must be (rows, {len(FEATURE_NAMES)}) for the "
                f"columns {FEATURE_NAMES[:3]}...; got shape {matrix.shape}"
            )
        return self.probabilities(matrix)

    def save(self, folder: Path) -> None:
        """Write the model folder (created if missing)."""
        folder.mkdir(parents=True, exist_ok=True)
        recorded = self.scorer.save(folder)
        for name, array in self.items.arrays().items():
            write_array(folder / f"item_{name}.npy", array)
        write_array(folder / USERS_FILE, self.users.last_seen)
        atomic_write_json(
            folder / FEATURES_FILE,
            {
                "format": MODEL_FORMAT,
                "schema_version": MODEL_SCHEMA_VERSION,
                "kind": self.kind,
                "feature_names": list(FEATURE_NAMES),
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

        Raises:
            ArtifactError: not a click-model folder, written by another feature set, or
                a file is missing.
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
        if tuple(spec.get("feature_names", ())) != FEATURE_NAMES:
            raise ArtifactError(
                f"the click model in {folder} uses other features than this shelfwise; "
                "serve it with the version that built it, or retrain"
            )
        try:
            items = ItemTable.from_arrays(
                {name: read_array(folder / f"item_{name}.npy") for name in ITEM_FIELDS}
            )
            users = UserTable(
                last_seen=read_array(folder / USERS_FILE).astype(np.float64),
                reference_time=float(spec["reference_time"]),
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
        )
