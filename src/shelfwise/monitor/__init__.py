"""Monitoring of the served models: drift between training data and recent events.

Used by `shelfwise monitor drift` (`check_drift`) and by the server's drift gauges
(`measure`); the event log itself is read through `shelfwise.stores.event_log`.
"""

from __future__ import annotations

from shelfwise.monitor.check import check_drift
from shelfwise.monitor.drift import (
    DriftReport,
    Reference,
    measure,
    population_stability_index,
)

__all__ = ["DriftReport", "Reference", "check_drift", "measure", "population_stability_index"]
