"""The live pages' data: KPIs per version, canary decisions, experiments, drift gauges.

KPIs are read off this process's own collectors (`ServeMetrics.registry`, the numbers
`/metrics` exposes): served lists and impressions, attributed clicks / carts /
purchases (`serve/attribution.py`), model requests and errors, and the latency
histogram. CTR and conversion are per served list; "lists clicked" (bought from) is the
share of served lists with at least one attributed click (purchase), the statistic
`shelfwise canary judge` tests (one yes/no per list), so the two agree on what a
version is doing.

The canary's decisions are the JSON lines `shelfwise canary judge --apply` appends to
`<home>/canary/decisions.jsonl` (fields: decision, champion, challenger, kpis, reasons,
at), read as plain JSON: the online role may not import the control role's code.
"""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from prometheus_client import CollectorRegistry

from shelfwise.serve.metrics import LABEL_MODEL_VERSION

DECISIONS_PATH: Final = ("canary", "decisions.jsonl")
MAX_DECISIONS: Final = 20
# drift gauges: name -> (label, the value above which it is flagged, the gauge's full
# scale); the thresholds are deploy/monitoring/alerts.yml's, unseen users (no alert) 0.5
DRIFT_GAUGES: Final = {
    "item_psi": ("Item popularity PSI", 0.25, 1.0),
    "unseen_users_ratio": ("Unseen users", 0.5, 1.0),
    "unseen_items_ratio": ("Unseen items", 0.2, 1.0),
    "query_oov_ratio": ("Query terms not in the catalog", 0.3, 1.0),
}


@dataclass
class VersionKpis:
    """Live numbers of one model version since this server loaded it."""

    version: str
    role: str = ""
    lists: float = 0.0
    impressions: float = 0.0
    clicks: float = 0.0
    carts: float = 0.0
    purchases: float = 0.0
    clicked_lists: float = 0.0  # lists with at least one attributed click
    purchased_lists: float = 0.0  # lists with at least one attributed purchase
    requests: float = 0.0
    errors: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None

    @property
    def ctr(self) -> float | None:
        """Attributed clicks per served list (as `canary judge` computes it)."""
        return self.clicks / self.lists if self.lists else None

    @property
    def clicked_share(self) -> float | None:
        """Share of served lists with a click: what `canary judge` tests."""
        return self.clicked_lists / self.lists if self.lists else None

    @property
    def purchased_share(self) -> float | None:
        """Share of served lists with a purchase."""
        return self.purchased_lists / self.lists if self.lists else None

    @property
    def conversion(self) -> float | None:
        """Attributed purchases per served list."""
        return self.purchases / self.lists if self.lists else None

    @property
    def error_rate(self) -> float | None:
        """Failed requests per request."""
        total = self.requests + self.errors
        return self.errors / total if total else None


def version_kpis(registry: CollectorRegistry) -> list[VersionKpis]:
    """Per-version KPIs from the app's collectors, the champion's first."""
    kpis: dict[str, VersionKpis] = {}
    buckets: dict[str, dict[float, float]] = {}
    for family in registry.collect():
        for sample in family.samples:
            version = sample.labels.get(LABEL_MODEL_VERSION)
            if version is None:
                continue
            row = kpis.setdefault(version, VersionKpis(version))
            _add(row, buckets, sample.name, sample.labels, sample.value)
    for version, cumulative in buckets.items():
        kpis[version].p50_ms = _ms(histogram_quantile(cumulative, 0.5))
        kpis[version].p99_ms = _ms(histogram_quantile(cumulative, 0.99))
    order = {"champion": 0, "challenger": 1}
    return sorted(kpis.values(), key=lambda row: (order.get(row.role, 2), row.version))


