"""registry: where bundle versions live: MLflow (versions, aliases, run tracking) or a local store.

`ModelRegistry` wraps MLflow's model registry (`champion` / `challenger` aliases);
`BundleStore` keeps numbered versions under `<home>/bundles/` when the registry is
off. The online role reads both (to follow aliases and to find a version's bundle);
run tracking (`registry.tracking`) is batch-only.
"""

from __future__ import annotations

from shelfwise.registry.local import BundleInfo, BundleStore
from shelfwise.registry.mlflow_store import (
    CHALLENGER,
    CHAMPION,
    AliasMove,
    ModelRegistry,
    ModelVersion,
    check_version,
)

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "AliasMove",
    "BundleInfo",
    "BundleStore",
    "ModelRegistry",
    "ModelVersion",
    "check_version",
]
