"""Read a run folder into typed records, one per report section.

Each `collect_*` function reads one stage's files and returns a frozen dataclass (or
a pydantic model for the gate and compression files). A missing input raises
`NotRun` with the reason the section shows; a file of the wrong shape raises
`ManifestError` naming the file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from pydantic import ValidationError

from shelfwise.errors import ManifestError
from shelfwise.report._schemas import CompressionReport, GateReport

STAGES: Final = (
    "ingest",
    "validate",
    "features",
    "tune",
    "retrieval",
    "evaluate",
    "ranking",
    "search",
    "gate",
    "compress",
    "package",
)


class NotRun(Exception):  # noqa: N818 - a signal, not an error: the section says "not run"
    """An optional input is absent; `reason` is shown in its section."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def read_json(path: Path, run_dir: Path) -> dict[str, Any]:
    """A JSON object from the run folder.

    Raises:
        NotRun: the file does not exist (its stage did not run).
        ManifestError: it is not a readable JSON object.
    """
    name = path.relative_to(run_dir).as_posix() if path.is_relative_to(run_dir) else str(path)
    if not path.is_file():
        raise NotRun(f"{name} not found")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"cannot read {name}: {exc}") from exc
    if not isinstance(value, dict):
        raise ManifestError(f"{name} holds {type(value).__name__}, expected a JSON object")
    return value


@dataclass(frozen=True)
class StageRow:
    """One stage's manifest: what it did, how long, how much memory."""

    stage: str
    seconds: float | None
    peak_memory_mb: float | None
    reused_from: str | None
    summary: str


@dataclass(frozen=True)
class RunInfo:
    """`run.json` and the stage manifests."""

    run_id: str
    status: str
    started_at: float | None
    updated_at: float | None
    bundle_version: int | str | None
    config_hash: str | None
    code_version: str | None
    stages: list[StageRow]


def collect_run(run_dir: Path) -> RunInfo:
    """Run identity and per-stage timings (stages without a manifest are left out)."""
    try:
        run = read_json(run_dir / "run.json", run_dir)
    except NotRun:
        run = {}
    stages: list[StageRow] = []
    code_version: str | None = None
    for stage in STAGES:
        path = run_dir / stage / "manifest.json"
        if not path.is_file():
            continue
        manifest = read_json(path, run_dir)
        code_version = code_version or manifest.get("code_version")
        timings = manifest.get("timings_s") or {}
        extra = manifest.get("extra") or {}
        stages.append(
            StageRow(
                stage=stage,
                seconds=_float(timings.get("total")),
                peak_memory_mb=_float(manifest.get("peak_memory_mb")),
                reused_from=manifest.get("reused_from"),
                summary=str(extra.get("summary", "")),
            )
        )
    return RunInfo(
        run_id=str(run.get("run_id", run_dir.name)),
        status=str(run.get("status", "unknown")),
        started_at=_float(run.get("started_at")),
        updated_at=_float(run.get("updated_at")),
        bundle_version=run.get("bundle_version"),
        config_hash=run.get("config_hash"),
        code_version=code_version,
        stages=stages,
    )


@dataclass(frozen=True)
class SourceRows:
    """One input file group as read and as validated."""

    source: str
    rows_read: int | None
    parse_rejected: int | None
    file_format: str | None
    rows_in: int | None
    accepted: int | None
    quarantined: int | None
    merged: int | None
    rejected_share: float | None
    by_reason: dict[str, int]


@dataclass(frozen=True)
class DataSummary:
    """Inputs, validation counts and the shape of the prepared data."""

    sources: list[SourceRows]
    max_rejected_share: float | None
    catalog_derived: bool
    warnings: list[str]
    shape: dict[str, int]  # features row counts: users, items, events per split, …
    split: dict[str, Any]  # method, cutoffs


