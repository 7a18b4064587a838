"""Drift gauges of a running server: the champion's training data vs recent events.

Every `drift_interval_s` a daemon thread reads the last `drift_window_s` of the
server's own event log and sets `shelfwise_serve_drift_*` (see `shelfwise.monitor.drift`
for the measures). The reference is rebuilt whenever the champion changes. Score
drift is left to `shelfwise monitor drift` (it scores hundreds of users); the
gauges stay cheap enough to run beside serving.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from shelfwise.monitor.drift import Reference, measure
from shelfwise.serve.holder import ModelHolder
from shelfwise.serve.metrics import ServeMetrics
from shelfwise.serve.settings import ServeSettings
from shelfwise.stores.event_log import read_event_log

logger = logging.getLogger("shelfwise.serve")


class DriftMonitor:
    """Recompute the drift gauges in the background (see the module doc)."""

    def __init__(
        self,
        holder: ModelHolder,
        metrics: ServeMetrics,
        settings: ServeSettings,
        event_log_dir: Path,
    ) -> None:
        self.holder = holder
        self.metrics = metrics
        self.settings = settings
        self.log_dir = event_log_dir
        self._reference: tuple[str, Reference] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="drift-monitor", daemon=True)

    def start(self) -> None:
        """Measure in the background until `stop`."""
        self._thread.start()

    def stop(self) -> None:
        """Stop measuring."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def measure_once(self, now: float | None = None) -> bool:
        """Update the gauges from the current window; False when no champion is loaded."""
        champion = self.holder.models.champion
        if champion is None:
            return False
        if self._reference is None or self._reference[0] != champion.manifest.fingerprint:
            self._reference = (champion.manifest.fingerprint, Reference.from_bundle(champion.path))
        end = int(now if now is not None else time.time())
        start = end - int(self.settings.drift_window_s)
        events = read_event_log(self.log_dir, since=start, until=end + 1)
        report = measure(self._reference[1], events, window=(start, end))
        self.metrics.set_drift(report, champion.version)
        return True

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.drift_interval_s):
            try:
                self.measure_once()
            except Exception:  # never let the monitor die silently
                logger.exception("drift measurement failed")
