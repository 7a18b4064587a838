"""Swaps without a visible pause: one load at a time on a thread of its own, a pointer
flip, then the old engine's memory released.

Every bundle a running server takes in (admin reloads, the registry watcher) goes
through one `BundleLoader`:

1. **One at a time.** A second load while one runs is refused with 409
   `reload-in-progress` rather than queued: each load holds a whole second engine in
   memory (a queue of N loads could hold N), and an admin call that waited minutes
   behind others would time out anyway. The message says what is loading; the watcher
   simply tries again at its next check.
2. **Off the event loop, behind the requests.** The load runs on the `bundle-loader`
   thread at nice 19 (Linux: per thread), so the scheduler gives the request threads
   the CPU whenever they want it, and with the GIL switch interval at 0.5 ms instead
   of 5 ms, so a pure-Python stretch of the load makes a request wait at most that
   long for the interpreter. Precomputing runs on that one thread. `load_for_serving`
   then calls each job once (`warm_up`), so the query encoder and friends load here,
   not in the first requests after the swap.
3. **A pointer flip.** The new engine's objects are frozen out of the collector's
   passes (`gc.freeze()`, without the full collection `freeze_heap` does at start: that
   collection walked both engines and stalled every request 320-370 ms per reload),
   then `ModelHolder.swap` replaces one reference: requests in flight finish on the
   old engine, the next ones get the new one.
4. **The old engine released.** The loader waits until no request, shadow task or
   drift computation holds the old engine any more (its reference count, polled every
   20 ms, at most `reload_drain_s`), then `Engine.release()` drops its arrays, lists,
   indexes and caches, and `malloc_trim` hands the freed heap back to the system. The
   old engine was frozen when it came in, so the collector would never have freed what
   sits in reference cycles: without this, every reload kept its engine (607 MB to
   ~1.3 GB after 10 reloads, issue 14).

An admin reload pins its role: the watcher leaves a pinned role alone until the pin is
released (`DELETE /v1/admin/pin`), so `POST /v1/admin/reload {"model_version": "1"}` is
not undone by the next poll.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import logging
import os
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from shelfwise.errors import ReloadInProgressError
from shelfwise.runtime.engine import Engine
from shelfwise.serve.holder import CHALLENGER, CHAMPION, ModelHolder, Role
from shelfwise.serve.lifecycle import Swapped, load_for_serving, serve_engine, version_of
from shelfwise.serve.metrics import ServeMetrics
from shelfwise.serve.settings import ServeSettings

logger = logging.getLogger("shelfwise.serve")

Source = Literal["admin", "registry", "startup"]
_DRAIN_POLL_S: Final = 0.02
# While a load runs: a thread waiting for the GIL gets it after at most this long
# (CPython's default is 5 ms, a request's whole budget).
_LOAD_SWITCH_INTERVAL_S: Final = 0.0005
_LOADER_NICE: Final = 19
_NO_FULL_COLLECTION: Final = 1_000_000  # gen-2 threshold while loading (default 10)
_RETIRED_KEPT: Final = 16  # weak references to released engines, for checks and tests


@dataclass(frozen=True)
class Loading:
    """The load in progress."""

    role: Role
    source: Source
    version: str | None
    started_at: float  # unix seconds


class BundleLoader:
    """Loads bundles one at a time on the `bundle-loader` thread and swaps them in.

    Args:
        holder: the app's model holder.
        metrics: the app's collectors (`shelfwise_serve_reloads_total`).
        settings: how bundles are loaded (`load_for_serving`).
        drain_timeout_s: how long a swapped-out engine may stay in use before the
            loader stops waiting for it (it is then freed by whoever drops it last);
            default `settings.reload_drain_s`.
    """

    def __init__(
        self,
        holder: ModelHolder,
        metrics: ServeMetrics,
        settings: ServeSettings,
        *,
        drain_timeout_s: float | None = None,
    ) -> None:
        """Create the loader; its thread starts with the first load."""
        self.holder = holder
        self.metrics = metrics
        self.settings = settings
        self.drain_timeout_s = (
            settings.reload_drain_s if drain_timeout_s is None else drain_timeout_s
        )
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="bundle-loader", initializer=_behind_requests
        )
        self._gate = threading.Lock()  # held from submit until the old engine is released
        self._state = threading.Lock()
        self._loading: Loading | None = None
        self._pins: dict[Role, str | None] = {}
        self.retired: deque[weakref.ref[Engine]] = deque(maxlen=_RETIRED_KEPT)

    @property
    def loading(self) -> Loading | None:
        """The load in progress, if any."""
        return self._loading

    @property
    def pins(self) -> dict[Role, str | None]:
        """Pinned roles and the version each is pinned to (None: pinned to no model)."""
        with self._state:
            return dict(self._pins)

    def is_pinned(self, role: Role) -> bool:
        """True while an admin pin keeps the watcher away from `role`."""
        with self._state:
            return role in self._pins

    def release_pins(self, role: Role | None = None) -> dict[Role, str | None]:
        """Release the pin of `role` (None: every pin); return the pins released."""
        with self._state:
            roles = list(self._pins) if role is None else [r for r in self._pins if r == role]
            return {r: self._pins.pop(r) for r in roles}

    def submit(
        self,
        locate: Callable[[], Path],
        role: Role,
        *,
        version: str | None = None,
        source: Source = "admin",
        pin: bool = False,
    ) -> Future[Swapped]:
        """Start loading on the loader thread; the future resolves once the new engine
        serves and the old one is released (the next load can start at once).

        Args:
            locate: where the bundle is (called on the loader thread: a registry may
                download it first).
            role: champion or challenger.
            version: the version label (registry versions); default from the bundle.
            source: who asked, for logs and the refusal message.
            pin: keep the watcher away from `role` after the swap (admin reloads).

        Raises:
            ReloadInProgressError: another load is running (nothing was started).
        """
        if not self._gate.acquire(blocking=False):
            raise ReloadInProgressError(self._busy_message())
        done: Future[Swapped] = Future()
        self._loading = Loading(role, source, version, time.time())
        try:
            self._executor.submit(self._run, locate, role, version, source, pin, done)
        except BaseException:
            self._loading = None
            self._gate.release()
            raise
        return done

    def load(
        self,
        locate: Callable[[], Path],
        role: Role,
        *,
        version: str | None = None,
        source: Source = "registry",
        pin: bool = False,
    ) -> Swapped:
        """`submit` and wait for it (blocking: for threads, not the event loop).

        Raises:
            ReloadInProgressError: another load is running.
            Exception: whatever the load raised (the holder is unchanged).
        """
        return self.submit(locate, role, version=version, source=source, pin=pin).result()

    def drop_challenger(self, *, pin: bool) -> str | None:
        """Stop canary and shadow traffic and release the challenger (on the loader
        thread, behind any load); `pin`: keep the watcher from bringing it back.

        Returns:
            The version removed, if there was one.
        """
        with self._state:
            if pin:
                self._pins[CHALLENGER] = None
            old = self.holder.drop_challenger()
        self.metrics.clear_model(CHALLENGER)
        if old is None:
            return None
        version = old.version
        self._executor.submit(self._release, [old])
        del old
        return version

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no load (or release) is running; False on timeout."""
        if not self._gate.acquire(timeout=-1 if timeout is None else timeout):
            return False
        self._gate.release()
        return True

    def close(self) -> None:
        """Stop the loader thread after the current load (at shutdown)."""
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _busy_message(self) -> str:
        loading = self._loading
        what = (
            "a bundle"
            if loading is None
            else f"{'version ' + loading.version if loading.version else 'a bundle'} as "
            f"{loading.role} (asked by {loading.source}, "
            f"{max(0.0, time.time() - loading.started_at):.0f} s ago)"
        )
        return (
            f"{what} is being loaded; the server loads one bundle at a time, so retry when "
            "it is done (GET /v1/admin/models shows what is loading)"
        )

    def _run(
        self,
        locate: Callable[[], Path],
        role: Role,
        version: str | None,
        source: Source,
        pin: bool,
        done: Future[Swapped],
    ) -> None:
        outcome: Swapped | BaseException
        try:
            outcome, retired = self._load_and_swap(locate, role, version, source, pin)
            if retired:
                self._release(retired)
        except BaseException as exc:  # the caller gets it; the holder is unchanged
            outcome = exc
        finally:
            self._loading = None
            self._gate.release()  # before the caller hears back: it may load again at once
        if isinstance(outcome, BaseException):
            done.set_exception(outcome)
        else:
            done.set_result(outcome)

    def _load_and_swap(
        self,
        locate: Callable[[], Path],
        role: Role,
        version: str | None,
        source: Source,
        pin: bool,
    ) -> tuple[Swapped, list[Engine]]:
        """Load and flip; the result, and the engine to release (in a list, or none).

        Raises:
            Exception: the load failed (counted, logged); nothing changed.
        """
        try:
            with _switching_often():
                engine = load_for_serving(
                    locate(), self.settings, version=version, precompute_threads=1
                )
        except Exception as exc:
            self.metrics.reloads.labels(role, "failed").inc()
            logger.warning("reload of %s refused: %s", role, _reason(exc))
            raise
        if self.settings.freeze_heap:
            # the new engine out of full passes, without a full pass: a young one
            # (the objects made last) is cheap and keeps their garbage from being frozen
            gc.collect(1)
            gc.freeze()
        with self._state:
            if source == "registry" and role in self._pins:  # pinned while it loaded
                models = self.holder.models
                served = version_of(models.champion if role == CHAMPION else models.challenger)
                del models
                result = Swapped(role, served or "", served)
                self.metrics.reloads.labels(role, "unchanged").inc()
                previous: Engine | None = engine
            else:
                previous = serve_engine(self.holder, self.metrics, engine, role)
                if pin:
                    self._pins[role] = engine.version
                result = Swapped(role, engine.version, version_of(previous))
                self.metrics.reloads.labels(role, "swapped").inc()
                logger.info(
                    "serving %s as %s (was %s; asked by %s)",
                    engine.version,
                    role,
                    result.previous_version,
                    source,
                )
        del engine
        return result, [] if previous is None else [previous]

    def _release(self, box: list[Engine]) -> None:
        """Wait until only `box` holds the engine, then drop its memory."""
        deadline = time.monotonic() + self.drain_timeout_s
        # references: the list's slot and getrefcount's own argument
        while sys.getrefcount(box[0]) > 2:
            if time.monotonic() > deadline:
                logger.warning(
                    "engine %s is still in use %.0f s after its swap; it is freed when its "
                    "last user lets go",
                    box[0].version,
                    self.drain_timeout_s,
                )
                self.retired.append(weakref.ref(box.pop()))
                return
            time.sleep(_DRAIN_POLL_S)
        engine = box.pop()
        self.retired.append(weakref.ref(engine))
        engine.release()
        del engine
        _trim_heap()


