"""A local store of bundle versions: `home/bundles/1/`, `home/bundles/2/`, ...

`publish` hard-links a finished bundle into a hidden staging folder and renames it to
the next version number, so a killed process leaves no half version (only a hidden
`.N.tmp-*` folder that `list` ignores). Publishing a bundle whose fingerprint is
already stored returns the existing version: reruns on unchanged data create none.

The MLflow registry replaces this store later; the surface stays small on purpose.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from shelfwise._internal.artifacts import link_or_copy_tree
from shelfwise.errors import BundleNotFoundError, ManifestError
from shelfwise.package.bundle import BundleManifest, read_bundle_manifest, verify_bundle

BUNDLES_DIR: Final = "bundles"
_MAX_PUBLISH_ATTEMPTS: Final = 20


@dataclass(frozen=True)
class BundleInfo:
    """One stored version.

    Attributes:
        version: 1, 2, 3, ... in publishing order.
        path: the version's folder.
        created_at: when the bundle was written (UTC).
        fingerprint: the bundle's content fingerprint.
        metrics: headline metrics: the manifest's numbers, nested keys joined by ".".
        components: role -> model name.
    """

    version: int
    path: Path
    created_at: datetime
    fingerprint: str
    metrics: dict[str, float]
    components: dict[str, str]

    @classmethod
    def from_manifest(cls, version: int, path: Path, manifest: BundleManifest) -> BundleInfo:
        """Summarise a version from its manifest."""
        return cls(
            version=version,
            path=path,
            created_at=manifest.created_at,
            fingerprint=manifest.fingerprint,
            metrics=headline_metrics(manifest.metrics),
            components=dict(manifest.components),
        )


class BundleStore:
    """Numbered bundle versions under `home/bundles/`.

    Args:
        home: the state folder (`SHELFWISE_HOME`); `bundles/` is created on publish.
    """

    def __init__(self, home: Path) -> None:
        self.home = home
        self.root = home / BUNDLES_DIR

    def publish(self, bundle_dir: Path) -> BundleInfo:
        """Store a finished bundle as the next version, unless its content is stored.

        The bundle is verified first; its files are hard-linked (copied across
        filesystems) into a staging folder that is renamed into place.

        Returns:
            The new version, or the existing version with the same fingerprint.

        Raises:
            IntegrityError, ManifestError, BundleNotFoundError: the bundle is damaged.
        """
        manifest = verify_bundle(bundle_dir)
        existing = self._find_fingerprint(manifest.fingerprint)
        if existing is not None:
            return existing
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / f".publish.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            link_or_copy_tree(bundle_dir, staging)
            for _ in range(_MAX_PUBLISH_ATTEMPTS):
                version = max(self._versions(), default=0) + 1
                final = self.root / str(version)
                try:
                    # A rename onto an existing non-empty folder fails: a concurrent
                    # publisher that took this number makes us try the next one.
                    staging.rename(final)
                except OSError:
                    if not final.exists():
                        raise
                    continue
                return BundleInfo.from_manifest(version, final, manifest)
            raise ManifestError(
                f"could not claim a version number under {self.root} after "
                f"{_MAX_PUBLISH_ATTEMPTS} tries; is another process publishing in a loop?"
            )
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def list(self) -> builtins.list[BundleInfo]:
        """Every stored version, oldest first (unreadable versions are skipped)."""
        infos: list[BundleInfo] = []
        for version in sorted(self._versions()):
            path = self.root / str(version)
            with contextlib.suppress(ManifestError, BundleNotFoundError):
                infos.append(BundleInfo.from_manifest(version, path, read_bundle_manifest(path)))
        return infos

    def get(self, version: int) -> BundleInfo:
        """One stored version.

        Raises:
            BundleNotFoundError: no such version; the message lists those that exist.
        """
        path = self.root / str(version)
        if version in self._versions():
            with contextlib.suppress(ManifestError):
                return BundleInfo.from_manifest(version, path, read_bundle_manifest(path))
        stored = sorted(self._versions())
        known = ", ".join(str(v) for v in stored) if stored else "none"
        raise BundleNotFoundError(
            f"bundle version {version} is not in {self.root}; stored versions: {known}"
        )

    def latest(self) -> BundleInfo | None:
        """The highest stored version, or None when the store is empty."""
        infos = self.list()
        return infos[-1] if infos else None

    def _versions(self) -> set[int]:
        if not self.root.is_dir():
            return set()
        return {
            int(entry.name)
            for entry in self.root.iterdir()
            if entry.is_dir() and entry.name.isdigit() and int(entry.name) > 0
        }

    def _find_fingerprint(self, fingerprint: str) -> BundleInfo | None:
        for info in self.list():
            if info.fingerprint == fingerprint:
                return info
        return None


def headline_metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The numbers in a (possibly nested) metrics mapping, nested keys joined by "."."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            flat[name] = float(value)
        elif isinstance(value, dict):
            flat.update(headline_metrics(value, prefix=f"{name}."))
    return flat
