"""A weighted score fusion of several fitted recommenders.

Each component's scores are min-max normalised per user over the catalog, so models
on different scales (similarities, factor dot products, counts) add up fairly:

    score(u, j) = Σ_m w_m · (s_m(u, j) − min_j s_m(u, ·)) / (max_j s_m(u, ·) − min_j s_m(u, ·))

An item some component scores −inf (pruned by the compress stage) scores −inf in the
blend, and min / max run over the finite scores only.

Inputs:
    train: `UserHistories` (n_users, n_items), as every component takes it.
    histories: `UserHistories` (batch, n_items), passed on to every component.

Relations:
    Components are any `Recommender`, compressed variants included; `evaluate` fuses
    matrix models only (sequential ones are not fused yet). It searches the weights
    on the validation split and serves a blend only when it beats the best single
    model there. A saved blend loads its components through the loader it is given
    (`shelfwise.compress.load_recommender` also knows compressed components).

References:
    Fox & Shaw, "Combination of multiple searches" (CombSUM), TREC 1994.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Self

import numpy as np

from shelfwise._internal.artifacts import atomic_write_json
from shelfwise.contracts import FloatArray
from shelfwise.errors import ArtifactError, ConfigError, NotReadyError
from shelfwise.retrieval.base import Histories, Recommender, RecommenderLoader

_PARAMS = "params.json"


def normalise_rows(scores: FloatArray) -> FloatArray:
    """Min-max normalise each row to [0, 1]; constant rows become 0.

    Entries that are not finite (−inf: items a pruned model never recommends) take no
    part in a row's min and max and come out as −inf.
    """
    finite = np.isfinite(scores)
    if finite.all():
        low = scores.min(axis=1, keepdims=True)
        span = scores.max(axis=1, keepdims=True) - low
        span[span == 0] = 1.0
        normalised: FloatArray = ((scores - low) / span).astype(np.float32)
        return normalised
    low = np.where(finite, scores, np.inf).min(axis=1, keepdims=True)
    high = np.where(finite, scores, -np.inf).max(axis=1, keepdims=True)
    low[~np.isfinite(low)] = 0.0  # a row without a finite score
    span = np.where(np.isfinite(high), high - low, 0.0)
    span[span == 0] = 1.0
    with np.errstate(invalid="ignore"):
        scaled = (scores - low) / span
    pruned: FloatArray = np.where(finite, scaled, -np.inf).astype(np.float32)
    return pruned


class BlendRecommender:
    """Weighted CombSUM of min-max-normalised component scores (see module docstring).

    Example:
        >>> from shelfwise.retrieval.popularity import PopularityRecommender
        >>> blend = BlendRecommender({"popularity": 1.0}, {"popularity": PopularityRecommender()})
        >>> blend.name
        'blend'
    """

    name: str = "blend"

    def __init__(
        self,
        weights: dict[str, float] | None = None,
        components: dict[str, Recommender] | None = None,
    ) -> None:
        """Blend `components` (name -> model) with `weights` (name -> weight ≥ 0).

        Raises:
            ConfigError: weights and components disagree, or a weight is negative.
        """
        self.weights = dict(weights or {})
        self.components = dict(components or {})
        if set(self.weights) != set(self.components):
            raise ConfigError(
                f"blend weights {sorted(self.weights)} and components "
                f"{sorted(self.components)} must name the same models"
            )
        if any(weight < 0 for weight in self.weights.values()):
            raise ConfigError(f"blend weights must be >= 0, got {self.weights}")

    def fit(self, train: Histories) -> None:
        """Fit every component on `train`."""
        if not self.components:
            raise NotReadyError("a blend needs at least one component model")
        for model in self.components.values():
            model.fit(train)

    def score(self, histories: Histories) -> FloatArray:
        """Σ weight · normalised component scores, (batch, n_items) float32."""
        if not self.components:
            raise NotReadyError("blend has no components; fit or load it first")
        total: FloatArray | None = None
        for name, model in self.components.items():
            normalised = normalise_rows(model.score(histories))
            pruned = np.isneginf(normalised)
            if pruned.any():  # a weight of 0 times −inf would be NaN: keep it −inf
                normalised[pruned] = 0.0
                part = self.weights[name] * normalised
                part[pruned] = -np.inf
            else:
                part = self.weights[name] * normalised
            total = part if total is None else total + part
        assert total is not None  # components is not empty
        return total.astype(np.float32, copy=False)

    def save(self, folder: Path) -> None:
        """Each component under `components/<name>/`, weights in params.json."""
        folder.mkdir(parents=True, exist_ok=True)
        for name, model in self.components.items():
            model.save(folder / "components" / name)
        atomic_write_json(folder / _PARAMS, {"model": self.name, "weights": self.weights})

    @classmethod
    def load(cls, folder: Path, *, loader: RecommenderLoader | None = None) -> Self:
        """Read a blend and its components.

        Args:
            folder: the blend's folder.
            loader: loads a component from (registered name, folder); default
                `shelfwise.retrieval.load_recommender` (retrieval's own families).
        """
        load = loader if loader is not None else _retrieval_loader()
        try:
            params: dict[str, Any] = json.loads((folder / _PARAMS).read_text())
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"{folder / _PARAMS} is unreadable: {exc}") from None
        components = {name: load(name, folder / "components" / name) for name in params["weights"]}
        return cls(params["weights"], components)


def _retrieval_loader() -> RecommenderLoader:
    """retrieval's own loader (imported on use: the package imports this module)."""
    from shelfwise.retrieval import load_recommender

    return load_recommender
