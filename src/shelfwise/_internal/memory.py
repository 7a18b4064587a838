"""Peak resident memory of this process while a block runs (sampled in a thread)."""

from __future__ import annotations

import threading
from types import TracebackType

import psutil


class PeakMemory:
    """Context manager sampling RSS every `interval` seconds; `.peak_mb` after exit.

    Sampling can miss a spike shorter than the interval; at 20 ms it catches the
    allocations that matter for capacity planning (whole matrices, score batches).
    """

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peak_mb = 0.0
        self._process = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _read(self) -> None:
        rss_mb = self._process.memory_info().rss / 2**20
        self.peak_mb = max(self.peak_mb, rss_mb)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._read()

    def __enter__(self) -> PeakMemory:
        self._read()
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._read()