def collect_data(run_dir: Path) -> DataSummary:
    """Ingest and validate reports plus the features manifest; needs at least one."""
    ingest: dict[str, Any] = {}
    validate: dict[str, Any] = {}
    found = False
    try:
        ingest = read_json(run_dir / "ingest" / "ingest.json", run_dir)
        found = True
    except NotRun:
        pass
    try:
        validate = read_json(run_dir / "validate" / "report.json", run_dir)
        found = True
    except NotRun:
        pass
    features: dict[str, Any] = {}
    try:
        features = read_json(run_dir / "features" / "manifest.json", run_dir)
        found = True
    except NotRun:
        pass
    if not found:
        raise NotRun("no ingest, validate or features output in this run")
    read_sources: Mapping[str, Any] = ingest.get("sources") or {}
    checked: Mapping[str, Any] = validate.get("sources") or {}
    sources = []
    for name in sorted({*read_sources, *checked}):
        read = read_sources.get(name) or {}
        counts = checked.get(name) or {}
        sources.append(
            SourceRows(
                source=name,
                rows_read=_int(read.get("rows")),
                parse_rejected=_int(read.get("parse_rejected")),
                file_format=read.get("format"),
                rows_in=_int(counts.get("rows_in")),
                accepted=_int(counts.get("accepted")),
                quarantined=_int(counts.get("quarantined")),
                merged=_int(counts.get("merged")),
                rejected_share=_float(counts.get("rejected_share")),
                by_reason={str(k): int(v) for k, v in (counts.get("by_reason") or {}).items()},
            )
        )
    extra = features.get("extra") or {}
    split = dict(extra.get("split") or {})
    split.pop("counts", None)
    return DataSummary(
        sources=sources,
        max_rejected_share=_float(validate.get("max_rejected_share")),
        catalog_derived=bool(validate.get("catalog_derived", False)),
        warnings=[str(w) for w in [*ingest.get("warnings", []), *validate.get("warnings", [])]],
        shape={str(k): int(v) for k, v in (features.get("row_counts") or {}).items()},
        split=split,
    )


@dataclass(frozen=True)
class ModelMetrics:
    """Recommendation metrics: split -> model -> metric name ("ndcg@10") -> value."""

    splits: dict[str, dict[str, dict[str, float]]]
    users: dict[str, int]
    selected: dict[str, Any]
    blend: dict[str, Any] = field(default_factory=dict)

    def k_values(self) -> list[int]:
        """Every K that appears in a metric name."""
        found: set[int] = set()
        for models in self.splits.values():
            for metrics in models.values():
                found.update(int(k) for _, k in map(_split_metric, metrics) if k is not None)
        return sorted(found)


def collect_metrics(run_dir: Path) -> ModelMetrics:
    """`evaluate/metrics.json` (recommendation part)."""
    metrics = read_json(run_dir / "evaluate" / "metrics.json", run_dir)
    recommendation = metrics.get("recommendation") or {}
    splits: dict[str, dict[str, dict[str, float]]] = {}
    for split in ("valid", "test"):
        models = recommendation.get(split) or {}
        splits[split] = {
            str(model): {str(k): float(v) for k, v in values.items() if _is_number(v)}
            for model, values in models.items()
        }
    if not any(splits.values()):
        raise NotRun("evaluate/metrics.json has no recommendation metrics (search-only data?)")
    return ModelMetrics(
        splits=splits,
        users={str(k): int(v) for k, v in (recommendation.get("users") or {}).items()},
        selected=dict(metrics.get("selected") or {}),
        blend=dict(metrics.get("blend") or {}),
    )


@dataclass(frozen=True)
class Trial:
    """One AutoML trial (the untuned defaults are trial "baseline")."""

    family: str
    number: str
    params: dict[str, Any]
    value: float | None
    seconds: float | None
    state: str


@dataclass(frozen=True)
class Tuning:
    """Optuna trials and the best result per model family."""

    trials: list[Trial]
    best: dict[str, dict[str, Any]]
    metric: str | None


