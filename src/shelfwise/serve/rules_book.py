"""The rules in force in one app: `RulesBook`, over the durable rules log.

At start it reads the log (`shelfwise.stores.rules_log`) and, when `serve.rules_file`
is set and its rules differ from the last version the file produced, appends them as a
new version. It re-reads the log at most once per `REFRESH_S` (one `stat`), so every
worker sharing the folder applies a version another worker wrote within that bound.

Replicas on other disks share versions through Redis when the online store is Redis
(`RedisRulesBus`): a PUT takes its version number from a Redis counter, is written to
the local log, then published; every replica looks at the published version at the
same pace and adopts a newer one into its own log (same number, author, time), so all
agree within `REFRESH_S` plus one round trip. When Redis fails, rules stay as they
are and the bus is left alone for `BUS_RETRY_S` (a PUT is then local, published by
no one: send it again once Redis is back). `/v1/admin/rules` (`serve/routes/rules.py`)
reads and writes the book.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Final

import yaml
from pydantic import ValidationError

from shelfwise.config.rules import RulesConfig
from shelfwise.errors import ConfigError
from shelfwise.runtime.rules import RuleSet
from shelfwise.stores.rules_log import (
    RedisRulesBus,
    RulesLog,
    RulesVersion,
    Source,
    rules_digest,
)

logger = logging.getLogger("shelfwise.serve")
REFRESH_S: Final = 1.0  # how stale a worker's rules may be after another worker's PUT
BUS_RETRY_S: Final = 10.0  # after a Redis failure, how long replicas' rules are not read
FILE_AUTHOR: Final = "rules_file"


class RulesBook:
    """The rules in force, from the rules log (see the module doc).

    Args:
        log: the durable rules log.
        bus: the replicas' shared latest version (Redis), or None for one host.
    """

    def __init__(self, log: RulesLog, bus: RedisRulesBus | None = None) -> None:
        """Read the log (and the bus) once."""
        self.log = log
        self.bus = bus
        self._lock = threading.Lock()
        self._checked = 0.0
        self._bus_paused_until = 0.0
        log.refresh()
        self._rules = self._rule_set(log.current())
        self.current()

    @classmethod
    def open(
        cls, log: RulesLog, rules_file: Path | None, bus: RedisRulesBus | None = None
    ) -> RulesBook:
        """The book over `log`, with `rules_file`'s rules as a new version when changed.

        Raises:
            ConfigError: the rules file cannot be read or holds invalid rules.
        """
        book = cls(log, bus)
        if rules_file is not None:
            rules = read_rules_file(rules_file)
            from_file = [v for v in log.versions() if v.source == "file"]
            for warning in rules.warnings():
                logger.warning("rules file %s: %s", rules_file, warning)
            if not from_file or from_file[-1].sha256 != rules_digest(rules):
                book.set(rules, by=FILE_AUTHOR, source="file", comment=str(rules_file))
        return book

    def current(self) -> RuleSet:
        """The rule set in force (the log and the bus looked at once per `REFRESH_S`)."""
        now = time.monotonic()
        if now - self._checked >= REFRESH_S:
            with self._lock:
                if now - self._checked >= REFRESH_S:
                    self._checked = now
                    changed = self.log.refresh()
                    changed = self._adopt(now) or changed
                    if changed:
                        self._rules = self._rule_set(self.log.current())
        return self._rules

    def set(self, rules: RulesConfig, *, by: str, source: Source, comment: str) -> RulesVersion:
        """Write `rules` as the next version, apply it at once, publish it to replicas."""
        version = None
        if self.bus is not None and time.monotonic() >= self._bus_paused_until:
            current = self.log.current()
            try:
                version = self.bus.next_version(current.version if current else 0)
            except self.bus.errors as exc:  # Redis down: a local version only
                self._pause_bus(exc)
        entry = self.log.append(rules, by=by, source=source, comment=comment, version=version)
        with self._lock:
            self._rules = RuleSet(entry.version, entry.rules)
        if version is not None and self.bus is not None:
            try:
                self.bus.publish(entry)
            except self.bus.errors as exc:  # durable here; the others get it later
                self._pause_bus(exc)
        return entry

    def _adopt(self, now: float) -> bool:
        """Take the bus's latest version into the log when it is newer; True if taken."""
        if self.bus is None or now < self._bus_paused_until:
            return False
        try:
            latest = self.bus.latest()
        except self.bus.errors as exc:  # Redis down or garbage: keep serving
            self._pause_bus(exc)
            return False
        current = self.log.current()
        if latest is None or (current is not None and latest.version <= current.version):
            return False
        self.log.append(
            latest.rules,
            by=latest.by,
            source=latest.source,
            comment=latest.comment,
            version=latest.version,
            at=latest.at,
        )
        logger.info("rules version %d adopted from the other replicas", latest.version)
        return True

    def _pause_bus(self, exc: Exception) -> None:
        # a stalled Redis costs one timeout per BUS_RETRY_S, not one per request
        self._bus_paused_until = time.monotonic() + BUS_RETRY_S
        logger.warning("rules: Redis unavailable for %.0f s (%s)", BUS_RETRY_S, exc)

    def close(self) -> None:
        """Drop the bus's connection (the log holds no open file)."""
        if self.bus is not None:
            self.bus.close()

    @staticmethod
    def _rule_set(version: RulesVersion | None) -> RuleSet:
        return RuleSet() if version is None else RuleSet(version.version, version.rules)


def read_rules_file(path: Path) -> RulesConfig:
    """The rules of a YAML (or JSON) rules file.

    Raises:
        ConfigError: missing, unreadable, not YAML, or invalid rules (the reason named).
    """
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(
            f"cannot read the rules file {path}: {exc}; fix serve.rules_file or the file"
        ) from exc
    try:
        return RulesConfig.model_validate(loaded if loaded is not None else {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()[:5]
        )
        raise ConfigError(f"invalid rules file {path}: {problems}") from exc
