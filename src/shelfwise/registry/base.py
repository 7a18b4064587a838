"""What every registry shares: the `Registry` protocol, the version record, aliases.

Two stores implement `Registry`, chosen by URI the way MLflow picks its stores
(`shelfwise.registry.open_registry`):

- `LocalRegistry` (`registry.local`): numbered bundle folders under `<home>/bundles/`,
  aliases and their history in `<home>/bundles/registry.json`;
- `ModelRegistry` (`registry.mlflow_store`): versions of one MLflow registered model.

Both move the same two aliases with the same history: `champion` (what `shelfwise
serve` serves) and `challenger` (the newest candidate that did not become champion).
Promote pushes onto a stack of champions and rollback pops it, so "the previous
champion" is known whichever store holds the versions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol
from urllib.parse import urlparse

from shelfwise.errors import RegistryError

if TYPE_CHECKING:
    from shelfwise.package.bundle import BundleManifest

CHAMPION: Final = "champion"
CHALLENGER: Final = "challenger"
TAG_FINGERPRINT: Final = "shelfwise.fingerprint"
TAG_DATA_FINGERPRINT: Final = "shelfwise.data_fingerprint"
TAG_DATA_CUTOFF: Final = "shelfwise.data_cutoff"
TAG_RUN: Final = "shelfwise.run_id"
TAG_GATE: Final = "shelfwise.gate"
HISTORY_ENTRIES: Final = 40  # alias moves and champions kept (MLflow tag values are bounded)
_VERSION: Final = re.compile(r"[1-9][0-9]{0,8}")
# what MLflow refuses in metric and parameter names
UNSAFE_NAME_CHARS: Final = re.compile(r"[^A-Za-z0-9_\-./ ]")


@dataclass(frozen=True)
class ModelVersion:
    """One registered bundle version.

    Attributes:
        version: the version number, as a string ("1", "2", ...).
        source: where the bundle lives: a local folder (local store) or an MLflow
            artifact URI.
        mlflow_run_id: the MLflow run that logged it (None in the local store).
        aliases: the aliases pointing at it.
        created_at: registration time (UTC).
        tags: its tags (fingerprints, our run id, gate decision).
        metrics: headline numbers, named like MLflow run metrics (`headline/ndcg_at_10`).
    """

    version: str
    source: str
    mlflow_run_id: str | None
    aliases: tuple[str, ...]
    created_at: datetime
    tags: dict[str, str]
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        """The bundle's content fingerprint."""
        return self.tags.get(TAG_FINGERPRINT, "")

    @property
    def run_id(self) -> str:
        """The shelfwise run (folder under runs/) that built it."""
        return self.tags.get(TAG_RUN, "")

    @property
    def folder(self) -> Path | None:
        """The bundle's folder when the store keeps it as a plain folder on this machine.

        None for MLflow artifact URIs: those may be remote (`Registry.local_path`
        downloads them).
        """
        return None if urlparse(self.source).scheme else Path(self.source)


@dataclass(frozen=True)
class AliasMove:
    """What an alias move changed."""

    alias: str
    old: str | None
    new: str | None
    reason: str


