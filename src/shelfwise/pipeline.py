"""The pipeline: the one place where the order of stages is written (`STAGES`).

    ingest → validate → features → plan → tune → retrieval → evaluate → ranking
    → search → compress → package → (publish: the bundle becomes a version, gated, reported)

The plan stage chooses what fits the data and the machine (`shelfwise.plan`); the
stages marked `planned` run on the config with its settings applied, and their cache
keys include the plan's decisions.

Each stage writes `runs/<run_id>/<stage>/` with a `manifest.json`, through a
temporary folder renamed into place, so a killed run never leaves a folder that looks
complete. A stage's cache key hashes its config section, its inputs (raw file bytes
for ingest, upstream cache keys after that) and the code version:

- a new run reuses (hard-links) a finished stage of an earlier run with the same key;
- `resume` continues a run that died, skipping its finished stages;
- `from_stage` recomputes that stage and every later one, reusing the earlier ones.
"""

from __future__ import annotations

import importlib
import json
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shelfwise._internal.artifacts import (
    SCHEMA_VERSION,
    Manifest,
    atomic_write_json,
    code_version,
    hash_tree,
    is_complete,
    link_or_copy_tree,
    read_manifest,
    remove_stale_temporaries,
    sha256_file,
    staged_folder,
)
from shelfwise._internal.memory import PeakMemory
from shelfwise._internal.stage import StageContext, StageResult
from shelfwise.config import ShelfwiseConfig, hash_jsonable
from shelfwise.errors import ManifestError, ResumeError, ShelfwiseError, StageError
from shelfwise.package.integrity import key_id, signing_key

if TYPE_CHECKING:
    from shelfwise.publish.gate import GateResult

StageFunction = Callable[[StageContext], StageResult]


@dataclass(frozen=True)
class Stage:
    """One step of the pipeline."""

    name: str
    needs: tuple[str, ...]
    config_keys: tuple[str, ...]  # the config sections this stage's output depends on
    planned: bool = False  # runs on the config with the plan's settings applied

    def function(self) -> StageFunction:
        """The stage's entry, `shelfwise.<name>.stage.run`, imported now (fast CLI start)."""
        module = importlib.import_module(f"shelfwise.{self.name}.stage")
        function: StageFunction = module.run
        return function


STAGES: tuple[Stage, ...] = (
    Stage("ingest", (), ("data",)),
    Stage("validate", ("ingest",), ("data",)),
    Stage(
        "features",
        ("validate",),
        ("split", "seed", "models.event_weights", "models.time_decay_half_life_days"),
    ),
    Stage(
        "plan",
        ("ingest", "validate", "features"),
        (
            "models",
            "tune",
            "evaluate.max_eval_users",
            "evaluate.refit_on_train_valid",
            "ranking",
            "search.max_queries",
            "compress",
            "gate.max_users",
            "plan",
        ),
    ),
    Stage(
        "tune",
        ("features", "plan"),
        ("models", "tune", "evaluate.primary_metric", "seed"),
        planned=True,
    ),
    Stage(
        "retrieval",
        ("features", "tune", "plan"),
        ("models", "evaluate.refit_on_train_valid"),  # the refit happens here
        planned=True,
    ),
    Stage(
        "evaluate",
        ("features", "retrieval"),
        ("evaluate", "seed", "models.blend"),
        planned=True,
    ),
    Stage(
        "ranking",
        ("features", "retrieval", "evaluate"),
        ("ranking", "seed", "evaluate.k_values"),
        planned=True,
    ),
    Stage(
        "search",
        ("features", "retrieval"),
        (
            "search",
            "seed",
            "evaluate.k_values",
            "evaluate.relevance_offset",
            "models.dense.candidates",
        ),
        planned=True,
    ),
    Stage(
        "compress",
        ("features", "retrieval", "evaluate", "ranking", "search"),
        ("compress", "seed", "evaluate.primary_metric", "evaluate.k_values"),
        planned=True,
    ),
    Stage(
        "package",
        ("validate", "features", "retrieval", "evaluate", "ranking", "search", "compress"),
        ("project",),
    ),
)
STAGE_NAMES: tuple[str, ...] = tuple(stage.name for stage in STAGES)


