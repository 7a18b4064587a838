"""The event log's one owner: its location from a config, and its readers."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from shelfwise.config import load_config
from shelfwise.errors import EventLogError
from shelfwise.stores import event_log as event_log_module
from shelfwise.stores.event_log import EventLog, event_log_dir, iter_event_records, read_event_log


def test_location_is_the_serve_setting_else_the_state_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file = tmp_path / "shelfwise.yaml"
    config_file.write_text("home: state\n", encoding="utf-8")
    assert event_log_dir(load_config(config_file, environ={})) == tmp_path / "state" / "events"
    environ = {"SHELFWISE_SERVE_EVENT_LOG_DIR": str(tmp_path / "shared")}
    assert event_log_dir(load_config(config_file, environ=environ)) == tmp_path / "shared"
    monkeypatch.setenv("SHELFWISE_HOME", str(tmp_path / "home"))
    assert event_log_dir(load_config(None)) == (tmp_path / "home" / "events").resolve()


def test_what_the_writer_appends_both_readers_read(tmp_path: Path) -> None:
    hour = 1_700_000_000 // 3600 * 3600
    log = EventLog(tmp_path, clock=lambda: hour + 60)
    log.append([
        {"raw_user_id": "u1", "raw_item_id": "a", "event_type": "view", "timestamp": hour},
        {"raw_user_id": "u2", "raw_item_id": "b", "event_type": "cart", "timestamp": hour + 5,
         "position": 3, "request_id": "r-1"},
    ])  # fmt: skip
    log.close()
    (torn,) = tmp_path.glob("date=*/hour=*/*.jsonl")
    with torn.open("ab") as handle:
        handle.write(b'{"raw_user_id": "u3", "raw_')  # a crash mid-line
    records = list(iter_event_records(tmp_path))
    assert [(r["raw_user_id"], r["position"], r["request_id"]) for r in records] == [
        ("u1", None, None),
        ("u2", 3, "r-1"),
    ]
    window = read_event_log(tmp_path, since=hour + 1)
    assert window["raw_item_id"].to_list() == ["b"]
    assert list(iter_event_records(tmp_path / "missing")) == []


def _events(user: str, n: int, hour: int) -> list[dict[str, object]]:
    return [
        {"raw_user_id": user, "raw_item_id": f"i{k}", "event_type": "view", "timestamp": hour}
        for k in range(n)
    ]


def test_files_are_private_to_the_owner(tmp_path: Path) -> None:
    # issue 14: the log holds raw user ids and queries, and was created 0644
    log = EventLog(tmp_path / "events")
    log.append(_events("u1", 1, 1_700_000_000))
    log.close()
    (written,) = (tmp_path / "events").glob("date=*/hour=*/*.jsonl")
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert stat.S_IMODE(written.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "events").stat().st_mode) == 0o700


def test_a_batch_that_hits_enospc_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # issue 14: a full disk kept 40 events and a torn line of a refused batch, which a
    # client's retry then duplicated
    hour = 1_700_000_000 // 3600 * 3600
    log = EventLog(tmp_path, clock=lambda: hour + 60)
    log.append(_events("before", 3, hour))
    real_pwrite = os.pwrite

    def disk_fills_mid_batch(fd: int, data: object, offset: int) -> int:
        view = memoryview(data)  # type: ignore[arg-type]
        if len(view) > 100:  # the first call writes part of the batch, the next fails
            return real_pwrite(fd, view[: len(view) // 2 + 7], offset)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(event_log_module.os, "pwrite", disk_fills_mid_batch)
    with pytest.raises(EventLogError, match="no event of this batch was accepted"):
        log.append(_events("refused", 40, hour))
    monkeypatch.setattr(event_log_module.os, "pwrite", real_pwrite)
    (written,) = tmp_path.glob("date=*/hour=*/*.jsonl")
    assert written.read_bytes().count(b"\n") == 3
    assert written.read_bytes().endswith(b"\n")  # no torn line
    assert log.append(_events("retried", 40, hour)) == 40  # the retry: once, same file
    log.close()
    users = [record["raw_user_id"] for record in iter_event_records(tmp_path)]
    assert users == ["before"] * 3 + ["retried"] * 40
    assert log.lines_written == 43
