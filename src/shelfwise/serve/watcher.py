"""`RegistryWatcher`: the server follows the registry's `champion` / `challenger` aliases.

How soon a promotion reaches a server (`shelfwise promote`, `rollback`, the canary
judgement):

* a registry on this machine's disk (`sqlite:` MLflow, the local `file:` store): the
  watcher looks at the registry's files every `watch_check_s` (default 1 s; a `stat`
  of two or three files, microseconds) and reads the aliases as soon as one changed,
  so the new version starts loading within `watch_check_s` of the move;
* any other registry (`http(s):` MLflow): the aliases are read every
  `watch_interval_s` (default 30 s), so within one interval.

Then the bundle loads (`BundleLoader`: seconds to a minute, by catalog size) and is
swapped in. Every `watch_interval_s` the aliases are read whatever the files say.

A role an admin reload pinned is left alone until the pin is released; while another
load runs the watcher tries again at its next check. MLflow is imported only when a
registry is configured.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from shelfwise.errors import ReloadInProgressError, ShelfwiseError
from shelfwise.serve.holder import CHALLENGER, CHAMPION, Role
from shelfwise.serve.lifecycle import Swapped
from shelfwise.serve.loader import BundleLoader

if TYPE_CHECKING:
    from shelfwise.registry.base import Registry

logger = logging.getLogger("shelfwise.serve")

Marker = tuple[tuple[int, int, int] | None, ...]


class RegistryWatcher:
    """A daemon thread that follows the registry's aliases into the server.

    Args:
        loader: the app's bundle loader (which also holds the holder and the pins).
    """

    def __init__(self, loader: BundleLoader) -> None:
        """Prepare the watcher; `start` runs it."""
        self.loader = loader
        self.settings = loader.settings
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="registry-watcher", daemon=True)
        self._registry: Registry | None = None
        uri = self.settings.registry_uri
        self._files = registry_files(uri) if uri is not None else None

    def start(self) -> None:
        """Follow the aliases in the background until `stop`."""
        self._thread.start()

    def stop(self) -> None:
        """Stop following (waits for the current poll)."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.settings.watch_interval_s + 5)

    def wake(self) -> None:
        """Read the aliases at once (e.g. after a pin was released)."""
        self._wake.set()

    def poll_once(self) -> list[Swapped]:
        """Load the version of each alias that is not served yet (pinned roles: none).

        Raises:
            ReloadInProgressError: another load is running; try again later.
            ShelfwiseError: the registry cannot be read, or a bundle cannot be loaded.
        """
        registry = self._open()
        swapped: list[Swapped] = []
        for role in (CHAMPION, CHALLENGER):
            if self.loader.is_pinned(role):
                continue
            wanted = registry.by_alias(role)
            # the served version only: a reference to the engine here would keep the
            # loader waiting for it to be let go after the swap
            served = self._served_version(role)
            if wanted is None:
                if role == CHALLENGER and served is not None:
                    self.loader.drop_challenger(pin=False)
                continue
            if served == wanted.version:
                continue
            number = wanted.version
            swapped.append(
                self.loader.load(
                    _locator(registry, number), _role(role), version=number, source="registry"
                )
            )
        return swapped

    def _served_version(self, role: str) -> str | None:
        models = self.loader.holder.models
        engine = models.champion if role == CHAMPION else models.challenger
        return None if engine is None else engine.version

    def _open(self) -> Registry:
        if self._registry is None:
            from shelfwise.registry import registry_at

            uri = self.settings.registry_uri
            model = self.settings.registry_model
            if uri is None or model is None:  # the settings validator requires both
                raise ShelfwiseError("the registry watcher needs registry_uri and registry_model")
            cache = (self.settings.bundle_root or Path(".shelfwise")) / "registry-downloads"
            self._registry = registry_at(uri, model, cache_dir=cache)
        return self._registry

    def _loop(self) -> None:
        files = self._files
        check = self.settings.watch_check_s if files else self.settings.watch_interval_s
        marker = file_marker(files) if files else ()
        next_poll = time.monotonic() + self.settings.watch_interval_s
        due = False
        while not self._stop.is_set():
            woken = self._wake.wait(check)
            self._wake.clear()
            if self._stop.is_set():
                return
            current = file_marker(files) if files else ()
            if not (woken or due or current != marker or time.monotonic() >= next_poll):
                continue
            marker = current
            next_poll = time.monotonic() + self.settings.watch_interval_s
            due = False
            try:
                self.poll_once()
            except ReloadInProgressError:  # an admin reload runs: look again next check
                due = True
            except ShelfwiseError as exc:  # keep serving what is loaded; try again later
                logger.warning("registry watch: %s", exc.message)
            except Exception:  # never let the watcher die silently
                logger.exception("registry watch failed")


def registry_files(uri: str) -> list[Path] | None:
    """The files whose change means the registry changed, for a registry on this disk.

    `sqlite:///path` (MLflow): the database and its journal / write-ahead log; a
    `file:` URI or a path (the local store): its `bundles/registry.json`. None for a
    remote registry (read every `watch_interval_s` instead).
    """
    from shelfwise.registry.base import is_local_uri
    from shelfwise.registry.local import BUNDLES_DIR, REGISTRY_FILE

    if uri.startswith("sqlite:///"):
        database = Path(unquote(uri.removeprefix("sqlite:///")).split("?", 1)[0])
        return [
            database,
            *(database.with_name(database.name + end) for end in ("-wal", "-journal")),
        ]
    if is_local_uri(uri):
        parsed = urlparse(uri)
        root = Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(uri)
        return [root / BUNDLES_DIR, root / BUNDLES_DIR / REGISTRY_FILE]
    return None


def file_marker(files: list[Path]) -> Marker:
    """(mtime ns, size, inode) of each file (None when absent): changes with any write."""
    marks: list[tuple[int, int, int] | None] = []
    for path in files:
        try:
            status = os.stat(path)
        except OSError:
            marks.append(None)
            continue
        marks.append((status.st_mtime_ns, status.st_size, status.st_ino))
    return tuple(marks)


def _locator(registry: Registry, version: str) -> Callable[[], Path]:
    return lambda: registry.local_path(version)


def _role(role: str) -> Role:
    return CHAMPION if role == CHAMPION else CHALLENGER