def _add(
    row: VersionKpis,
    buckets: dict[str, dict[float, float]],
    name: str,
    labels: dict[str, str],
    value: float,
) -> None:
    attributed = {"click": "clicks", "cart": "carts", "purchase": "purchases"}
    if name == "shelfwise_serve_model_info" and value:
        row.role = labels.get("role", row.role)
    elif name == "shelfwise_serve_served_lists_total":
        row.lists += value
    elif name == "shelfwise_serve_impressions_total":
        row.impressions += value
    elif name == "shelfwise_serve_attributed_events_total":
        kind = attributed.get(labels.get("event_type", ""))
        if kind is not None:
            setattr(row, kind, getattr(row, kind) + value)
    elif name == "shelfwise_serve_attributed_lists_total":
        kind = {"click": "clicked_lists", "purchase": "purchased_lists"}.get(
            labels.get("event_type", "")
        )
        if kind is not None:
            setattr(row, kind, getattr(row, kind) + value)
    elif name == "shelfwise_serve_model_requests_total":
        row.requests += value
    elif name == "shelfwise_serve_model_errors_total":
        row.errors += value
    elif name == "shelfwise_serve_model_duration_seconds_bucket":
        bound = float(labels["le"])
        slot = buckets.setdefault(row.version, {})
        slot[bound] = slot.get(bound, 0.0) + value  # summed over endpoints


def histogram_quantile(cumulative: dict[float, float], q: float) -> float | None:
    """Prometheus's `histogram_quantile` over cumulative buckets (linear in a bucket).

    Written here rather than imported: the same function lives in the control role
    (`loop/canary.py`), which the online role may not import.
    """
    bounds = sorted(cumulative)
    if not bounds or cumulative[bounds[-1]] <= 0:
        return None
    rank = q * cumulative[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = cumulative[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower
            width = count - below
            return lower + (bound - lower) * ((rank - below) / width if width else 1.0)
        lower, below = bound, count
    return lower


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0


def canary_decisions(home: Path) -> list[dict[str, Any]]:
    """The last `MAX_DECISIONS` canary verdicts, newest first (lines that are not: skipped)."""
    path = home.joinpath(*DECISIONS_PATH)
    try:
        with path.open(encoding="utf-8") as lines:
            # the file grows by one line per CronJob run: the tail is all that is shown
            tail = deque(lines, maxlen=MAX_DECISIONS)
    except FileNotFoundError:
        return []
    decisions = []
    for line in reversed(tail):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "decision" in record:
            decisions.append(record)
    return decisions


def decisions_chart(decisions: list[dict[str, Any]]) -> dict[str, Any]:
    """uPlot's data: CTR of champion and challenger at each decision, oldest first."""
    ordered = list(reversed(decisions))

    def ctr(record: dict[str, Any], side: str) -> float | None:
        value = (record.get("kpis") or {}).get(side, {}).get("ctr")
        return float(value) if isinstance(value, int | float) else None

    return {
        # "2026-12-06T09:30:00Z" -> "12-06 09:30": the axis has room for that
        "labels": [str(record.get("at", ""))[5:16].replace("T", " ") for record in ordered],
        "series": [
            {"name": f"{side} CTR", "values": [ctr(record, side) for record in ordered]}
            for side in ("champion", "challenger")
        ],
    }


@dataclass(frozen=True)
class DriftGauge:
    """One drift gauge's current value."""

    name: str
    label: str
    value: float | None
    threshold: float
    scale: float

    @property
    def flagged(self) -> bool:
        """True above the threshold."""
        return self.value is not None and self.value > self.threshold


def drift_gauges(registry: CollectorRegistry) -> tuple[list[DriftGauge], float | None, float]:
    """The drift gauges, the time they were computed (None: never) and the window's events."""
    values: dict[str, float] = {}
    measured_at: float | None = None
    for family in registry.collect():
        for sample in family.samples:
            if sample.name == "shelfwise_serve_drift_timestamp_seconds" and sample.value:
                measured_at = sample.value
            elif sample.name.startswith("shelfwise_serve_drift_"):
                values[sample.name.removeprefix("shelfwise_serve_drift_")] = sample.value
    gauges = [
        DriftGauge(name, label, values.get(name), threshold, scale)
        for name, (label, threshold, scale) in DRIFT_GAUGES.items()
    ]
    return gauges, measured_at, values.get("window_events", 0.0)