@dataclass(frozen=True)
class StageEvent:
    """Progress report for the CLI: a stage started, finished, or was reused."""

    stage: str
    status: str  # "started" | "done" | "cached" | "resumed"
    seconds: float = 0.0
    peak_memory_mb: float | None = None
    summary: str = ""


@dataclass
class RunOutcome:
    """What a finished run produced."""

    run_id: str
    run_dir: Path
    manifests: dict[str, Manifest] = field(default_factory=dict)
    bundle_version: int | None = None
    bundle_path: Path | None = None
    gate: GateResult | None = None  # None when the registry is off (`registry.enabled`)
    report_path: Path | None = None
    warnings: list[str] = field(default_factory=list)  # e.g. the report was not written


def runs_dir(config: ShelfwiseConfig) -> Path:
    """Where runs live: `<state dir>/runs`."""
    return config.state_dir() / "runs"


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus random suffix."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def run_pipeline(
    config: ShelfwiseConfig,
    *,
    resume: str | None = None,
    from_stage: str | None = None,
    use_cache: bool = True,
    until: str | None = None,
    on_event: Callable[[StageEvent], None] | None = None,
) -> RunOutcome:
    """Run every stage in order and publish the bundle as a version.

    Args:
        config: the loaded configuration.
        resume: a run id (or "latest") to continue instead of starting a new run.
        from_stage: recompute this stage and all later ones; earlier ones are reused.
        use_cache: reuse finished stages of earlier runs with the same cache key.
        until: stop after this stage (e.g. "validate"); nothing is published.
        on_event: called as stages start and finish (the CLI prints these).

    Raises:
        ResumeError: the run to resume does not exist or was made with another config.
        StageError: a stage failed unexpectedly (the message says how to resume).
        ShelfwiseError: a stage's own error, e.g. RejectedShareError from validate.
    """
    notify = on_event or (lambda event: None)
    for name in (from_stage, until):
        if name is not None and name not in STAGE_NAMES:
            raise ResumeError(f"unknown stage {name!r}; stages: {', '.join(STAGE_NAMES)}")
    root = runs_dir(config)
    run_dir = _open_run(config, root, resume)
    forced = set(STAGE_NAMES[STAGE_NAMES.index(from_stage) :]) if from_stage else set()
    outcome = RunOutcome(run_id=run_dir.name, run_dir=run_dir)
    keys: dict[str, str] = {}
    _write_run_record(run_dir, config, status="running")
    try:
        for stage in STAGES:
            keys[stage.name] = _cache_key(stage, config, keys, _plan_decisions(stage, run_dir))
            manifest = _run_stage(
                stage,
                _stage_config(stage, config, run_dir),
                run_dir,
                keys[stage.name],
                root,
                reuse=use_cache and stage.name not in forced,
                require_cached=from_stage is not None and stage.name not in forced,
                notify=notify,
            )
            outcome.manifests[stage.name] = manifest
            if stage.name == until:
                _write_run_record(run_dir, config, status=f"stopped after {until}")
                return outcome
        _publish(config, run_dir, outcome)  # records the run complete, then reports
    except BaseException:
        _write_run_record(run_dir, config, status="failed")
        raise
    return outcome


def _open_run(config: ShelfwiseConfig, root: Path, resume: str | None) -> Path:
    if resume is None:
        run_dir = root / new_run_id()
        run_dir.mkdir(parents=True)
        return run_dir
    if resume == "latest":
        candidates = sorted(p for p in root.glob("*") if (p / "run.json").is_file())
        if not candidates:
            raise ResumeError(f"no run to resume under {root}; start one with `shelfwise run`")
        run_dir = candidates[-1]
    else:
        run_dir = root / resume
        if not (run_dir / "run.json").is_file():
            known = ", ".join(p.name for p in sorted(root.glob("*"))[-5:]) or "none"
            raise ResumeError(f"run {resume!r} not found under {root}; recent runs: {known}")
    record = json.loads((run_dir / "run.json").read_text())
    if record.get("config_hash") != config.fingerprint():
        raise ResumeError(
            f"run {run_dir.name} was made with a different configuration; "
            "start a new run instead of resuming (finished stages are reused from cache)"
        )
    remove_stale_temporaries(run_dir)
    return run_dir


