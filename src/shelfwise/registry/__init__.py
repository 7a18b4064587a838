"""registry: where bundle versions live, behind one `Registry` protocol.

`open_registry(config)` picks the store by URI, as MLflow picks its own:

- `registry.enabled: false` → `LocalRegistry` over `<home>/bundles/` (no run tracking,
  no promotion gate: the pipeline makes each new version champion);
- a `file:` URI or a plain path in `registry.registry_uri` (else
  `registry.tracking_uri`) → `LocalRegistry` over that folder's `bundles/`;
- anything else (`sqlite:`, `http:`, `https:`, ...), or no URI (an embedded
  `sqlite:///<home>/mlflow/mlflow.db`) → `ModelRegistry`, MLflow's model registry.

Both stores keep `champion` / `challenger` aliases with a champion stack for rollback.
The online role reads them (to follow aliases and to find a version's bundle); run
tracking (`registry.tracking`) is MLflow-only and batch-only.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from shelfwise.registry.base import (
    CHALLENGER,
    CHAMPION,
    AliasMove,
    ModelVersion,
    Registry,
    check_version,
    is_local_uri,
)
from shelfwise.registry.local import BundleInfo, BundleStore, LocalRegistry
from shelfwise.registry.mlflow_store import ModelRegistry

if TYPE_CHECKING:
    from shelfwise.config import ShelfwiseConfig


def open_registry(config: ShelfwiseConfig) -> Registry:
    """The store of bundle versions that the config names (see the module docstring).

    Args:
        config: the loaded configuration; only `registry.*`, `project` and the state
            folder are read.

    Returns:
        A `LocalRegistry` or a `ModelRegistry`; MLflow is not contacted until used.

    Example:
        >>> champion = open_registry(config).by_alias(CHAMPION)  # doctest: +SKIP
    """
    settings = config.registry
    model_name = settings.model_name or config.project
    if not settings.enabled:
        return LocalRegistry(config.state_dir(), model_name=model_name)
    uri = settings.registry_uri or settings.tracking_uri
    if uri is not None and is_local_uri(uri):
        return LocalRegistry(_uri_path(uri), model_name=model_name)
    return ModelRegistry.from_config(config)


def registry_at(uri: str, model_name: str, *, cache_dir: Path) -> Registry:
    """The registry a URI names, without a config (the server's `registry_uri` setting).

    A `file:` URI or a plain path opens the local store there; anything else MLflow's
    registry, whose bundles are downloaded under `cache_dir`.
    """
    if is_local_uri(uri):
        return LocalRegistry(_uri_path(uri), model_name=model_name)
    return ModelRegistry(
        tracking_uri=uri, model_name=model_name, experiment=model_name, cache_dir=cache_dir
    )


def _uri_path(uri: str) -> Path:
    parsed = urlparse(uri)
    # file:///abs/path and file:relative/path, the host ignored as MLflow does
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(uri)


__all__ = [
    "AliasMove",
    "BundleInfo",
    "BundleStore",
    "CHALLENGER",
    "CHAMPION",
    "LocalRegistry",
    "ModelRegistry",
    "ModelVersion",
    "Registry",
    "check_version",
    "is_local_uri",
    "open_registry",
    "registry_at",
]
