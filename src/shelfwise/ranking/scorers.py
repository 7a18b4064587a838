"""The click model's classifiers: LightGBM (text model) and an MLP evaluated in numpy.

Online role: `lightgbm` is imported only when a LightGBM model loads, and the MLP's
safetensors weights run in numpy, so serving never imports torch. `ClickModel`
(`shelfwise.ranking.model`) holds one of these with the tables its features read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, Protocol

import numpy as np

from shelfwise.contracts import FloatArray
from shelfwise.ranking.base import Ranker

LIGHTGBM_FILE: Final = "model.txt"
MLP_FILE: Final = "mlp.safetensors"

ModelKind = Literal["lightgbm", "mlp"]


class Scorer(Ranker, Protocol):
    """A fitted binary classifier over raw feature rows: the `Ranker` inside a `ClickModel`."""

    @property
    def kind(self) -> ModelKind:
        """ "lightgbm" or "mlp"."""
        ...

    @property
    def n_features(self) -> int:
        """The number of columns a feature row must have."""
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

    @property
    def n_features(self) -> int:
        """The columns the booster was trained on."""
        return int(self.booster.num_feature())

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

    @property
    def n_features(self) -> int:
        """The input width of the first layer."""
        return int(self.weights[0][0].shape[1])

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
