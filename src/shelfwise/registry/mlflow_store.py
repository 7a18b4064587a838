"""The MLflow store of bundle versions, with `champion` / `challenger` aliases.

`ModelRegistry` implements `registry.base.Registry` over MLflow's model registry (the
local store is `registry.local.LocalRegistry`). One registered model per project
(`registry.model_name`, default the project name). A version is a bundle logged as the
artifacts (`bundle/`) of the pipeline's MLflow run; its tags carry the bundle
fingerprint, the data fingerprint and cutoff, our run id and the gate's decision.
Aliases, never the deprecated stages:

- `champion`: what `shelfwise serve` serves;
- `challenger`: the newest candidate that did not (yet) become champion.

Rollback needs the champions' order, which aliases do not keep: the registered model's
tag `shelfwise.champions` holds the stack of champion versions (promote pushes,
rollback pops) and `shelfwise.alias_log` the last moves with their reasons, so the
history survives every move. Default store: an embedded `sqlite:///` database under
the state folder; `registry.tracking_uri` points at a team server with no code change.

MLflow is imported lazily: it is a batch-role dependency (the online role gets a path).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote, urlparse

from shelfwise._internal.artifacts import crash_point
from shelfwise.errors import BundleNotFoundError, RegistryError
from shelfwise.package.bundle import verify_bundle
from shelfwise.registry.base import (
    CHALLENGER,
    CHAMPION,
    HISTORY_ENTRIES,
    TAG_DATA_CUTOFF,
    TAG_DATA_FINGERPRINT,
    TAG_FINGERPRINT,
    TAG_GATE,
    TAG_RUN,
    AliasMove,
    ModelVersion,
    check_version,
    manifest_tags,
)
from shelfwise.registry.mlflow_setup import (
    fail_orphaned_runs,
    prepare_sqlite_store,
    process_tags,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion as MlflowVersion

    from shelfwise.config import ShelfwiseConfig

BUNDLE_ARTIFACT: Final = "bundle"
TAG_CHAMPIONS: Final = "shelfwise.champions"
TAG_ALIAS_LOG: Final = "shelfwise.alias_log"


class ModelRegistry:
    """Versions of one project's bundles in an MLflow registry.

    Args:
        tracking_uri: MLflow tracking store (e.g. `sqlite:////abs/path/mlflow.db`).
        registry_uri: MLflow registry store (default: the tracking store).
        model_name: the registered model.
        experiment: MLflow experiment for the runs.
        artifact_location: where a new experiment stores artifacts (None: MLflow's default).
        cache_dir: where bundles of remote stores are downloaded to.
    """

    def __init__(
        self,
        *,
        tracking_uri: str,
        model_name: str,
        experiment: str,
        registry_uri: str | None = None,
        artifact_location: str | None = None,
        cache_dir: Path,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri or tracking_uri
        self.model_name = model_name
        self.experiment = experiment
        self.artifact_location = artifact_location
        self.cache_dir = cache_dir
        self._client: MlflowClient | None = None

    @classmethod
    def from_config(cls, config: ShelfwiseConfig) -> ModelRegistry:
        """The registry the config names (embedded sqlite under the state folder by default)."""
        home = config.state_dir().resolve()
        settings = config.registry
        artifact_location = None
        tracking_uri = settings.tracking_uri
        if tracking_uri is None:
            (home / "mlflow").mkdir(parents=True, exist_ok=True)
            tracking_uri = f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"
            artifact_location = (home / "mlflow" / "artifacts").as_uri()
        return cls(
            tracking_uri=tracking_uri,
            registry_uri=settings.registry_uri,
            model_name=settings.model_name or config.project,
            experiment=settings.experiment or config.project,
            artifact_location=artifact_location,
            cache_dir=home / "mlflow" / "downloads",
        )

    @property
    def client(self) -> MlflowClient:
        """The MLflow client (created on first use)."""
        if self._client is None:
            with _mlflow_errors("connect to"):
                from mlflow import MlflowClient

                # an embedded sqlite store appears whole or not at all (mlflow_setup)
                for uri in dict.fromkeys((self.tracking_uri, self.registry_uri)):
                    prepare_sqlite_store(uri)
                self._client = MlflowClient(
                    tracking_uri=self.tracking_uri, registry_uri=self.registry_uri
                )
        return self._client

    # --- runs ---------------------------------------------------------------------

    def experiment_id(self) -> str:
        """The experiment's id, created on first use."""
        with _mlflow_errors("open the experiment of"):
            found = self.client.get_experiment_by_name(self.experiment)
            if found is not None:
                return str(found.experiment_id)
            return str(
                self.client.create_experiment(
                    self.experiment, artifact_location=self.artifact_location
                )
            )

    def start_run(self, run_name: str, tags: Mapping[str, str] | None = None) -> str:
        """Create a run in the experiment, recording this process (see `mlflow_setup`).

        RUNNING runs of killed processes on this host are marked FAILED first.
        """
        with _mlflow_errors("start a run in"):
            experiment_id = self.experiment_id()
            fail_orphaned_runs(self.client, experiment_id)
            run = self.client.create_run(
                experiment_id, run_name=run_name, tags={**(tags or {}), **process_tags()}
            )
        return str(run.info.run_id)

    def fail_orphaned_runs(self) -> list[str]:
        """Mark FAILED the RUNNING runs of this host's killed processes; their ids."""
        with _mlflow_errors("update the runs of"):
            return fail_orphaned_runs(self.client, self.experiment_id())

    # --- versions -----------------------------------------------------------------

    @property
    def location(self) -> str:
        """The registry store's URI, for messages."""
        return self.registry_uri

    def publish(
        self,
        bundle_dir: Path,
        *,
        tags: Mapping[str, str] | None = None,
        tracked_run: str | None = None,
    ) -> tuple[ModelVersion, bool]:
        """Log a bundle folder as an MLflow run's `bundle/` artifacts and register it.

        The bundle is verified first (`verify_bundle`: hashes, fields, signature when a
        key is set). A bundle whose fingerprint is already a version is not uploaded
        again: that version is returned (a rerun, or a run resumed after a kill).

        Args:
            bundle_dir: the bundle folder.
            tags: extra tags for a new version; the manifest's fingerprints and data
                cutoff are added.
            tracked_run: the MLflow run tracking the pipeline run (`RunLogger`), which
                gets the bundle; without one, a run of its own is opened and closed.

        Returns:
            The version, and True when it is new (see `register`).
        """
        manifest = verify_bundle(bundle_dir)  # never store a damaged or unsigned bundle
        for existing in self.versions(with_metrics=False):
            if existing.fingerprint == manifest.fingerprint:
                return existing, False  # a resumed or cached rerun: no second upload
        version_tags = {**manifest_tags(manifest), **(tags or {})}
        run_id = tracked_run
        if run_id is None:
            run_id = self.start_run(version_tags.get(TAG_RUN) or "publish")
        with _mlflow_errors("upload the bundle to"):
            self.client.log_artifacts(run_id, str(bundle_dir), BUNDLE_ARTIFACT)
            crash_point("publish:bundle-uploaded")
            if tracked_run is None:
                self.client.set_terminated(run_id)
        return self.register(run_id, manifest.fingerprint, version_tags)

    def register(
        self, mlflow_run_id: str, fingerprint: str, tags: dict[str, str]
    ) -> tuple[ModelVersion, bool]:
        """Register the bundle logged under `mlflow_run_id`, unless its content is stored.

        Returns:
            The version, and True when it is new (False: an existing version has the
            same bundle fingerprint, and is returned instead).
        """
        for existing in self.versions(with_metrics=False):
            if existing.fingerprint == fingerprint:
                return existing, False
        with _mlflow_errors("register a version in"):
            client = self.client
            with contextlib.suppress(Exception):  # already exists
                client.create_registered_model(
                    self.model_name, description="shelfwise bundles (recommend + search)"
                )
            run = client.get_run(mlflow_run_id)
            created = client.create_model_version(
                self.model_name,
                source=f"{run.info.artifact_uri}/{BUNDLE_ARTIFACT}",
                run_id=mlflow_run_id,
                tags={**tags, TAG_FINGERPRINT: fingerprint},
            )
        return self.get(str(created.version)), True

    def versions(self, *, with_metrics: bool = True) -> list[ModelVersion]:
        """Every version, oldest first, with aliases (and its run's metrics)."""
        with _mlflow_errors("list the versions of"):
            if not self._model_exists():
                return []
            aliases = self._aliases()
            found = self.client.search_model_versions(f"name='{self.model_name}'")
            versions = [self._convert(v, aliases) for v in found]
            if with_metrics:
                versions = [self._with_metrics(v) for v in versions]
        return sorted(versions, key=lambda v: int(v.version))

    def get(self, version: str | int) -> ModelVersion:
        """One version.

        Raises:
            RegistryError: not a version number, or no such version (the message lists
                those that exist).
        """
        number = check_version(version)
        with _mlflow_errors("read a version of"):
            if self._model_exists():
                with contextlib.suppress(Exception):
                    found = self.client.get_model_version(self.model_name, number)
                    return self._with_metrics(self._convert(found, self._aliases()))
        known = ", ".join(v.version for v in self.versions(with_metrics=False)) or "none"
        raise RegistryError(
            f"model {self.model_name!r} has no version {number}; versions: {known} "
            "(`shelfwise models` lists them)"
        )

    def by_alias(self, alias: str) -> ModelVersion | None:
        """The version an alias points at, or None."""
        with _mlflow_errors("read the aliases of"):
            if not self._model_exists():
                return None
            number = self._aliases().get(alias)
        return None if number is None else self.get(number)

    def set_tag(self, version: str, key: str, value: str) -> None:
        """Tag a version (e.g. the gate's decision)."""
        with _mlflow_errors("tag a version in"):
            self.client.set_model_version_tag(self.model_name, check_version(version), key, value)

    # --- aliases ------------------------------------------------------------------

    def promote(self, version: str | int, reason: str) -> AliasMove:
        """Make `version` the champion; the old champion stays in the history.

        A promoted challenger loses the `challenger` alias.
        """
        target = self.get(version).version
        current = self.by_alias(CHAMPION)
        old = current.version if current else None
        with _mlflow_errors("move the champion alias of"):
            self.client.set_registered_model_alias(self.model_name, CHAMPION, target)
            challenger = self._aliases().get(CHALLENGER)
            if challenger == target:
                self.client.delete_registered_model_alias(self.model_name, CHALLENGER)
            if old != target:
                self._set_champions([*self.champion_stack(), target])
        move = AliasMove(CHAMPION, old, target, reason)
        self._log(move)
        return move

    def mark_challenger(self, version: str | int, reason: str) -> AliasMove:
        """Point `challenger` at `version` (the champion is left alone)."""
        target = self.get(version).version
        old = self._aliases().get(CHALLENGER) if self._model_exists() else None
        with _mlflow_errors("move the challenger alias of"):
            self.client.set_registered_model_alias(self.model_name, CHALLENGER, target)
        move = AliasMove(CHALLENGER, old, target, reason)
        self._log(move)
        return move

    def drop_challenger(self, reason: str) -> AliasMove:
        """Remove the `challenger` alias (a rolled-back canary); the version is kept."""
        old = self._aliases().get(CHALLENGER) if self._model_exists() else None
        if old is not None:
            with _mlflow_errors("move the challenger alias of"):
                self.client.delete_registered_model_alias(self.model_name, CHALLENGER)
        move = AliasMove(CHALLENGER, old, None, reason)
        self._log(move)
        return move

    def rollback(self, reason: str = "rollback") -> AliasMove:
        """Champion back to the previous champion; the rolled-back version is kept.

        Raises:
            RegistryError: no champion, or no earlier champion to go back to.
        """
        current = self.by_alias(CHAMPION)
        if current is None:
            raise RegistryError(f"model {self.model_name!r} has no champion to roll back")
        stack = self.champion_stack()
        while stack and stack[-1] == current.version:
            stack.pop()
        if not stack:
            raise RegistryError(
                f"version {current.version} is the first champion of {self.model_name!r}: "
                "there is no earlier one to roll back to (`shelfwise promote VERSION` picks one)"
            )
        target = stack[-1]
        with _mlflow_errors("move the champion alias of"):
            self.client.set_registered_model_alias(self.model_name, CHAMPION, target)
            self._set_champions(stack)
        move = AliasMove(CHAMPION, current.version, target, reason)
        self._log(move)
        return move

    def champion_stack(self) -> list[str]:
        """Champion versions in the order they were promoted (the last is current)."""
        return [str(v) for v in self._model_tag_json(TAG_CHAMPIONS)]

    def alias_log(self) -> list[dict[str, Any]]:
        """The latest alias moves, oldest first: alias, old, new, reason, at."""
        return [dict(entry) for entry in self._model_tag_json(TAG_ALIAS_LOG)]

    # --- bundles ------------------------------------------------------------------

    def local_path(self, version: str | int) -> Path:
        """A local folder holding the version's bundle (downloaded for remote stores).

        Raises:
            BundleNotFoundError: the bundle's files are gone.
        """
        info = self.get(version)
        parsed = urlparse(info.source)
        if parsed.scheme in ("file", ""):
            path = Path(unquote(parsed.path))
            if not (path / "manifest.json").is_file():
                raise BundleNotFoundError(
                    f"version {info.version} of {self.model_name!r} points at {path}, which "
                    "holds no bundle (deleted?); promote another version or rerun the pipeline"
                )
            return path
        target = self.cache_dir / self.model_name / info.version
        if (target / BUNDLE_ARTIFACT / "manifest.json").is_file():
            return target / BUNDLE_ARTIFACT
        with _mlflow_errors("download a bundle from"):
            from mlflow.artifacts import download_artifacts

            target.mkdir(parents=True, exist_ok=True)
            return Path(download_artifacts(artifact_uri=info.source, dst_path=str(target)))

    # --- internals ----------------------------------------------------------------

    def _model_exists(self) -> bool:
        try:
            self.client.get_registered_model(self.model_name)
        except Exception as exc:  # MlflowException RESOURCE_DOES_NOT_EXIST
            if "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", "")) or (
                "not found" in str(exc).lower() or "does not exist" in str(exc).lower()
            ):
                return False
            raise
        return True

    def _aliases(self) -> dict[str, str]:
        model = self.client.get_registered_model(self.model_name)
        return {alias: str(version) for alias, version in model.aliases.items()}

    def _model_tag_json(self, key: str) -> list[Any]:
        if not self._model_exists():
            return []
        with _mlflow_errors("read the history of"):
            text = self.client.get_registered_model(self.model_name).tags.get(key)
        if not text:
            return []
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return []
        return value if isinstance(value, list) else []

    def _set_champions(self, stack: list[str]) -> None:
        kept = stack[-HISTORY_ENTRIES:]
        self.client.set_registered_model_tag(self.model_name, TAG_CHAMPIONS, json.dumps(kept))

    def _log(self, move: AliasMove) -> None:
        entries = self.alias_log()
        entries.append(
            {
                "alias": move.alias,
                "old": move.old,
                "new": move.new,
                "reason": move.reason[:200],
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        )
        text = json.dumps(entries[-HISTORY_ENTRIES:])
        while len(text) > 4500 and len(entries) > 1:  # MLflow bounds tag values
            entries = entries[1:]
            text = json.dumps(entries[-HISTORY_ENTRIES:])
        with _mlflow_errors("record an alias move in"):
            self.client.set_registered_model_tag(self.model_name, TAG_ALIAS_LOG, text)

    def _convert(self, found: MlflowVersion, aliases: dict[str, str]) -> ModelVersion:
        number = str(found.version)
        return ModelVersion(
            version=number,
            source=str(found.source),
            mlflow_run_id=found.run_id,
            aliases=tuple(sorted(a for a, v in aliases.items() if v == number)),
            created_at=datetime.fromtimestamp(int(found.creation_timestamp) / 1000, tz=UTC),
            tags=dict(found.tags or {}),
        )

    def _with_metrics(self, version: ModelVersion) -> ModelVersion:
        if not version.mlflow_run_id:
            return version
        try:
            metrics = dict(self.client.get_run(version.mlflow_run_id).data.metrics)
        except Exception:  # a deleted run keeps its version usable
            metrics = {}
        return ModelVersion(
            version=version.version,
            source=version.source,
            mlflow_run_id=version.mlflow_run_id,
            aliases=version.aliases,
            created_at=version.created_at,
            tags=version.tags,
            metrics={k: float(v) for k, v in metrics.items()},
        )


@contextlib.contextmanager
def _mlflow_errors(action: str) -> Iterator[None]:
    """Turn MLflow's exceptions into RegistryError with what we were doing."""
    try:
        yield
    except (RegistryError, BundleNotFoundError):
        raise
    except ImportError as exc:
        raise RegistryError(
            f"MLflow is not installed ({exc}); install shelfwise[train] or set "
            "registry.enabled: false"
        ) from None
    except Exception as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RegistryError(
            f"could not {action} the MLflow registry: {first_line[:300]} "
            "(check registry.tracking_uri)"
        ) from exc


__all__ = [
    "BUNDLE_ARTIFACT",
    "CHALLENGER",
    "CHAMPION",
    "TAG_ALIAS_LOG",
    "TAG_CHAMPIONS",
    "TAG_DATA_CUTOFF",
    "TAG_DATA_FINGERPRINT",
    "TAG_FINGERPRINT",
    "TAG_GATE",
    "TAG_RUN",
    "AliasMove",
    "ModelRegistry",
    "ModelVersion",
    "check_version",
]
