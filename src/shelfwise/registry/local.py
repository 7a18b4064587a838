"""The local store of bundle versions: `home/bundles/1/`, `home/bundles/2/`, ...

`BundleStore` keeps the numbered folders. `publish` hard-links a finished bundle into
a hidden staging folder and renames it to the next version number, so a killed
process leaves no half version (only a hidden `.publish.tmp-*` folder that `list`
ignores). Publishing a bundle whose fingerprint is already stored returns the
existing version: reruns on unchanged data create none.

`LocalRegistry` is the `Registry` (see `registry.base`) over a `BundleStore`: the
aliases, the champion stack, the alias log and version tags live in
`home/bundles/registry.json`, rewritten atomically on every move, with the same
semantics as the MLflow store. A store written before that file existed reads as if
its latest version were champion, which is what was served from it then; the first
publish writes the file before the new version appears, so a kill in between never
makes an ungated version champion that way.

Every read-modify-write of `registry.json` and every publish holds `bundles/.lock`
(`file_lock`, released by the kernel when a process dies): two processes promoting at
once both land, one after the other, instead of one overwriting the other.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import psutil

from shelfwise._internal.artifacts import (
    atomic_write_json,
    crash_point,
    file_lock,
    link_or_copy_tree,
)
from shelfwise.errors import BundleNotFoundError, ManifestError, RegistryError
from shelfwise.package.bundle import BundleManifest, read_bundle_manifest, verify_bundle
from shelfwise.registry.base import (
    CHALLENGER,
    CHAMPION,
    HISTORY_ENTRIES,
    TAG_FINGERPRINT,
    AliasMove,
    ModelVersion,
    check_version,
    flatten_numbers,
    manifest_tags,
)

BUNDLES_DIR: Final = "bundles"
REGISTRY_FILE: Final = "registry.json"
LOCK_FILE: Final = ".lock"
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
        return self.publish_new(bundle_dir)[0]

    def publish_new(self, bundle_dir: Path) -> tuple[BundleInfo, bool]:
        """`publish`, also saying whether the version is new (False: content was stored)."""
        manifest = verify_bundle(bundle_dir)
        with self.locked():
            return self._publish_verified(bundle_dir, manifest)

    def locked(self) -> contextlib.AbstractContextManager[None]:
        """Hold the store's lock (`bundles/.lock`) for a block of reads and writes."""
        return file_lock(self.root / LOCK_FILE)

    def _publish_verified(
        self, bundle_dir: Path, manifest: BundleManifest
    ) -> tuple[BundleInfo, bool]:
        existing = self._find_fingerprint(manifest.fingerprint)
        if existing is not None:
            return existing, False
        _remove_dead_stagings(self.root)
        staging = self.root / f".publish.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            link_or_copy_tree(bundle_dir, staging)
            crash_point("local-store:staged")
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
                return BundleInfo.from_manifest(version, final, manifest), True
            raise ManifestError(
                f"could not claim a version number under {self.root} after "
                f"{_MAX_PUBLISH_ATTEMPTS} tries; is another process publishing in a loop?"
            )
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def list(self) -> builtins.list[BundleInfo]:
        """Every stored version, oldest first (unreadable versions are skipped)."""
        return [BundleInfo.from_manifest(*entry) for entry in self.manifests()]

    def manifests(self) -> Iterator[tuple[int, Path, BundleManifest]]:
        """(version, folder, manifest) of every readable version, oldest first."""
        for version in sorted(self._versions()):
            path = self.root / str(version)
            with contextlib.suppress(ManifestError, BundleNotFoundError):
                yield version, path, read_bundle_manifest(path)

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


@dataclass
class _State:
    """`registry.json`: what MLflow keeps on the registered model, kept in one file."""

    aliases: dict[str, str] = field(default_factory=dict)
    champions: list[str] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "aliases": self.aliases,
            "champions": self.champions,
            "log": self.log,
            "tags": self.tags,
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> _State:
        return cls(
            aliases={str(k): str(v) for k, v in (value.get("aliases") or {}).items()},
            champions=[str(v) for v in value.get("champions") or []],
            log=[dict(entry) for entry in value.get("log") or []],
            tags={
                str(version): {str(k): str(v) for k, v in tags.items()}
                for version, tags in (value.get("tags") or {}).items()
            },
        )


