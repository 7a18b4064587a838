"""After the stages: track the run in MLflow, register the bundle, run the gate.

`publish_run` is the last step of `shelfwise run`:

1. one MLflow run: the config as parameters, every stage number as metrics, the
   bundle as artifacts;
2. the bundle becomes a version of the project's registered model (or the existing
   version with the same content);
3. the promotion gate re-scores it and the champion on this run's test split and
   moves the aliases (`evaluate.gate`);
4. `gate/gate.json`, the report, and the gate's numbers go to the run folder and MLflow.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from shelfwise.config import ShelfwiseConfig
from shelfwise.package.bundle import read_bundle_manifest
from shelfwise.publish.gate import GateResult, check_rules, decide, score_versions
from shelfwise.registry.mlflow_store import (
    CHAMPION,
    TAG_DATA_CUTOFF,
    TAG_DATA_FINGERPRINT,
    TAG_GATE,
    TAG_RUN,
    ModelRegistry,
    ModelVersion,
)
from shelfwise.registry.tracking import RunLogger, flatten_params, metric_name, run_metrics

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Published:
    """What publishing a run did."""

    version: ModelVersion
    new: bool
    gate: GateResult
    mlflow_run_id: str
    report: Path | None


def publish_run(config: ShelfwiseConfig, run_dir: Path, bundle_dir: Path) -> Published:
    """Track, register and gate a finished run's bundle (see the module docstring).

    Raises:
        RegistryError: MLflow cannot be reached or refuses a write.
    """
    registry = ModelRegistry.from_config(config)
    logger = RunLogger(registry, run_dir.name)
    try:
        logger.log_params(flatten_params(config.model_dump(mode="json")))
        logger.log_metrics(run_metrics(run_dir))
        logger.log_bundle(bundle_dir)
        manifest = read_bundle_manifest(bundle_dir)
        version, new = registry.register(
            logger.mlflow_run_id,
            manifest.fingerprint,
            {
                TAG_RUN: run_dir.name,
                TAG_DATA_FINGERPRINT: manifest.data_fingerprint,
                TAG_DATA_CUTOFF: str(manifest.lineage.get("data_cutoff_timestamp", "")),
            },
        )
        result = gate(config, run_dir, registry, version, bundle_dir)
        result.write(run_dir)
        registry.set_tag(version.version, TAG_GATE, result.decision)
        logger.set_tag("shelfwise.model_version", version.version)
        logger.set_tag(TAG_GATE, result.decision)
        gate_numbers = {
            metric_name("gate", side, name): value
            for side in ("challenger", "champion")
            for name, value in (result.metrics.get(side) or {}).items()
        }
        logger.log_metrics(gate_numbers)
        logger.log_file(run_dir / "gate" / "gate.json", "gate")
        report = write_report(run_dir)
        if report is not None:
            logger.log_file(report)
    except BaseException:
        logger.finish("FAILED")
        raise
    logger.finish()
    return Published(registry.get(version.version), new, result, logger.mlflow_run_id, report)


def gate(
    config: ShelfwiseConfig,
    run_dir: Path,
    registry: ModelRegistry,
    version: ModelVersion,
    bundle_dir: Path,
) -> GateResult:
    """Score, decide, and move the aliases for one registered version."""
    champion = registry.by_alias(CHAMPION)
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
        registry.promote(version.version, "gate disabled (gate.enabled: false)")
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
    rules = check_rules(
        config.gate.rules,
        challenger_scores["metrics"],
        None if champion_scores is None else champion_scores["metrics"],
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
    summary = _summary(result)
    if decision in ("first-champion", "promoted"):
        registry.promote(version.version, summary)
    else:
        registry.mark_challenger(version.version, summary)
    return result


def _summary(result: GateResult) -> str:
    failed = result.failures()
    if failed:
        return f"gate refused: {failed[0].message}"
    return f"gate {result.decision}"


def write_report(run_dir: Path) -> Path | None:
    """The run's HTML report (None, with a warning, when it cannot be written)."""
    try:
        from shelfwise.report import write_report as write_html
    except ImportError:
        return None
    try:
        return write_html(run_dir)
    except Exception as exc:  # a report bug must not lose a registered version
        _log.warning("report not written: %s", exc)
        return None
