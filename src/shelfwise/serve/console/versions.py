"""The versions page's data: what serves, the registry's versions, the gate's decisions.

Read from what the server already holds or follows, never from training code:

- the holder's champion and challenger (their bundle manifests: metrics, lineage) and
  the canary / shadow shares and admin pins;
- the registry the server follows (`serve.registry_uri`): every version with its
  aliases, `shelfwise.gate` tag and headline metrics, and the alias history;
- a version's gate decision, `<home>/runs/<run_id>/gate/gate.json` (the document
  `shelfwise.publish.gate.GateResult.write` leaves in the run that published it), read
  as plain JSON: the online role may not import the publish package.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from shelfwise.errors import ShelfwiseError
from shelfwise.registry.base import TAG_GATE, flatten_numbers
from shelfwise.runtime.engine import Engine
from shelfwise.serve.holder import ModelHolder
from shelfwise.serve.loader import BundleLoader
from shelfwise.serve.settings import ServeSettings

logger = logging.getLogger("shelfwise.serve")

GATE_PATH: Final = ("gate", "gate.json")  # under <home>/runs/<run_id>/, as publish writes it
MAX_VERSIONS: Final = 50  # the newest registered versions listed and charted
MAX_CHART_METRICS: Final = 4  # lines on the metrics-over-versions chart (more is unreadable)


@dataclass(frozen=True)
class Served:
    """One engine in the holder."""

    role: str
    version: str
    project: str
    fingerprint: str
    created_at: str
    run_id: str
    n_items: int
    n_users: int
    metrics: dict[str, float]
    gate: dict[str, Any] | None = None
    gate_tag: str = ""


@dataclass(frozen=True)
class RegistryRow:
    """One registered version."""

    version: str
    aliases: tuple[str, ...]
    created_at: str
    gate: str
    run_id: str
    metrics: dict[str, float]


@dataclass
class VersionsPage:
    """Everything the versions page shows."""

    served: list[Served]
    canary_fraction: float
    shadow_fraction: float
    pins: dict[str, str | None]
    registry: list[RegistryRow] = field(default_factory=list)
    alias_log: list[dict[str, Any]] = field(default_factory=list)
    registry_error: str | None = None
    chart: dict[str, Any] = field(default_factory=dict)


def read_gate(home: Path, run_id: str) -> dict[str, Any] | None:
    """The gate document of the run that published a version; None when there is none."""
    if not run_id or "/" in run_id or run_id.startswith("."):
        return None
    path = home.joinpath("runs", run_id, *GATE_PATH)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        logger.warning("console: unreadable %s (%s)", path, exc)
        return None
    return document if isinstance(document, dict) else None


def gate_of(home: Path, version: str, run_ids: list[str]) -> dict[str, Any] | None:
    """The gate document that judged `version`, from the first of `run_ids` that has one.

    A run's gate judged the version that run published (`challenger.version`); a
    document about another version (a bundle rebuilt by a later run) is not this one's.
    """
    for run_id in dict.fromkeys(run_ids):
        document = read_gate(home, run_id)
        judged = (document or {}).get("challenger") or {}
        if document is not None and judged.get("version") in (None, version):
            return document
    return None


def _served(role: str, engine: Engine) -> Served:
    manifest = engine.manifest
    run_id = str(manifest.lineage.get("run_id") or "")
    return Served(
        role=role,
        version=engine.version,
        project=manifest.project,
        fingerprint=manifest.fingerprint[:12],
        created_at=manifest.created_at.strftime("%Y-%m-%d %H:%M UTC"),
        run_id=run_id,
        n_items=manifest.n_items,
        n_users=manifest.n_users,
        metrics=flatten_numbers(manifest.metrics),
    )


def versions_page(
    holder: ModelHolder, loader: BundleLoader, settings: ServeSettings, home: Path
) -> VersionsPage:
    """Gather the versions page (reads the registry: call it off the event loop)."""
    models = holder.models
    served = [
        _served(role, engine)
        for role, engine in (("champion", models.champion), ("challenger", models.challenger))
        if engine is not None
    ]
    page = VersionsPage(
        served=served,
        canary_fraction=models.canary_fraction,
        shadow_fraction=models.shadow_fraction,
        pins={str(role): version for role, version in loader.pins.items()},
    )
    if settings.registry_uri is not None and settings.registry_model is not None:
        try:
            _read_registry(page, settings.registry_uri, settings.registry_model, settings)
        except (ShelfwiseError, OSError) as exc:  # the page still shows what serves
            page.registry_error = f"{type(exc).__name__}: {exc}"
    registered = {row.version: row for row in page.registry}
    for index, row in enumerate(served):
        known = registered.get(row.version)
        # the registry's run tag names the run that published (and gated) the version
        run_ids = [known.run_id, row.run_id] if known is not None else [row.run_id]
        served[index] = replace(
            row,
            gate=gate_of(home, row.version, [run for run in run_ids if run]),
            gate_tag=known.gate if known is not None else "",
        )
    rows = [(row.version, row.metrics) for row in page.registry] or [
        (row.version, row.metrics) for row in served
    ]
    page.chart = metrics_chart(rows)
    return page


def _read_registry(page: VersionsPage, uri: str, model: str, settings: ServeSettings) -> None:
    # imported here as admin.py does: MLflow's client loads only for a registry that needs it
    from shelfwise.registry import registry_at

    root = settings.bundle_root or Path(".shelfwise")
    registry = registry_at(uri, model, cache_dir=root / "registry-downloads")
    page.registry = [
        RegistryRow(
            version=version.version,
            aliases=version.aliases,
            created_at=version.created_at.strftime("%Y-%m-%d %H:%M UTC"),
            gate=version.tags.get(TAG_GATE, ""),
            run_id=version.run_id,
            metrics=dict(version.metrics),
        )
        for version in registry.versions()[-MAX_VERSIONS:]
    ]
    page.alias_log = list(reversed(registry.alias_log()))[:20]


def metrics_chart(rows: list[tuple[str, dict[str, float]]]) -> dict[str, Any]:
    """uPlot's data for metrics over versions: x the version's position, a line per metric.

    The metrics drawn are those most versions have, quality metrics (ndcg, recall, ...)
    first; a version without one leaves a gap (null).
    """
    counts: dict[str, int] = {}
    for _, metrics in rows:
        for name in metrics:
            counts[name] = counts.get(name, 0) + 1

    def rank(name: str) -> tuple[int, int, str]:
        quality = any(word in name for word in ("ndcg", "recall", "map", "mrr", "hit"))
        return (0 if quality else 1, -counts[name], name)

    names = sorted(counts, key=rank)[:MAX_CHART_METRICS]
    return {
        "labels": [version for version, _ in rows],
        "series": [
            {"name": name, "values": [metrics.get(name) for _, metrics in rows]} for name in names
        ],
    }
