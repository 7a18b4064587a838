"""Bundles into a running server: loading for serving, path checks, the heap freeze.

`load_for_serving` loads, verifies, precomputes and warms a bundle the way the server
serves it; `BundleLoader` (`serve/loader.py`) runs it on its own thread and swaps the
result in; `RegistryWatcher` (`serve/watcher.py`) follows the registry's aliases with
it. `allowed_bundle` keeps admin reloads under the bundle root.
"""

from __future__ import annotations

import gc
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from shelfwise.errors import BundleNotFoundError, NotConfiguredError, RequestError
from shelfwise.runtime.engine import Engine, load_engine
from shelfwise.serve.holder import ModelHolder, Role
from shelfwise.serve.metrics import ServeMetrics
from shelfwise.serve.settings import ServeSettings

logger = logging.getLogger("shelfwise.serve")

MAX_PATH_BYTES: Final = 4096  # Linux PATH_MAX
MAX_NAME_BYTES: Final = 255  # Linux NAME_MAX: one path component
NO_CONTROL_CHARACTERS: Final = r"^[^\x00-\x1f\x7f]+$"
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Swapped:
    """What a reload changed."""

    role: Role
    model_version: str
    previous_version: str | None


def check_path_text(text: str) -> None:
    """Refuse a path no file can have, before the file system sees it.

    A NUL byte made `Path.resolve` raise ValueError and a 300-character name OSError
    (ENAMETOOLONG): both were 500s (issue 14).

    Raises:
        RequestError: a NUL or another control character (the schema's pattern too).
        BundleNotFoundError: a name over 255 bytes or a path over 4096: nothing is there.
    """
    if _CONTROL.search(text):
        raise RequestError("body.bundle_path contains a NUL or another control character")
    longest = max(
        (len(name.encode("utf-8", "surrogatepass")) for name in text.split("/")), default=0
    )
    if longest > MAX_NAME_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise BundleNotFoundError(
            f"no bundle can be at bundle_path: a file or folder name has at most "
            f"{MAX_NAME_BYTES} bytes (this one {longest}) and a path {MAX_PATH_BYTES}"
        )


def allowed_bundle(path: Path, settings: ServeSettings) -> Path:
    """`path` resolved, refused unless it lies under the bundle root.

    Raises:
        NotConfiguredError: no `settings.bundle_root` is set.
        RequestError: the path holds a NUL or another control character.
        BundleNotFoundError: the path leaves the root (no bundle the server may load),
            or has a name no file can have (over 255 bytes).
    """
    root = settings.bundle_root
    if root is None:
        raise NotConfiguredError(
            "reloads by bundle_path need SHELFWISE_SERVE_BUNDLE_ROOT (the folder bundles "
            "may be loaded from); or reload by model_version with a registry"
        )
    check_path_text(str(path))
    try:
        resolved = path.resolve()
        inside = resolved.is_relative_to(root.resolve())
    except (OSError, ValueError, RuntimeError) as exc:  # a symlink loop, a file system error
        raise RequestError(
            f"body.bundle_path cannot be resolved ({type(exc).__name__}); give a bundle "
            "folder under the server's bundle root"
        ) from None
    if not inside:
        raise BundleNotFoundError(
            "no bundle the server may load: bundle_path must lie under the server's bundle "
            "root (SHELFWISE_SERVE_BUNDLE_ROOT)"
        )
    return resolved


def load_for_serving(
    path: Path,
    settings: ServeSettings,
    *,
    version: str | None = None,
    precompute_threads: int | None = None,
) -> Engine:
    """Load a bundle as the server does: OpenMP threads set (`settings.omp_threads`),
    hashes verified (`settings.verify_bundle`), the query-vector cache sized
    (`settings.query_cache_size`), the most active users' lists precomputed
    (`settings.precompute_users`, on `precompute_threads` threads; default one per
    core), then every job called once (`warm_up`).

    Blocking (seconds for a large catalog): call it from a worker thread.

    Raises:
        BundleNotFoundError, IntegrityError, ManifestError, ArtifactError: the bundle
            cannot be served; any other exception of a model's code while warming.
    """
    if settings.omp_threads:
        # read by each OpenMP runtime when its library loads: the query encoder loads on
        # the first search, so this reaches it (FAISS is set in `load_engine`)
        os.environ["OMP_NUM_THREADS"] = str(settings.omp_threads)
    engine = load_engine(path, verify=settings.verify_bundle, version=version)
    if settings.query_cache_size is not None:
        engine.set_query_cache(settings.query_cache_size)
    engine.precompute(
        settings.precompute_users,
        max_k=settings.max_k,
        depth=settings.precompute_depth,
        threads=precompute_threads,
    )
    warm_up(engine)
    return engine


def warm_up(engine: Engine) -> None:
    """Call each of the engine's jobs once, so what loads lazily (the query encoder,
    FAISS search parameters, the click model's first prediction) loads now, off the
    request path, and a bundle that cannot answer fails here instead of in requests.
    """
    user = next(iter(engine.user_index), None)
    engine.recommend(user, 1)
    if engine.has_search:
        engine.search("warm up", 1)
    if len(engine.catalog):
        item = engine.catalog.raw_item_ids[0]
        engine.similar(item, 1)
        if engine.has_ranker:
            engine.predict(user, [item])


def freeze_heap() -> None:
    """Keep the loaded models out of the garbage collector's full passes (at start).

    A full collection walks every tracked object: with a 50k-item engine loaded that is
    about half a million objects and 80-160 ms, a pause that every request in flight
    waits for (the p99). After the first load, collect once and `gc.freeze()` the
    survivors, so later passes walk only objects made since. Reloads freeze their
    engine without this full collection (`BundleLoader`): it would stall every request
    for as long while the server is serving.
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


def version_of(engine: Engine | None) -> str | None:
    """The version label of an engine, None for none."""
    return None if engine is None else engine.version
