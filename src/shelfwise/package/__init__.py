"""package: the versioned bundle the online role serves.

`write_bundle` turns a `BundleSpec` into a bundle folder, `verify_bundle` re-hashes
one; the stage (`package.stage`) assembles the spec from the run's stage folders.
Where versions are kept is the registry's job (`shelfwise.registry`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shelfwise.package.bundle import (
    BundleManifest,
    BundleSpec,
    read_bundle_manifest,
    verify_bundle,
    write_bundle,
)

if TYPE_CHECKING:
    from shelfwise._internal.stage import StageContext, StageResult


def run(ctx: StageContext) -> StageResult:
    """The package stage (imports its training-side modules on call)."""
    from shelfwise.package.stage import run as run_stage

    return run_stage(ctx)


__all__ = [
    "BundleManifest",
    "BundleSpec",
    "read_bundle_manifest",
    "run",
    "verify_bundle",
    "write_bundle",
]