class LocalRegistry:
    """The `Registry` over a `BundleStore`: versions, aliases and their history on disk.

    Args:
        home: the folder holding `bundles/` (the state folder by default).
        model_name: the name shown in messages (the project name in `open_registry`).

    Example:
        >>> registry = LocalRegistry(home, model_name="shop")  # doctest: +SKIP
        >>> version, new = registry.publish(run_dir / "package" / "bundle")  # doctest: +SKIP
        >>> registry.promote(version.version, "first")  # doctest: +SKIP
    """

    def __init__(self, home: Path, *, model_name: str = "shelfwise") -> None:
        self.store = BundleStore(home)
        self.model_name = model_name
        self.state_path = self.store.root / REGISTRY_FILE

    @property
    def location(self) -> str:
        """The `bundles/` folder."""
        return str(self.store.root)

    # --- versions -----------------------------------------------------------------

    def publish(
        self,
        bundle_dir: Path,
        *,
        tags: Mapping[str, str] | None = None,
        tracked_run: str | None = None,
    ) -> tuple[ModelVersion, bool]:
        """Store a bundle as the next version, unless its content is stored.

        Args:
            bundle_dir: the bundle folder; verified before anything is written.
            tags: extra tags for a new version (e.g. the publishing run).
            tracked_run: ignored: runs are tracked in MLflow only.

        Returns:
            The version, and True when it is new.
        """
        del tracked_run
        with self.store.locked():
            # Read before the new folder appears: a store without registry.json reads as
            # "latest is champion", and the latest must be the one served until now.
            # Written now, so that a kill after the folder appears changes nothing.
            state = self._read_state()
            if not self.state_path.is_file():
                self._write_state(state)
            info, new = self.store.publish_new(bundle_dir)
            crash_point("local-store:published")
            # a publisher killed before it wrote the tags: the rerun writes them
            if new or str(info.version) not in state.tags:
                state.tags[str(info.version)] = dict(tags or {})
                self._write_state(state)
            return self.get(info.version), new

    def versions(self) -> list[ModelVersion]:
        """Every readable version, oldest first, with aliases and headline metrics."""
        state = self._read_state()
        return [
            self._record(version, path, manifest, state)
            for version, path, manifest in self.store.manifests()
        ]

    def get(self, version: str | int) -> ModelVersion:
        """One version.

        Raises:
            RegistryError: not a version number, or no such version (the message lists
                those that exist).
        """
        number = int(check_version(version))
        path = self.store.root / str(number)
        if (path / "manifest.json").is_file():
            with contextlib.suppress(ManifestError, BundleNotFoundError):
                manifest = read_bundle_manifest(path)
                return self._record(number, path, manifest, self._read_state())
        known = ", ".join(str(v) for v, _, _ in self.store.manifests()) or "none"
        raise RegistryError(
            f"model {self.model_name!r} has no version {number} in {self.store.root}; "
            f"versions: {known} (`shelfwise models` lists them)"
        )

    def by_alias(self, alias: str) -> ModelVersion | None:
        """The version an alias points at, or None."""
        number = self._read_state().aliases.get(alias)
        return None if number is None else self.get(number)

    def set_tag(self, version: str, key: str, value: str) -> None:
        """Tag a version (e.g. the gate's decision)."""
        number = self.get(version).version
        with self.store.locked():
            state = self._read_state()
            state.tags.setdefault(number, {})[key] = value
            self._write_state(state)

    def local_path(self, version: str | int) -> Path:
        """The version's folder.

        Raises:
            RegistryError: no such version.
            BundleNotFoundError: its files are gone.
        """
        found = self.get(version)
        path = self.store.root / found.version
        if not (path / "manifest.json").is_file():
            raise BundleNotFoundError(
                f"version {found.version} of {self.model_name!r} at {path} holds no bundle "
                "(deleted?); promote another version or rerun the pipeline"
            )
        return path

    # --- aliases ------------------------------------------------------------------

    def promote(self, version: str | int, reason: str) -> AliasMove:
        """Make `version` the champion; the old champion stays in the history.

        A promoted challenger loses the `challenger` alias.
        """
        target = self.get(version).version
        with self.store.locked():
            state = self._read_state()
            old = state.aliases.get(CHAMPION)
            state.aliases[CHAMPION] = target
            if state.aliases.get(CHALLENGER) == target:
                del state.aliases[CHALLENGER]
            if old != target:
                state.champions = [*state.champions, target][-HISTORY_ENTRIES:]
            return self._commit(state, AliasMove(CHAMPION, old, target, reason))

    def mark_challenger(self, version: str | int, reason: str) -> AliasMove:
        """Point `challenger` at `version` (the champion is left alone)."""
        target = self.get(version).version
        with self.store.locked():
            state = self._read_state()
            old = state.aliases.get(CHALLENGER)
            state.aliases[CHALLENGER] = target
            return self._commit(state, AliasMove(CHALLENGER, old, target, reason))

    def drop_challenger(self, reason: str) -> AliasMove:
        """Remove the `challenger` alias (a rolled-back canary); the version is kept."""
        with self.store.locked():
            state = self._read_state()
            old = state.aliases.pop(CHALLENGER, None)
            return self._commit(state, AliasMove(CHALLENGER, old, None, reason))

    def rollback(self, reason: str = "rollback") -> AliasMove:
        """Champion back to the previous champion; the rolled-back version is kept.

        Raises:
            RegistryError: no champion, or no earlier champion to go back to.
        """
        with self.store.locked():
            state = self._read_state()
            current = state.aliases.get(CHAMPION)
            if current is None:
                raise RegistryError(f"model {self.model_name!r} has no champion to roll back")
            stack = list(state.champions)
            while stack and stack[-1] == current:
                stack.pop()
            if not stack:
                raise RegistryError(
                    f"version {current} is the first champion of {self.model_name!r}: there "
                    "is no earlier one to roll back to (`shelfwise promote VERSION` picks one)"
                )
            target = self.get(stack[-1]).version
            state.aliases[CHAMPION] = target
            state.champions = stack
            return self._commit(state, AliasMove(CHAMPION, current, target, reason))

    def champion_stack(self) -> list[str]:
        """Champion versions in the order they were promoted (the last is current)."""
        return list(self._read_state().champions)

    def alias_log(self) -> list[dict[str, Any]]:
        """The latest alias moves, oldest first: alias, old, new, reason, at."""
        return [dict(entry) for entry in self._read_state().log]

    # --- internals ----------------------------------------------------------------

    def _record(
        self, version: int, path: Path, manifest: BundleManifest, state: _State
    ) -> ModelVersion:
        number = str(version)
        return ModelVersion(
            version=number,
            source=str(path),
            mlflow_run_id=None,
            aliases=tuple(sorted(a for a, v in state.aliases.items() if v == number)),
            created_at=manifest.created_at,
            tags={
                **manifest_tags(manifest),
                TAG_FINGERPRINT: manifest.fingerprint,
                **state.tags.get(number, {}),
            },
            metrics=flatten_numbers(manifest.metrics),
        )

    def _read_state(self) -> _State:
        if not self.state_path.is_file():
            latest = self.store.latest()
            if latest is None:
                return _State()
            # a store from before registry.json: its latest version was the one served
            number = str(latest.version)
            return _State(aliases={CHAMPION: number}, champions=[number])
        try:
            value = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RegistryError(
                f"cannot read {self.state_path}: {exc}; restore it from a backup or delete "
                "it (the latest version then reads as champion)"
            ) from exc
        if not isinstance(value, dict):
            raise RegistryError(
                f"{self.state_path} holds {type(value).__name__}, expected a JSON object; "
                "restore it from a backup or delete it"
            )
        return _State.from_json(value)

    def _write_state(self, state: _State) -> None:
        self.store.root.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.state_path, state.to_json())

    def _commit(self, state: _State, move: AliasMove) -> AliasMove:
        entry = {
            "alias": move.alias,
            "old": move.old,
            "new": move.new,
            "reason": move.reason[:200],
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        state.log = [*state.log, entry][-HISTORY_ENTRIES:]
        self._write_state(state)
        return move


def _remove_dead_stagings(root: Path) -> None:
    """Delete `.publish.tmp-<pid>-*` folders of publishers that are gone (killed)."""
    for leftover in root.glob(".publish.tmp-*"):
        pid = leftover.name.removeprefix(".publish.tmp-").split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not psutil.pid_exists(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)


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
