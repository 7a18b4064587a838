"""After the stages: register the bundle, run the gate, write the report.

`publish_run` is the last step of `shelfwise run`, on whatever store
`registry.open_registry` picks (MLflow or the local store):

1. run tracking (MLflow only, `registry.tracking.open_tracker`): the config as
   parameters, every stage number as metrics;
2. the bundle becomes a version (or the existing version with the same content); an
   MLflow store gets it as the tracked run's artifacts;
3. the promotion gate re-scores it and the champion on this run's test split and
   decides (`publish.gate`); with `registry.enabled: false` there is no gate and a
   new version simply becomes champion;
4. `gate/gate.json` and the decision go to the run folder, the version's tags and the
   tracked run, and only then do the aliases move;
5. the caller records the run as finished (`before_report`), then the report is
   written from the run folder, so its header shows the final status and version.

Every step may be killed (`crash_point` names them; a test kills each in turn):
`shelfwise run --resume` then finishes the job with the same result. The version is
found again by its fingerprint, a decision recorded in `gate.json` before the kill is
applied rather than taken again (unless the champion moved since), an alias already
moved is not moved twice, and the killed MLflow run is marked FAILED
(`registry.mlflow_setup`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from shelfwise._internal.artifacts import crash_point
from shelfwise.config import ShelfwiseConfig
from shelfwise.publish.gate import GateResult, check_rules, decide, read_gate, score_versions
from shelfwise.registry import open_registry
from shelfwise.registry.base import (
    CHALLENGER,
    CHAMPION,
    TAG_GATE,
    TAG_RUN,
    ModelVersion,
    Registry,
    metric_name,
)
from shelfwise.registry.tracking import RunTracker, flatten_params, open_tracker, run_metrics

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Published:
    """What publishing a run did.

    Attributes:
        version: the registered version (new, or the one with the same content).
        new: whether this run created the version.
        gate: the gate's decision (None with `registry.enabled: false`: no gate).
        mlflow_run_id: the MLflow run that tracked it (None when not tracked).
        report: the report's path (None when it could not be written).
        bundle_path: the version's folder in a local store, else the run's bundle.
        warnings: what went wrong without failing the run (the CLI prints these).
    """

    version: ModelVersion
    new: bool
    gate: GateResult | None
    mlflow_run_id: str | None
    report: Path | None
    bundle_path: Path
    warnings: tuple[str, ...] = ()


def publish_run(
    config: ShelfwiseConfig,
    run_dir: Path,
    bundle_dir: Path,
    *,
    before_report: Callable[[Published], None] | None = None,
) -> Published:
    """Register, gate and report a finished run's bundle (see the module docstring).

    Args:
        config: the run's configuration.
        run_dir: the run folder.
        bundle_dir: the run's bundle (`run_dir/package/bundle`).
        before_report: called once the version is registered and gated, before the
            report is written (the pipeline writes its final run record there).

    Raises:
        RegistryError: the store cannot be reached or refuses a write.
    """
    registry = open_registry(config)
    tracker = open_tracker(config, registry, run_dir.name)
    crash_point("publish:tracker-started")
    try:
        tracker.log_params(flatten_params(config.model_dump(mode="json")))
        tracker.log_metrics(run_metrics(run_dir))
        crash_point("publish:run-logged")
        version, new = registry.publish(
            bundle_dir, tags={TAG_RUN: run_dir.name}, tracked_run=tracker.mlflow_run_id
        )
        crash_point("publish:registered")
        result = None
        if config.registry.enabled:
            result = gate(config, run_dir, registry, version, bundle_dir)
            _record_gate(run_dir, registry, tracker, version, result)
            crash_point("publish:gate-recorded")
            _move_aliases(registry, version, result)
        elif _newest_of_this_run(registry, version, new, run_dir):
            # no registry, no gate: the newest version is served, as before aliases
            registry.promote(version.version, "registry.enabled is false: newest version")
        crash_point("publish:aliases-moved")
        version = registry.get(version.version)
        published = Published(
            version, new, result, tracker.mlflow_run_id, None, version.folder or bundle_dir
        )
        if before_report is not None:
            before_report(published)
        crash_point("publish:run-recorded")
        report, warning = _write_report(run_dir)
        if report is not None:
            tracker.log_file(report)
        crash_point("publish:report-written")
    except BaseException:
        tracker.finish("FAILED")
        raise
    tracker.finish()
    crash_point("publish:finished")
    return replace(published, report=report, warnings=() if warning is None else (warning,))


def _newest_of_this_run(
    registry: Registry, version: ModelVersion, new: bool, run_dir: Path
) -> bool:
    """Without a gate: should `version` become champion? Yes when this run stored it
    (now, or before a kill that came ahead of the promotion) and it is not champion."""
    champion = registry.by_alias(CHAMPION)
    if champion is not None and champion.version == version.version:
        return False
    return new or version.run_id == run_dir.name


def _move_aliases(registry: Registry, version: ModelVersion, result: GateResult) -> None:
    """Apply the gate's decision; a move that is already in place is not made again."""
    champion, challenger = registry.by_alias(CHAMPION), registry.by_alias(CHALLENGER)
    holders = {found.version for found in (champion, challenger) if found is not None}
    if result.decision in ("first-champion", "promoted", "skipped"):
        if champion is None or champion.version != version.version:
            reason = (
                "gate disabled (gate.enabled: false)"
                if result.decision == "skipped"
                else _summary(result)
            )
            registry.promote(version.version, reason)
    elif result.decision in ("challenger", "refused"):
        if version.version not in holders:
            registry.mark_challenger(version.version, _summary(result))


