"""Packaging: the versioned bundle the online role serves, and the local version store.

`write_bundle` turns a `BundleSpec` into a bundle folder, `verify_bundle` re-hashes
one, and `BundleStore` keeps numbered versions under `SHELFWISE_HOME/bundles/`.
"""

from __future__ import annotations

from shelfwise.package.bundle import (
    BundleManifest,
    BundleSpec,
    read_bundle_manifest,
    verify_bundle,
    write_bundle,
)
from shelfwise.package.store import BundleInfo, BundleStore

__all__ = [
    "BundleInfo",
    "BundleManifest",
    "BundleSpec",
    "BundleStore",
    "read_bundle_manifest",
    "verify_bundle",
    "write_bundle",
]