def _write_run_record(
    run_dir: Path, config: ShelfwiseConfig, *, status: str, bundle_version: int | None = None
) -> None:
    path = run_dir / "run.json"
    record: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    record.setdefault("run_id", run_dir.name)
    record.setdefault("started_at", time.time())
    record.update(
        status=status,
        config_hash=config.fingerprint(),
        config=config.model_dump(mode="json"),
        updated_at=time.time(),
    )
    if bundle_version is not None:
        record["bundle_version"] = bundle_version
    atomic_write_json(path, record)


def _stage_config(stage: Stage, config: ShelfwiseConfig, run_dir: Path) -> ShelfwiseConfig:
    """The config a stage runs on: with the plan's settings for the `planned` stages."""
    if stage.name == "features" and config.split.method == "auto":
        # the split is chosen from the validated events before they are split (the plan
        # proper runs after features and shows the same choice: `plan.split_choice`)
        from shelfwise.plan.split_choice import resolve_split

        return resolve_split(config, run_dir / "validate")
    if not stage.planned or not is_complete(run_dir / "plan"):
        return config
    from shelfwise.plan.record import apply_plan, load_plan

    return apply_plan(config, load_plan(run_dir / "plan"))


def _config_section(config: ShelfwiseConfig, dotted: str) -> Any:
    value: Any = config.model_dump(mode="json")
    for part in dotted.split("."):
        value = value[part]
    return value


def _input_files(config: ShelfwiseConfig) -> Iterable[Path]:
    for source in (config.data.catalog, config.data.events, config.data.queries):
        if source is None:
            continue
        path = source.path
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            yield path


def _plan_decisions(stage: Stage, run_dir: Path) -> dict[str, Any] | None:
    """What a planned stage's output depends on in the plan (None for other stages)."""
    if not stage.planned or not is_complete(run_dir / "plan"):
        return None
    from shelfwise.plan.record import load_plan

    return load_plan(run_dir / "plan").decisions()


def _cache_key(
    stage: Stage,
    config: ShelfwiseConfig,
    upstream: dict[str, str],
    plan: dict[str, Any] | None = None,
) -> str:
    # A planned stage depends on the plan's decisions, not on its cache key: a plan
    # recomputed with the same decisions (say, after evaluate.k_values changed) keeps
    # the stages after it cached.
    parts: dict[str, Any] = {
        "stage": stage.name,
        "schema": SCHEMA_VERSION,
        "code": code_version(),
        "config": {key: _config_section(config, key) for key in stage.config_keys},
        "upstream": {name: upstream[name] for name in stage.needs if not (plan and name == "plan")},
    }
    if stage.name == "ingest":
        parts["files"] = {str(p): sha256_file(p) for p in _input_files(config)}
        # pseudonyms (which key) and the forget list change ingest's output; a missing
        # key with privacy.pseudonymize_users on fails here, before any stage runs
        from shelfwise.privacy import UserPrivacy

        parts["privacy"] = UserPrivacy.open(config.privacy, config.state_dir()).cache_part()
    if stage.name == "plan":  # the plan fits the data to this machine's memory and cores
        from shelfwise.plan.shape import detect_resources

        parts["resources"] = detect_resources(config).to_json()
    if plan is not None:
        parts["plan"] = plan
    if stage.name == "package":
        # a bundle signed with another key (or none) is another bundle: never reuse it
        key = signing_key()
        parts["signing_key"] = None if key is None else key_id(key)
    return hash_jsonable(parts)


