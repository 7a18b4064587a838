"""The model holder: which loaded bundle answers a request, swapped without downtime.

The holder keeps an immutable `Models` snapshot (champion, optional challenger, canary
and shadow fractions). A request reads the snapshot once and keeps its engines to the
end, so a swap never changes a request in flight: `swap` builds a new snapshot and
replaces the reference (one attribute assignment), after the new bundle is fully
loaded and verified (`reload`). A failed load leaves the current snapshot serving.

Canary: a share of users (`canary_fraction`) is answered by the challenger. The
assignment hashes `user_id` (BLAKE2b, no process seed), so a user sticks to one side
and every replica agrees. Anonymous requests always get the champion.

Shadow: on a share of champion-served requests (`shadow_fraction`, sampled by a hash of
the request id), the challenger also answers after the response was sent; the overlap
of the two lists and the challenger's latency are metrics, never a response.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, replace
from typing import Final, Literal

from shelfwise.errors import NotReadyError
from shelfwise.runtime.engine import Engine
from shelfwise.runtime.live_catalog import LiveCatalog

Role = Literal["champion", "challenger"]
CHAMPION: Final = "champion"
CHALLENGER: Final = "challenger"
_HASH_SPACE: Final = float(2**64)


def bucket(key: str, salt: str) -> float:
    """A stable number in [0, 1) for `key`: the same on every replica and restart."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8, person=salt.encode()[:16])
    return int.from_bytes(digest.digest(), "big") / _HASH_SPACE


@dataclass(frozen=True)
class Models:
    """One consistent view of what is served."""

    champion: Engine | None
    challenger: Engine | None = None
    canary_fraction: float = 0.0
    shadow_fraction: float = 0.0


@dataclass(frozen=True)
class Choice:
    """The engine that answers a request, and the one that shadows it (if any)."""

    engine: Engine
    role: Role
    shadow: Engine | None = None


class ModelHolder:
    """Champion and challenger engines behind one atomic reference.

    Args:
        champion: the engine serving by default (None: not ready yet).
        canary_fraction: share of users the challenger answers, in [0, 1].
        shadow_fraction: share of champion requests the challenger shadows, in [0, 1].
        live: the live catalog every engine serves from its swap on (online updates).
    """

    def __init__(
        self,
        champion: Engine | None = None,
        *,
        canary_fraction: float = 0.0,
        shadow_fraction: float = 0.0,
        live: LiveCatalog | None = None,
    ) -> None:
        _check_fraction("canary_fraction", canary_fraction)
        self.live = live
        _check_fraction("shadow_fraction", shadow_fraction)
        self._models = Models(champion, None, canary_fraction, shadow_fraction)
        self._write = threading.Lock()  # swaps are serialised; reads take no lock

    @property
    def models(self) -> Models:
        """The current snapshot (read once per request)."""
        return self._models

    @property
    def ready(self) -> bool:
        """True once a champion is loaded."""
        return self._models.champion is not None

    def choose(self, user_id: str | None, request_id: str = "") -> Choice:
        """The engine for this request: the challenger for canary users, else the champion.

        Raises:
            NotReadyError: no champion is loaded yet.
        """
        models = self._models
        champion = models.champion
        if champion is None:
            raise NotReadyError(
                "no model bundle is loaded; set SHELFWISE_SERVE_BUNDLE_PATH (or run "
                "`shelfwise run` to build one) and wait for /readyz to answer 200"
            )
        challenger = models.challenger
        if challenger is None:
            return Choice(champion, CHAMPION)
        if user_id is not None and bucket(user_id, "canary") < models.canary_fraction:
            return Choice(challenger, CHALLENGER)
        shadow = (
            challenger
            if request_id and bucket(request_id, "shadow") < models.shadow_fraction
            else None
        )
        return Choice(champion, CHAMPION, shadow)

    def swap(self, engine: Engine, role: Role = CHAMPION) -> Engine | None:
        """Serve `engine` as `role` from the next request on; return the engine it replaced.

        With a live catalog, the engine gets its updates before it serves (re-applied
        over the new bundle, see `LiveCatalog.attach`), and the replaced one stops
        receiving them.
        """
        if self.live is not None:
            engine.attach_live(self.live)
        with self._write:
            models = self._models
            if role == CHAMPION:
                old = models.champion
                self._models = replace(models, champion=engine)
            else:
                old = models.challenger
                self._models = replace(models, challenger=engine)
        if self.live is not None and old is not None and old is not engine:
            catalog = getattr(old, "catalog", None)  # None once the engine was released
            if catalog is not None:
                self.live.detach(catalog, clear=False)
        return old

    def drop_challenger(self) -> Engine | None:
        """Stop canary and shadow traffic; return the challenger that was removed."""
        with self._write:
            old = self._models.challenger
            self._models = replace(self._models, challenger=None)
        return old

    def set_fractions(
        self, *, canary_fraction: float | None = None, shadow_fraction: float | None = None
    ) -> None:
        """Change the canary and/or shadow share (e.g. ramp a canary up)."""
        with self._write:
            models = self._models
            if canary_fraction is not None:
                _check_fraction("canary_fraction", canary_fraction)
                models = replace(models, canary_fraction=canary_fraction)
            if shadow_fraction is not None:
                _check_fraction("shadow_fraction", shadow_fraction)
                models = replace(models, shadow_fraction=shadow_fraction)
            self._models = models


def overlap_at_k(first: list[str], second: list[str], k: int) -> float:
    """|top-k(first) ∩ top-k(second)| / k (1.0 when both lists are empty)."""
    if k <= 0:
        return 1.0
    a, b = set(first[:k]), set(second[:k])
    if not a and not b:
        return 1.0
    return len(a & b) / k


def _check_fraction(name: str, value: float) -> None:
    from shelfwise.errors import ConfigError

    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name} must be within [0, 1], got {value}")