def _behind_requests() -> None:
    """Lower the loader thread's priority (Linux: nice is per thread); its own threads
    (precompute batches, OpenMP) inherit it."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), _LOADER_NICE)


@contextlib.contextmanager
def _switching_often() -> Iterator[None]:
    """While a load runs: request threads take the GIL within 0.5 ms, and no full
    collection runs.

    A load makes hundreds of thousands of long-lived objects, which would trigger full
    collections over the half-built engine again and again, each stopping every thread
    for as long as it walks them; the loaded objects are frozen at the end instead
    (`gc.freeze()`), and young collections go on as usual.
    """
    interval = sys.getswitchinterval()
    thresholds = gc.get_threshold()
    sys.setswitchinterval(_LOAD_SWITCH_INTERVAL_S)
    gc.set_threshold(thresholds[0], thresholds[1], _NO_FULL_COLLECTION)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        sys.setswitchinterval(interval)


def _trim_heap() -> None:
    """Return the C heap's free pages to the system (glibc `malloc_trim`).

    numpy arrays under glibc's mmap threshold (up to 32 MB once it adapts) come from
    the heap, and freeing them leaves the pages mapped: RSS would stay at its peak.
    No-op where glibc is not the allocator. ctypes releases the GIL during the call.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, when the process has it (looked up once)."""
    try:
        function: Callable[[int], int] = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None
    return function


def _reason(exc: Exception) -> str:
    message = getattr(exc, "message", None)
    return message if isinstance(message, str) else f"{type(exc).__name__}: {exc}"