def _find_cached(root: Path, stage: str, key: str, exclude: Path) -> Path | None:
    for run_dir in sorted(root.glob("*"), reverse=True):
        folder = run_dir / stage
        if run_dir == exclude or not is_complete(folder):
            continue
        try:
            if read_manifest(folder).cache_key == key:
                return folder
        except ManifestError:
            continue
    return None


def _run_stage(
    stage: Stage,
    config: ShelfwiseConfig,
    run_dir: Path,
    key: str,
    root: Path,
    *,
    reuse: bool,
    require_cached: bool,
    notify: Callable[[StageEvent], None],
) -> Manifest:
    final = run_dir / stage.name
    if is_complete(final):
        manifest = read_manifest(final)
        if manifest.cache_key == key and (reuse or require_cached):
            notify(StageEvent(stage.name, "resumed", summary="finished before"))
            return manifest
    cached = _find_cached(root, stage.name, key, exclude=run_dir) if reuse else None
    if cached is not None:
        with staged_folder(final) as tmp:
            tmp.rmdir()
            link_or_copy_tree(cached, tmp)
            manifest = read_manifest(tmp).model_copy(update={"reused_from": cached.parent.name})
            atomic_write_json(tmp / "manifest.json", manifest.model_dump(mode="json"))
        summary = f"{manifest.extra.get('summary', '')} (reused from run {cached.parent.name})"
        notify(StageEvent(stage.name, "cached", summary=summary.strip()))
        return manifest
    if require_cached:
        raise ResumeError(
            f"--from-stage needs a finished {stage.name!r} stage with the same inputs and "
            "config in an earlier run; run the whole pipeline once first"
        )

    notify(StageEvent(stage.name, "started"))
    inputs = {name: run_dir / name for name in stage.needs}
    started = time.perf_counter()
    with staged_folder(final) as tmp, PeakMemory() as memory:
        context = StageContext(config=config, run_dir=run_dir, inputs=inputs, out=tmp)
        try:
            result = stage.function()(context)
        except ShelfwiseError:
            raise
        except Exception as exc:
            raise StageError(
                f"stage {stage.name!r} failed: {type(exc).__name__}: {exc}. Fix the cause, "
                f"then continue with `shelfwise run --resume {run_dir.name}`"
            ) from exc
        seconds = time.perf_counter() - started
        manifest = Manifest(
            stage=stage.name,
            run_id=run_dir.name,
            cache_key=key,
            config_hash=config.fingerprint(),
            input_hashes={name: read_manifest(path).cache_key for name, path in inputs.items()},
            row_counts=result.row_counts,
            timings_s={"total": round(seconds, 3)},
            files=hash_tree(tmp),
            extra={**result.extra, "summary": result.summary},
        )
        # the manifest is written last: its presence marks the folder complete
        memory_mb = round(memory.peak_mb, 1)
        manifest.peak_memory_mb = memory_mb
        atomic_write_json(tmp / "manifest.json", manifest.model_dump(mode="json"))
    notify(StageEvent(stage.name, "done", seconds, memory_mb, result.summary))
    return manifest


def _publish(config: ShelfwiseConfig, run_dir: Path, outcome: RunOutcome) -> None:
    """Register the bundle, gate it and write the report (`publish.publish_run`)."""
    from shelfwise.publish.release import Published, publish_run

    def finished(published: Published) -> None:
        # The report reads run.json for its header: record the final status, the
        # version and the finish time before it is written, not after.
        version = int(published.version.version)
        _write_run_record(run_dir, config, status="complete", bundle_version=version)

    planned = config
    if is_complete(run_dir / "plan"):  # the plan may sample fewer gate users (its budget)
        from shelfwise.plan.record import apply_plan, load_plan

        planned = apply_plan(config, load_plan(run_dir / "plan"))
    published = publish_run(
        planned, run_dir, run_dir / "package" / "bundle", before_report=finished
    )
    outcome.bundle_version = int(published.version.version)
    outcome.bundle_path = published.bundle_path
    outcome.gate = published.gate
    outcome.report_path = published.report
    outcome.warnings.extend(published.warnings)