def _record_gate(
    run_dir: Path,
    registry: Registry,
    tracker: RunTracker,
    version: ModelVersion,
    result: GateResult,
) -> None:
    """The gate's decision on the version and the run: `gate.json`, tags, numbers."""
    result.write(run_dir)
    # "unchanged" keeps the decision that made the version what it is
    if result.decision != "unchanged" or TAG_GATE not in version.tags:
        registry.set_tag(version.version, TAG_GATE, result.decision)
    tracker.set_tag("shelfwise.model_version", version.version)
    tracker.set_tag(TAG_GATE, result.decision)
    gate_numbers = {
        metric_name("gate", side, name): value
        for side in ("challenger", "champion")
        for name, value in (result.metrics.get(side) or {}).items()
    }
    tracker.log_metrics(gate_numbers)
    tracker.log_file(run_dir / "gate" / "gate.json", "gate")


def gate(
    config: ShelfwiseConfig,
    run_dir: Path,
    registry: Registry,
    version: ModelVersion,
    bundle_dir: Path,
) -> GateResult:
    """The gate's decision on one registered version; the caller moves the aliases.

    A decision this run recorded before it was killed is returned again, as long as the
    champion it was taken against is still champion (or the version already is).
    """
    champion = registry.by_alias(CHAMPION)
    previous = read_gate(run_dir)
    if (
        previous is not None
        and previous.decision != "unchanged"
        and previous.challenger.get("version") == version.version
        and (None if champion is None else champion.version)
        in ((previous.champion or {}).get("version"), version.version)
    ):
        return previous
    ident = {"version": version.version, "run_id": version.run_id or run_dir.name}
    champion_ident = (
        None if champion is None else {"version": champion.version, "run_id": champion.run_id or ""}
    )
    ks = sorted(set(config.evaluate.k_values))
    if champion is not None and champion.version == version.version:
        return GateResult(
            "unchanged", ident, champion_ident, [], {"challenger": None, "champion": None},
            {}, ks, {}, [f"this run rebuilt version {version.version}, the champion, unchanged"],
        )  # fmt: skip
    if not config.gate.enabled:
        return GateResult(
            "skipped", ident, champion_ident, [], {"challenger": None, "champion": None},
            {}, ks, {}, ["gate.enabled is false: promoted unchecked"],
        )  # fmt: skip
    champion_path = None
    notes: list[str] = []
    if champion is not None:
        try:
            champion_path = registry.local_path(champion.version)
        except Exception as exc:  # a lost champion bundle must not block a new one
            notes.append(f"champion version {champion.version} has no readable bundle: {exc}")
    challenger_scores, champion_scores, score_notes = score_versions(
        config, run_dir, bundle_dir, champion_path
    )
    notes += score_notes
    baseline = challenger_scores.get("baseline")  # the session protocol's trivial rule
    rules = check_rules(
        config.gate.rules,
        challenger_scores["metrics"],
        None if champion_scores is None else champion_scores["metrics"],
        baseline=baseline,
    )
    decision = decide(config, rules, has_champion=champion_scores is not None)
    result = GateResult(
        decision=decision,
        challenger=ident,
        champion=champion_ident,
        rules=rules,
        metrics={
            "challenger": challenger_scores["metrics"],
            "champion": None if champion_scores is None else champion_scores["metrics"],
            **({"session_baseline": baseline} if baseline else {}),
        },
        latency_ms={
            "challenger": challenger_scores["latencies"],
            **({"champion": champion_scores["latencies"]} if champion_scores else {}),
        },
        k_values=sorted(int(k) for k in challenger_scores["curves"].get("ndcg", {})) or ks,
        curves={
            "challenger": challenger_scores["curves"],
            **({"champion": champion_scores["curves"]} if champion_scores else {}),
        },
        notes=notes,
    )
    return result


def _summary(result: GateResult) -> str:
    failed = result.failures()
    if failed:
        return f"gate refused: {failed[0].message}"
    return f"gate {result.decision}"


def write_report(run_dir: Path) -> Path | None:
    """The run's HTML report, or None with a logged warning when it cannot be written.

    The report module is optional (its plotting libraries may be missing) and a report
    bug must not lose a registered version, so neither raises here.
    """
    return _write_report(run_dir)[0]


def _write_report(run_dir: Path) -> tuple[Path | None, str | None]:
    """(the report, None), or (None, why not): the reason is logged as a warning too."""
    try:
        from shelfwise.report import write_report as write_html
    except ImportError as exc:
        warning = f"report not written: the report module cannot be imported ({exc})"
    else:
        try:
            return write_html(run_dir), None
        except Exception as exc:  # a report bug must not lose a registered version
            warning = f"report not written: {type(exc).__name__}: {exc}"
    _log.warning("%s", warning)
    return None, warning
