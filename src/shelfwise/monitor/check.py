"""One drift check, as `shelfwise monitor drift` runs it: a window of the event log
against a reference bundle, with score drift and catalog changes when asked.

The server's gauges (`serve/drift_monitor.py`) call `measure` directly: they skip the
score drift (it scores hundreds of users) and the catalog (the server has no config).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from shelfwise.errors import ShelfwiseError
from shelfwise.monitor.drift import DriftReport, Reference, measure
from shelfwise.stores.event_log import read_event_log

if TYPE_CHECKING:
    from shelfwise.config import SourceConfig


def check_drift(
    reference_bundle: Path,
    log_dir: Path,
    *,
    since_seconds: int,
    scores: bool = True,
    catalog: SourceConfig | None = None,
    now: int | None = None,
) -> DriftReport:
    """Drift of the last `since_seconds` of the event log from a bundle's training data.

    Args:
        reference_bundle: the bundle the events are compared with (usually the champion).
        log_dir: the event log (`shelfwise.stores.event_log.event_log_dir`).
        since_seconds: the window: events newer than now minus this.
        scores: also measure the shift of top-1 recommendation scores (loads the bundle).
        catalog: the current catalog source, to count items added and removed.
        now: the window's end in unix seconds (default: the clock).
    """
    end = int(time.time()) if now is None else now
    window = (end - since_seconds, end)
    recent = read_event_log(log_dir, since=window[0], until=window[1] + 1)
    engine = None
    if scores and recent.height:
        from shelfwise.runtime.engine import load_engine

        engine = load_engine(reference_bundle, verify=False)
    return measure(
        Reference.from_bundle(reference_bundle),
        recent,
        window=window,
        engine=engine,
        catalog_ids=catalog_ids(catalog),
    )


def catalog_ids(source: SourceConfig | None) -> list[str] | None:
    """The current catalog's raw item ids, when `source` names a readable catalog."""
    if source is None or not source.path.exists():
        return None
    from shelfwise.contracts import RAW_ITEM_ID
    from shelfwise.ingest import read_source

    try:
        data, _ = read_source(source, "catalog")
    except ShelfwiseError:
        return None
    return [str(v) for v in data[RAW_ITEM_ID].drop_nulls().to_list()]
