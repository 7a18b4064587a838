"""package: the versioned bundle the online role serves.

`write_bundle` turns a `BundleSpec` into a bundle folder, `verify_bundle` re-hashes
one; the stage (`package.stage`) assembles the spec from the run's stage folders.
Where versions are kept is the registry's job (`shelfwise.registry`).
"""

from __future__ import annotations

from shelfwise.package.bundle import (
    BundleManifest,
    BundleSpec,
    read_bundle_manifest,
    read_event_weights,
    read_repeat_policy,
    verify_bundle,
    write_bundle,
)

__all__ = [
    "BundleManifest",
    "BundleSpec",
    "read_bundle_manifest",
    "read_event_weights",
    "read_repeat_policy",
    "verify_bundle",
    "write_bundle",
]