class Registry(Protocol):
    """Bundle versions with `champion` / `challenger` aliases, in some store.

    Every method that names a version takes a number (`3` or `"3"`) and refuses
    anything else (`check_version`). Unknown versions raise `RegistryError`, whose
    message lists the stored ones.
    """

    @property
    def model_name(self) -> str:
        """The registered model (one per project)."""
        ...

    @property
    def location(self) -> str:
        """Where the versions live, for messages (a URI or a folder)."""
        ...

    def publish(
        self,
        bundle_dir: Path,
        *,
        tags: Mapping[str, str] | None = None,
        tracked_run: str | None = None,
    ) -> tuple[ModelVersion, bool]:
        """Store a finished bundle folder as the next version, unless its content is stored.

        Args:
            bundle_dir: the bundle (`runs/<run_id>/package/bundle`).
            tags: extra tags for a new version (e.g. `TAG_RUN`); the store adds the
                bundle and data fingerprints and the data cutoff from the manifest.
            tracked_run: the MLflow run tracking this pipeline run, which then holds the
                bundle as its artifacts (MLflow store; the local store ignores it).

        Returns:
            The version, and True when it is new (False: an existing version has the
            same bundle fingerprint and is returned instead).
        """
        ...

    def versions(self) -> list[ModelVersion]:
        """Every version, oldest first, with aliases and headline metrics."""
        ...

    def get(self, version: str | int) -> ModelVersion:
        """One version (RegistryError when there is none)."""
        ...

    def by_alias(self, alias: str) -> ModelVersion | None:
        """The version an alias points at, or None."""
        ...

    def set_tag(self, version: str, key: str, value: str) -> None:
        """Tag a version (e.g. the gate's decision)."""
        ...

    def promote(self, version: str | int, reason: str) -> AliasMove:
        """Make `version` the champion; a promoted challenger loses `challenger`."""
        ...

    def mark_challenger(self, version: str | int, reason: str) -> AliasMove:
        """Point `challenger` at `version` (the champion is left alone)."""
        ...

    def drop_challenger(self, reason: str) -> AliasMove:
        """Remove the `challenger` alias; the version is kept."""
        ...

    def rollback(self, reason: str = "rollback") -> AliasMove:
        """Champion back to the previous champion (RegistryError when there is none)."""
        ...

    def champion_stack(self) -> list[str]:
        """Champion versions in the order they were promoted (the last is current)."""
        ...

    def alias_log(self) -> list[dict[str, Any]]:
        """The latest alias moves, oldest first: alias, old, new, reason, at."""
        ...

    def local_path(self, version: str | int) -> Path:
        """A local folder holding the version's bundle (downloaded for remote stores).

        Raises:
            BundleNotFoundError: the bundle's files are gone.
        """
        ...


def check_version(version: str | int) -> str:
    """A version number as a string; anything else (paths, names) is refused."""
    text = str(version).strip()
    if not _VERSION.fullmatch(text):
        raise RegistryError(f"{str(version)[:40]!r} is not a model version; use a number like 3")
    return text


def manifest_tags(manifest: BundleManifest) -> dict[str, str]:
    """The tags every store gives a new version from its bundle's manifest.

    The run that built the bundle (`TAG_RUN`, which the caller may override with the
    run that publishes it), the data fingerprint and the data cutoff.
    """
    tags = {
        TAG_DATA_FINGERPRINT: manifest.data_fingerprint,
        TAG_DATA_CUTOFF: str(manifest.lineage.get("data_cutoff_timestamp", "")),
    }
    built_by = manifest.lineage.get("run_id")
    if built_by:
        tags[TAG_RUN] = str(built_by)
    return tags


def is_local_uri(uri: str) -> bool:
    """True for the URIs of the local store: `file:` URIs and plain paths.

    Everything else (`sqlite:`, `http:`, `https:`, `databricks`, ...) is MLflow's, as
    MLflow itself picks its stores by scheme. A one-letter scheme is a Windows drive.
    """
    scheme = urlparse(uri).scheme
    return scheme in ("", "file") or len(scheme) == 1


def metric_name(*parts: str) -> str:
    """An MLflow-safe metric name: parts joined by "/", "@" written "_at_"."""
    joined = "/".join(p for p in parts if p)
    return UNSAFE_NAME_CHARS.sub("_", joined.replace("@", "_at_"))


def flatten_numbers(value: Any, prefix: str = "") -> dict[str, float]:
    """The numbers of a nested mapping, keys joined by "/" (bools and NaN dropped)."""
    flat: dict[str, float] = {}
    if isinstance(value, Mapping):
        for key, inner in value.items():
            flat.update(flatten_numbers(inner, f"{prefix}/{key}" if prefix else str(key)))
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        if number == number and abs(number) != float("inf"):
            flat[metric_name(prefix)] = number
    return flat
