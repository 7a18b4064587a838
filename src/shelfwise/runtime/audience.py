"""Audiences: the users most likely to buy a product, for launches and campaigns.

For a product j and every user u, with the affinity signals each scaled to [0, 1] by
their largest value over the users (so the weights mean the same for every product):

    score(u, j) = recency(u) · (cf(u, j) + w_content · content(u, j) + PRIOR_WEIGHT)

- cf: the bundle's similar-items model (item-kNN by co-occurrence, or the content
  model), `Σ_i histories[u, i] · sim(j, i)` over j's `NEIGHBOURS` nearest products i:
  users who bought what is bought with j;
- content: the cosine of the user's profile (mean vector of their items' text) and
  j's text vector (`package.audience`), clipped at 0: what a product with no events
  yet reaches through its text;
- recency: `0.5 ** (days since the user's last event / RECENCY_HALF_LIFE_DAYS)`, days
  counted back from the data's last event; 1 for every user when the bundle has no
  times. A user must be around to buy: on ml-100k's time split, recency alone ranks
  the next buyers better than either affinity (benchmarks/audience.py), so it
  multiplies the affinity, and `PRIOR_WEIGHT` lets a recent user with little affinity
  outrank a long-gone one with much.

A product with a cf signal ("warm") uses `WARM_CONTENT_WEIGHT`, one without ("cold":
no events, or no neighbours) `COLD_CONTENT_WEIGHT`; with neither, users are ranked by
recency times log activity and the result says so (`signal` "activity"). The weights
and half-life were chosen on ml-100k; Amazon Beauty was the check (RESULTS.md,
"Audiences", with where the model wins and loses).

Users who already have the product in their history are left out unless the bundle
allows repeats (`repeat_policy` "allow"). `active_days` keeps users whose last event
is at most that many days before the data's last event (`reference_time`; users
carry no other attribute, so there is no segment filter yet). Batch audiences
(`rank_many`) score products in blocks of `block` columns: memory is
n_users × block floats, whatever the number of products. The model reads the bundle's
histories itself (one more CSR copy and its CSC transpose, nnz-sized) and is built
on the first audience request of an engine, then kept as long as the engine.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
import polars as pl
import scipy.sparse as sp

from shelfwise._internal.artifacts import read_csr
from shelfwise.contracts import RAW_USER_ID, FloatArray, IntArray
from shelfwise.errors import RequestError, UnknownItemError
from shelfwise.package.audience import (
    AUDIENCE_DIR,
    AUDIENCE_PARAMS_FILE,
    ITEM_VECTORS_FILE,
    LAST_ACTIVE_FILE,
    USER_PROFILES_FILE,
)
from shelfwise.package.bundle import HISTORIES_FILE, USERS_FILE

if TYPE_CHECKING:
    from collections.abc import Callable

    from shelfwise.runtime.engine import Engine

NEIGHBOURS: Final = 50
WARM_CONTENT_WEIGHT: Final = 0.3
COLD_CONTENT_WEIGHT: Final = 1.0
PRIOR_WEIGHT: Final = 1.0
RECENCY_HALF_LIFE_DAYS: Final = 7.0
MAX_ACTIVE_DAYS: Final = 36_500
_DAY: Final = 86_400


@dataclass(frozen=True)
class AudienceResult:
    """One product's audience.

    Attributes:
        raw_item_id: the product.
        user_ids: raw user ids, best first.
        scores: their scores (see the module doc).
        signal: "cf+content", "cf", "content" or "activity" (what ranked them).
    """

    raw_item_id: str
    user_ids: list[str]
    scores: list[float]
    signal: str


class AudienceModel:
    """Ranks a bundle's users for products (see the module doc)."""

    def __init__(
        self,
        *,
        histories: sp.csr_matrix,
        user_ids: Sequence[str],
        item_index: dict[str, int],
        neighbours: Callable[[int, int], list[tuple[int, float]]],
        item_vectors: FloatArray | None = None,
        user_profiles: FloatArray | None = None,
        last_active: IntArray | None = None,
        reference_time: int = 0,
        include_owners: bool = False,
        weights: tuple[float, float, float] = (
            WARM_CONTENT_WEIGHT,
            COLD_CONTENT_WEIGHT,
            PRIOR_WEIGHT,
        ),
        half_life_days: float = RECENCY_HALF_LIFE_DAYS,
    ) -> None:
        """Assemble from loaded parts (`from_engine` reads them from a bundle).

        Args:
            histories: CSR (n_users, n_items) of weighted interactions.
            user_ids: raw user id of each user_index.
            item_index: raw item id -> item_index.
            neighbours: (item_index, k) -> nearest products with their similarity.
            item_vectors: (n_items, d) unit text vectors, or None.
            user_profiles: (n_users, d) unit profiles, or None.
            last_active: each user's last event time, or None (no activity filter).
            reference_time: the data's last event (where `active_days` count from).
            include_owners: keep users who already have the product.
            weights: (warm content, cold content, prior) weights (module doc).
            half_life_days: days after which a user's recency prior halves.
            half_life_days: the recency half-life of the prior.
        """
        self.histories = sp.csr_matrix(histories, dtype=np.float32)
        self.user_ids = list(user_ids)
        self.item_index = item_index
        self.neighbours = neighbours
        self.item_vectors = item_vectors
        self.user_profiles = user_profiles
        self.last_active = last_active
        self.reference_time = reference_time
        self.include_owners = include_owners
        self.weights = weights
        self._recency = np.ones(self.histories.shape[0], dtype=np.float32)
        if last_active is not None and reference_time:
            idle_days = np.maximum(reference_time - last_active.astype(np.float64), 0) / _DAY
            self._recency = np.power(0.5, idle_days / half_life_days).astype(np.float32)
        activity = np.log1p(np.diff(self.histories.indptr)).astype(np.float32) * self._recency
        self._activity = activity / max(float(activity.max(initial=0.0)), 1e-12)
        self._owners = sp.csc_matrix(self.histories)  # a product's owners: one column

    @property
    def prior(self) -> FloatArray:
        """Each user's recency prior in (0, 1] (module doc)."""
        return self._recency

    @classmethod
    def from_engine(cls, engine: Engine) -> AudienceModel:
        """Read the audience files of `engine`'s bundle (a bundle without them ranks by
        co-occurrence and activity only)."""
        folder = engine.path / AUDIENCE_DIR
        users = pl.read_parquet(engine.path / USERS_FILE)[RAW_USER_ID].cast(pl.String).to_list()
        params = _read_params(folder / AUDIENCE_PARAMS_FILE)
        catalog = engine.catalog

        def neighbours(item: int, k: int) -> list[tuple[int, float]]:
            found = engine.neighbours(catalog.raw_item_ids[item], k)
            return [(catalog.index[entry.raw_item_id], entry.score) for entry in found]

        return cls(
            histories=read_csr(engine.path / HISTORIES_FILE),
            user_ids=users,
            item_index=catalog.index,
            neighbours=neighbours,
            item_vectors=_load(folder / ITEM_VECTORS_FILE),
            user_profiles=_load(folder / USER_PROFILES_FILE),
            last_active=_load(folder / LAST_ACTIVE_FILE),
            reference_time=int(params.get("reference_time", 0)),
            include_owners=engine.repeat_policy == "allow",
        )

    def rank(self, raw_item_id: str, k: int, *, active_days: int | None = None) -> AudienceResult:
        """The `k` best users for one product.

        Raises:
            UnknownItemError: the product is not in the bundle's catalog.
            RequestError: `active_days` below 1 or above `MAX_ACTIVE_DAYS`.
        """
        return next(self.rank_many([raw_item_id], k, active_days=active_days))

    def rank_many(
        self,
        raw_item_ids: Sequence[str],
        k: int,
        *,
        active_days: int | None = None,
        block: int = 256,
    ) -> Iterator[AudienceResult]:
        """Audiences of many products, scored `block` products at a time.

        Raises:
            UnknownItemError: a product is not in the bundle's catalog (raised by this
                call, before any scoring).
            RequestError: `k` below 1 or `active_days` out of range.
        """
        if k < 1:
            raise RequestError(f"k: {k} users asked for; ask for at least 1")
        items = [self._item(raw) for raw in raw_item_ids]
        return self._ranked(raw_item_ids, items, k, self._active(active_days), block)

    def _ranked(
        self,
        raw_item_ids: Sequence[str],
        items: list[int],
        k: int,
        allowed: np.ndarray | None,
        block: int,
    ) -> Iterator[AudienceResult]:
        step = max(block, 1)
        for start in range(0, len(items), step):
            chunk = items[start : start + step]
            scores, signals = self.score(np.asarray(chunk, dtype=np.int64))
            for column, item in enumerate(chunk):
                yield self._top(
                    raw_item_ids[start + column],
                    item,
                    scores[:, column],
                    k,
                    allowed,
                    signals[column],
                )

    def score(self, items: IntArray) -> tuple[FloatArray, list[str]]:
        """Scores (n_users, len(items)) of every user for `items`, and each one's signal."""
        n_users = self.histories.shape[0]
        weights = sp.lil_matrix((self.histories.shape[1], len(items)), dtype=np.float32)
        for column, item in enumerate(items.tolist()):
            for neighbour, similarity in self.neighbours(item, NEIGHBOURS):
                weights[neighbour, column] = similarity
        cf = np.asarray((self.histories @ weights.tocsc()).todense(), dtype=np.float32)
        content = np.zeros((n_users, len(items)), dtype=np.float32)
        if self.item_vectors is not None and self.user_profiles is not None:
            content = np.maximum(self.user_profiles @ self.item_vectors[items].T, 0.0)
        scores = np.empty_like(cf)
        signals = []
        warm_weight, cold_weight, prior_weight = self.weights
        for column in range(len(items)):
            cf_part, warm = _scaled(cf[:, column])
            content_part, has_text = _scaled(content[:, column])
            weight = warm_weight if warm else cold_weight
            if warm or has_text:
                affinity = cf_part + weight * content_part
                scores[:, column] = self._recency * (affinity + prior_weight)
            else:
                scores[:, column] = self._activity
            signals.append(
                "+".join(name for name, on in (("cf", warm), ("content", has_text)) if on)
                or "activity"
            )
        return scores, signals

    def _item(self, raw_item_id: str) -> int:
        item = self.item_index.get(raw_item_id)
        if item is None:
            raise UnknownItemError(
                f"item {raw_item_id!r} is not in the model's catalog; audiences need a "
                "product the bundle knows (add it to the catalog and retrain)"
            )
        return item

    def _active(self, active_days: int | None) -> np.ndarray | None:
        if active_days is None:
            return None
        if not 1 <= active_days <= MAX_ACTIVE_DAYS:
            raise RequestError(
                f"active_days: {active_days} is out of range; give 1 to {MAX_ACTIVE_DAYS} days"
            )
        if self.last_active is None:
            raise RequestError(
                "active_days: this bundle has no last-activity times (built before "
                "audiences); retrain to filter by activity, or leave active_days out"
            )
        allowed: np.ndarray = self.last_active >= self.reference_time - active_days * _DAY
        return allowed

    def _top(
        self,
        raw_item_id: str,
        item: int,
        scores: FloatArray,
        k: int,
        allowed: np.ndarray | None,
        signal: str,
    ) -> AudienceResult:
        keep = np.ones(scores.size, dtype=bool) if allowed is None else allowed.copy()
        if not self.include_owners:
            column = self._owners[:, item]
            keep[column.indices[column.data > 0]] = False
        candidates = np.flatnonzero(keep)
        if candidates.size > k:
            part = np.argpartition(-scores[candidates], k - 1)[:k]
            candidates = candidates[part]
        # best first; ties by lower user_index, so the same bundle gives the same list
        order = candidates[np.lexsort((candidates, -scores[candidates]))][:k]
        return AudienceResult(
            raw_item_id=raw_item_id,
            user_ids=[self.user_ids[u] for u in order.tolist()],
            scores=[round(float(scores[u]), 6) for u in order.tolist()],
            signal=signal,
        )


def _scaled(values: FloatArray) -> tuple[FloatArray, bool]:
    top = float(values.max()) if values.size else 0.0
    if top <= 0:
        return np.zeros_like(values), False
    return values / top, True


def _load(path: Path) -> np.ndarray | None:
    return np.load(path, allow_pickle=False) if path.is_file() else None


def _read_params(path: Path) -> dict[str, int]:
    if not path.is_file():
        return {}
    loaded = json.loads(path.read_text(encoding="utf-8"))
    return loaded if isinstance(loaded, dict) else {}


_MODELS: weakref.WeakKeyDictionary[Engine, AudienceModel] = weakref.WeakKeyDictionary()


def audience_model(engine: Engine) -> AudienceModel:
    """The audience model of `engine`, read from its bundle on first use and kept as
    long as the engine (a swapped-out engine frees it too)."""
    model = _MODELS.get(engine)
    if model is None:
        model = AudienceModel.from_engine(engine)
        _MODELS[engine] = model
    return model
