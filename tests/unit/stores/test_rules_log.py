"""`shelfwise.stores.rules_log`: versions on disk, owner-only, torn lines skipped, and
another writer's version picked up by `refresh` (issue 17)."""

from __future__ import annotations

import stat
from pathlib import Path

from shelfwise.config.rules import Rule, RulesConfig
from shelfwise.stores.rules_log import RulesLog, rules_digest

HIDE = RulesConfig(rules=[Rule(id="hide-a", action="hide", items=["a"])])
PIN = RulesConfig(rules=[Rule(id="pin-b", action="pin", items=["b"])])


def test_versions_count_up_with_their_audit_record(tmp_path: Path) -> None:
    log = RulesLog(tmp_path / "rules")
    assert log.current() is None
    first = log.append(HIDE, by="merch", source="api", comment="why")
    second = log.append(PIN, by="rules_file", source="file")
    assert (first.version, second.version) == (1, 2)
    assert first.sha256 == rules_digest(HIDE)
    reread = RulesLog(tmp_path / "rules")
    assert reread.refresh()
    assert [(v.version, v.by, v.source, v.comment) for v in reread.versions()] == [
        (1, "merch", "api", "why"),
        (2, "rules_file", "file", ""),
    ]
    assert reread.current() is not None
    assert reread.current().rules == PIN  # type: ignore[union-attr]
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.root.stat().st_mode) == 0o700


def test_another_writer_is_seen_and_numbers_never_repeat(tmp_path: Path) -> None:
    one, two = RulesLog(tmp_path), RulesLog(tmp_path)
    one.append(HIDE, by="a", source="api")
    assert two.append(PIN, by="b", source="api").version == 2  # read under the lock
    assert one.refresh()
    assert [v.version for v in one.versions()] == [1, 2]
    assert not one.refresh()  # unchanged file: nothing re-read


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    log = RulesLog(tmp_path)
    log.append(HIDE, by="a", source="api")
    with log.path.open("a") as handle:
        handle.write('{"version": 2, "rules": {"rul')  # a crash mid-write
    reread = RulesLog(tmp_path)
    reread.refresh()
    assert [v.version for v in reread.versions()] == [1]
    assert reread.append(PIN, by="b", source="api").version == 2
    again = RulesLog(tmp_path)
    again.refresh()
    assert [v.version for v in again.versions()] == [1, 2]  # the new line is whole
