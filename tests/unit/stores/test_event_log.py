"""The event log's one owner: its location from a config, and its readers."""

from __future__ import annotations

from pathlib import Path

import pytest

from shelfwise.config import load_config
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
