"""Model registry (MLflow): run tracking, bundle versions, aliases, the gate's moves.

Batch role only; the online role is handed a bundle path (`ModelRegistry.local_path`).
"""

from __future__ import annotations

from shelfwise.registry.store import (
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
    "ModelRegistry",
    "ModelVersion",
    "check_version",
]
