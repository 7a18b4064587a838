"""Loading bundles into a running server: admin reloads and the registry watcher.

`load_into` loads and verifies a bundle off the request path, then swaps it into the
holder; until the new engine is complete, requests keep the old one, and a bundle that
fails to load or verify changes nothing (the error is returned to the caller, and the
`shelfwise_serve_reloads_total{outcome="failed"}` counter moves).

`RegistryWatcher` polls the MLflow registry's `champion` / `challenger` aliases every
`watch_interval_s` and loads a version as soon as an alias points at it (the same
swap). MLflow is imported only when a registry is configured.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shelfwise.errors import RequestError, ShelfwiseError
from shelfwise.runtime.engine import Engine, load_engine
from shelfwise.serve.holder import CHALLENGER, CHAMPION, ModelHolder, Role
from shelfwise.serve.metrics import ServeMetrics
from shelfwise.serve.settings import ServeSettings

if TYPE_CHECKING:
    from shelfwise.registry.base import Registry

logger = logging.getLogger("shelfwise.serve")


@dataclass(frozen=True)
class Swapped:
    """What a reload changed."""

    role: Role
    model_version: str
    previous_version: str | None


def allowed_bundle(path: Path, settings: ServeSettings) -> Path:
    """`path` resolved, refused unless it lies under the bundle root.

    Raises:
        RequestError: no `settings.bundle_root` is set, or the path leaves it.
    """
    root = settings.bundle_root
    if root is None:
        raise RequestError(
            "reloads by bundle_path need SHELFWISE_SERVE_BUNDLE_ROOT (the folder bundles "
            "may be loaded from); or reload by model_version with a registry"
        )
    resolved = path.resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise RequestError(
            "bundle_path must lie under the server's bundle root (SHELFWISE_SERVE_BUNDLE_ROOT)"
        )
    return resolved


def load_for_serving(path: Path, settings: ServeSettings, *, version: str | None = None) -> Engine:
    """Load a bundle as the server does: OpenMP threads set (`settings.omp_threads`),
    hashes verified (`settings.verify_bundle`), the query-vector cache sized
    (`settings.query_cache_size`), then the most active users' lists precomputed
    (`settings.precompute_users`).

    Blocking (seconds for a large catalog): call it from a worker thread.
    """
    if settings.omp_threads:
        # read by each OpenMP runtime when its library loads: the query encoder loads on
        # the first search, so this reaches it (FAISS is set in `load_engine`)
        os.environ["OMP_NUM_THREADS"] = str(settings.omp_threads)
    engine = load_engine(path, verify=settings.verify_bundle, version=version)
    if settings.query_cache_size is not None:
        engine.set_query_cache(settings.query_cache_size)
    engine.precompute(
        settings.precompute_users, max_k=settings.max_k, depth=settings.precompute_depth
    )
    return engine


def load_into(
    holder: ModelHolder,
    metrics: ServeMetrics,
    path: Path,
    role: Role,
    settings: ServeSettings,
    *,
    version: str | None = None,
) -> Swapped:
    """Load `path` fully (`load_for_serving`), then serve it as `role`.

    Blocking: call it from a worker thread. On any error the holder is unchanged.

    Raises:
        ShelfwiseError: the bundle is missing, damaged or unloadable.
    """
    try:
        engine = load_for_serving(path, settings, version=version)
    except ShelfwiseError:
        metrics.reloads.labels(role, "failed").inc()
        raise
    previous = serve_engine(holder, metrics, engine, role)
    metrics.reloads.labels(role, "swapped").inc()
    logger.info("serving %s as %s (was %s)", engine.version, role, _version(previous))
    swapped = Swapped(role, engine.version, _version(previous))
    del previous
    if settings.freeze_heap:
        freeze_heap()
    return swapped


def freeze_heap() -> None:
    """Keep the loaded models out of the garbage collector's full passes.

    A full collection walks every tracked object: with a 50k-item engine loaded that is
    about half a million objects and 80-160 ms, a pause that every request in flight
    waits for (the p99). After a load, collect once and `gc.freeze()` the survivors, so
    later passes walk only objects made since. Unfreezing first lets a swapped-out
    engine's reference cycles be collected (Instagram's recipe for long-lived servers).
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def serve_engine(
    holder: ModelHolder, metrics: ServeMetrics, engine: Engine, role: Role
) -> Engine | None:
    """Swap a loaded engine in as `role` and mark it in the metrics; return the old one."""
    previous = holder.swap(engine, role)
    metrics.set_model(
        engine.version,
        engine.manifest.project,
        engine.manifest.fingerprint,
        role,
        data_cutoff(engine),
    )
    return previous


def data_cutoff(engine: Engine) -> float | None:
    """Unix time of the newest training event of a bundle, when its lineage has it."""
    value = engine.manifest.lineage.get("data_cutoff_timestamp")
    return float(value) if isinstance(value, int | float) else None


def _version(engine: Engine | None) -> str | None:
    return None if engine is None else engine.version


class RegistryWatcher:
    """A daemon thread that follows the registry's aliases into the holder."""

    def __init__(self, holder: ModelHolder, metrics: ServeMetrics, settings: ServeSettings) -> None:
        self.holder = holder
        self.metrics = metrics
        self.settings = settings
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="registry-watcher", daemon=True)
        self._registry: Registry | None = None

    def start(self) -> None:
        """Poll in the background until `stop`."""
        self._thread.start()

    def stop(self) -> None:
        """Stop polling (waits for the current poll)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.settings.watch_interval_s + 5)

    def poll_once(self) -> list[Swapped]:
        """Load any version an alias points at that is not served yet."""
        registry = self._open()
        swapped: list[Swapped] = []
        models = self.holder.models
        for alias, served in ((CHAMPION, models.champion), (CHALLENGER, models.challenger)):
            version = registry.by_alias(alias)
            if version is None:
                if alias == CHALLENGER and served is not None:
                    self.holder.drop_challenger()
                    self.metrics.clear_model(CHALLENGER)
                continue
            if served is not None and served.version == version.version:
                continue
            path = registry.local_path(version.version)
            role: Role = CHAMPION if alias == CHAMPION else CHALLENGER
            swapped.append(
                load_into(
                    self.holder,
                    self.metrics,
                    path,
                    role,
                    self.settings,
                    version=version.version,
                )
            )
        return swapped

    def _open(self) -> Registry:
        if self._registry is None:
            from shelfwise.registry import registry_at

            uri = self.settings.registry_uri
            model = self.settings.registry_model
            assert uri is not None
            assert model is not None
            cache = (self.settings.bundle_root or Path(".shelfwise")) / "registry-downloads"
            self._registry = registry_at(uri, model, cache_dir=cache)
        return self._registry

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except ShelfwiseError as exc:  # keep serving what is loaded; try again later
                logger.warning("registry watch: %s", exc.message)
            except Exception:  # never let the watcher die silently
                logger.exception("registry watch failed")
            self._stop.wait(self.settings.watch_interval_s)
