"""Monitoring of the served models: drift between training data and recent events.

Used by `shelfwise monitor drift` and by the server's drift gauges; imports no
training code.
"""

from __future__ import annotations

from shelfwise.monitor.drift import (
    DriftReport,
    Reference,
    measure,
    population_stability_index,
    read_event_log,
)

__all__ = ["DriftReport", "Reference", "measure", "population_stability_index", "read_event_log"]
