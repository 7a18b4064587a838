"""Log a pipeline run to MLflow: parameters, metrics, timings and artifacts.

Every `shelfwise run` is one MLflow run named by the shelfwise run id:

- parameters: the whole config, flattened to dotted keys;
- metrics: every number the stages report (`evaluate/metrics.json`, the click model,
  search variants, compression), named `<split>/<model>/<metric>` with `@K` written
  `_at_K` (MLflow's metric names allow letters, digits, `_ - . / ` and spaces);
  per-stage seconds and peak memory; later the gate's numbers;
- artifacts: the bundle (`bundle/`, the registered version's source), the run record
  and, once written, the report.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

from shelfwise.registry.base import UNSAFE_NAME_CHARS, flatten_numbers, is_local_uri, metric_name
from shelfwise.registry.mlflow_store import BUNDLE_ARTIFACT, ModelRegistry, _mlflow_errors

if TYPE_CHECKING:
    from shelfwise.config import ShelfwiseConfig
    from shelfwise.registry.base import Registry

_BATCH: Final = 100  # MLflow's log_batch limit per entity kind
_PARAM_CHARS: Final = 500


def flatten_params(value: Any, prefix: str = "") -> dict[str, str]:
    """A config as dotted keys -> short strings (lists and nulls as JSON)."""
    if isinstance(value, Mapping) and value:
        flat: dict[str, str] = {}
        for key, inner in value.items():
            flat.update(flatten_params(inner, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return {UNSAFE_NAME_CHARS.sub("_", prefix): text[:_PARAM_CHARS]}


def run_metrics(run_dir: Path) -> dict[str, float]:
    """Every number worth charting from a finished pipeline run's stage folders."""
    metrics: dict[str, float] = {}
    evaluate = _read_json(run_dir / "evaluate" / "metrics.json")
    for split in ("valid", "test"):
        metrics.update(flatten_numbers(evaluate.get("recommendation", {}).get(split, {}), split))
    metrics.update(flatten_numbers(evaluate.get("headline", {}), "headline"))
    ranking = _read_json(run_dir / "ranking" / "ranking.json")
    for key in ("test", "rerank"):
        metrics.update(flatten_numbers(ranking.get(key, {}), f"click_model/{key}"))
    search = _read_json(run_dir / "search" / "search.json")
    metrics.update(flatten_numbers(search.get("variants", {}), "search"))
    compression = _read_json(run_dir / "compress" / "compression.json")
    for model, component in compression.get("components", {}).items():
        chosen = component.get("chosen")
        for variant in component.get("variants", []):
            if variant.get("name") == chosen:
                metrics.update(
                    flatten_numbers(
                        {k: variant.get(k) for k in ("size_bytes", "compression_ratio")},
                        f"compress/{model}",
                    )
                )
    for manifest_path in sorted(run_dir.glob("*/manifest.json")):
        manifest = _read_json(manifest_path)
        stage = manifest_path.parent.name
        total = (manifest.get("timings_s") or {}).get("total")
        if isinstance(total, int | float):
            metrics[metric_name("stage_seconds", stage)] = float(total)
        if isinstance(manifest.get("peak_memory_mb"), int | float):
            metrics[metric_name("stage_peak_mb", stage)] = float(manifest["peak_memory_mb"])
    return metrics


class RunTracker(Protocol):
    """What `publish` logs a pipeline run through: an MLflow run, or nothing."""

    @property
    def mlflow_run_id(self) -> str | None:
        """The MLflow run's id (None: not tracked)."""
        ...

    def log_params(self, params: Mapping[str, str]) -> None:
        """Parameters."""
        ...

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        """Metrics."""
        ...

    def log_file(self, path: Path, folder: str | None = None) -> None:
        """One file as an artifact."""
        ...

    def set_tag(self, key: str, value: str) -> None:
        """A run tag."""
        ...

    def finish(self, status: str = "FINISHED") -> None:
        """Close the run (FINISHED or FAILED)."""
        ...


class NullTracker:
    """Tracks nothing: the run is not logged (no MLflow tracking store configured)."""

    mlflow_run_id: str | None = None

    def log_params(self, params: Mapping[str, str]) -> None:
        """Ignore parameters."""

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        """Ignore metrics."""

    def log_file(self, path: Path, folder: str | None = None) -> None:
        """Ignore a file."""

    def set_tag(self, key: str, value: str) -> None:
        """Ignore a tag."""

    def finish(self, status: str = "FINISHED") -> None:
        """Nothing to close."""


def open_tracker(config: ShelfwiseConfig, registry: Registry, run_id: str) -> RunTracker:
    """The MLflow run that tracks pipeline run `run_id`, or a `NullTracker`.

    An MLflow registry always tracks: its versions are bundles logged by a run. With
    the local store, runs are tracked only when `registry.tracking_uri` names an
    MLflow store of its own (`sqlite:`, `http:`, ...); `registry.enabled: false`
    tracks nothing.
    """
    if isinstance(registry, ModelRegistry):
        return RunLogger(registry, run_id)
    tracking_uri = config.registry.tracking_uri
    if config.registry.enabled and tracking_uri is not None and not is_local_uri(tracking_uri):
        return RunLogger(ModelRegistry.from_config(config), run_id)
    return NullTracker()


class RunLogger:
    """One MLflow run for one pipeline run (create, log, finish).

    The run records this process (`ModelRegistry.start_run`): when it is killed, the
    next run started on this host marks the run FAILED instead of leaving it RUNNING.
    """

    def __init__(self, registry: ModelRegistry, run_id: str) -> None:
        self.registry = registry
        self.mlflow_run_id: str = registry.start_run(run_id, tags={"shelfwise.run_id": run_id})

    def log_params(self, params: Mapping[str, str]) -> None:
        """Parameters, in MLflow-sized batches."""
        from mlflow.entities import Param

        items = [Param(key, value) for key, value in sorted(params.items())]
        with _mlflow_errors("log parameters to"):
            for chunk in _chunks(items):
                self.registry.client.log_batch(self.mlflow_run_id, params=chunk)

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        """Metrics (step 0), in MLflow-sized batches."""
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(key, value, now, 0) for key, value in sorted(metrics.items())]
        with _mlflow_errors("log metrics to"):
            for chunk in _chunks(items):
                self.registry.client.log_batch(self.mlflow_run_id, metrics=chunk)

    def log_bundle(self, bundle_dir: Path) -> None:
        """The bundle folder as the run's `bundle/` artifacts."""
        with _mlflow_errors("upload the bundle to"):
            self.registry.client.log_artifacts(self.mlflow_run_id, str(bundle_dir), BUNDLE_ARTIFACT)

    def log_file(self, path: Path, folder: str | None = None) -> None:
        """One file as an artifact."""
        with _mlflow_errors("upload an artifact to"):
            self.registry.client.log_artifact(self.mlflow_run_id, str(path), folder)

    def set_tag(self, key: str, value: str) -> None:
        """A run tag."""
        with _mlflow_errors("tag a run in"):
            self.registry.client.set_tag(self.mlflow_run_id, key, value)

    def finish(self, status: str = "FINISHED") -> None:
        """Close the run (FINISHED or FAILED)."""
        with _mlflow_errors("finish a run in"):
            self.registry.client.set_terminated(self.mlflow_run_id, status=status)


def _chunks(items: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(items), _BATCH):
        yield items[start : start + _BATCH]


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


__all__ = [
    "NullTracker",
    "RunLogger",
    "RunTracker",
    "flatten_numbers",
    "flatten_params",
    "metric_name",
    "open_tracker",
    "run_metrics",
]