def collect_tuning(run_dir: Path) -> Tuning:
    """`tune/trials.json` and `tune/best.json`."""
    path = run_dir / "tune" / "trials.json"
    if not path.is_file():
        raise NotRun("tune/trials.json not found (tuning off or not run)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"cannot read tune/trials.json: {exc}") from exc
    if not isinstance(raw, list):
        raise ManifestError("tune/trials.json should hold a list of trials")
    trials = [
        Trial(
            family=str(item.get("family", "?")),
            number=str(item.get("number", "?")),
            params=dict(item.get("params") or {}),
            value=_float(item.get("value")),
            seconds=_float(item.get("seconds")),
            state=str(item.get("state", "")),
        )
        for item in raw
    ]
    try:
        best = read_json(run_dir / "tune" / "best.json", run_dir)
    except NotRun:
        best = {}
    metric = None
    try:
        metric = read_json(run_dir / "evaluate" / "metrics.json", run_dir).get("selected", {})
        metric = metric.get("primary_metric") if isinstance(metric, dict) else None
    except NotRun:
        pass
    return Tuning(trials=trials, best=best, metric=metric)


@dataclass(frozen=True)
class ClickModel:
    """The click model's classifier metrics and its ROC / PR curve points on test."""

    status: str
    selected: str | None
    kept: bool
    retriever: str | None
    metrics: dict[str, dict[str, dict[str, Any]]]  # model -> "test"/"holdout" -> values
    curves: dict[str, dict[str, dict[str, list[float]]]]  # model -> roc/pr -> axis -> points
    aucs: dict[str, float | None]
    base_rate: float | None
    rerank_test: dict[str, dict[str, float]]  # "retriever"/"reranked" -> metrics


def collect_click_model(run_dir: Path) -> ClickModel:
    """`ranking/ranking.json` and `ranking/curves.json`."""
    report = read_json(run_dir / "ranking" / "ranking.json", run_dir)
    if report.get("status") == "skipped":
        raise NotRun(f"click model skipped: {report.get('reason', 'no reason given')}")
    models = report.get("models") or {}
    metrics = {
        str(name): {
            part: dict(values.get(part) or {}) for part in ("test", "holdout") if part in values
        }
        for name, values in models.items()
    }
    try:
        curve_file = read_json(run_dir / "ranking" / "curves.json", run_dir)
    except NotRun:
        curve_file = {}
    curves = dict(curve_file.get("test") or {})
    aucs: dict[str, float | None] = {
        name: _float(parts.get("test", {}).get("auc")) for name, parts in metrics.items()
    }
    if "retriever" in curves:
        aucs["retriever"] = _float(report.get("retriever_test_auc"))
    selected = report.get("selected_model")
    base_rate = None
    if selected in metrics:
        base_rate = _float(metrics[selected].get("test", {}).get("positive_rate"))
    return ClickModel(
        status=str(report.get("status", "trained")),
        selected=selected,
        kept=bool(report.get("rerank", report.get("kept", False))),
        retriever=report.get("retriever"),
        metrics=metrics,
        curves=curves,
        aucs=aucs,
        base_rate=base_rate,
        rerank_test={k: dict(v) for k, v in (report.get("rerank_test") or {}).items()},
    )


def collect_gate(run_dir: Path) -> GateReport:
    """`gate/gate.json`, validated against its schema."""
    raw = read_json(run_dir / "gate" / "gate.json", run_dir)
    try:
        return GateReport.model_validate(raw)
    except ValidationError as exc:
        raise ManifestError(f"gate/gate.json does not match its schema: {exc}") from exc


def collect_compression(run_dir: Path) -> CompressionReport:
    """`compress/compression.json`, validated against its schema."""
    raw = read_json(run_dir / "compress" / "compression.json", run_dir)
    try:
        return CompressionReport.model_validate(raw)
    except ValidationError as exc:
        raise ManifestError(f"compress/compression.json does not match its schema: {exc}") from exc


def _split_metric(name: str) -> tuple[str, str | None]:
    base, sep, k = name.partition("@")
    return base, (k if sep and k.isdigit() else None)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _float(value: object) -> float | None:
    return float(value) if _is_number(value) else None  # type: ignore[arg-type]


def _int(value: object) -> int | None:
    return int(value) if _is_number(value) else None  # type: ignore[call-overload]


__all__ = [
    "STAGES",
    "ClickModel",
    "DataSummary",
    "ModelMetrics",
    "NotRun",
    "RunInfo",
    "SourceRows",
    "StageRow",
    "Trial",
    "Tuning",
    "collect_click_model",
    "collect_compression",
    "collect_data",
    "collect_gate",
    "collect_metrics",
    "collect_run",
    "collect_tuning",
    "read_json",
]
