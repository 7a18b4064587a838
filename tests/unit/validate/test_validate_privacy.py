"""ingest + validate with privacy: pseudonymous user ids, forgotten users dropped and counted."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from shelfwise import ingest, validate
from shelfwise._internal.stage import StageContext
from shelfwise.config import ShelfwiseConfig, load_config
from shelfwise.errors import PrivacyKeyError
from shelfwise.privacy import PRIVACY_KEY, ForgetList, Pseudonymizer, privacy_dir

KEY = "k3y-for-tests-0123456789abcdefghijkl"
HASH = Pseudonymizer(KEY.encode())
EVENTS = (
    "user_id,item_id,event,timestamp\n"
    "alice,i1,view,1511544070\n"
    "alice,i2,click,1511544071\n"
    "bob,i1,view,1511544072\n"
    "carol,i2,view,1511544073\n"
    f"{HASH('dave')},i1,view,1511544074\n"  # from the event log: hashed already
    "erin,i1,view,1511544075,extra\n"  # malformed: its text must not be kept
)


def _config(tmp_path: Path, **overrides: object) -> ShelfwiseConfig:
    events = tmp_path / "events.csv"
    events.write_text(EVENTS, encoding="utf-8")
    return load_config(
        overrides={
            "data.events": {"path": str(events)},
            "data.max_rejected_share": 0.5,  # the malformed row: 1 of 6
            "home": str(tmp_path),
            **overrides,
        },
        environ={},
    )


def _run(config: ShelfwiseConfig, run_dir: Path) -> dict[str, object]:
    ingest.run(StageContext(config, run_dir, {}, run_dir / "ingest"))
    validate.run(
        StageContext(config, run_dir, {"ingest": run_dir / "ingest"}, run_dir / "validate")
    )
    report: dict[str, object] = json.loads((run_dir / "validate" / "report.json").read_text())
    return report


def test_ingest_pseudonymises_and_drops_forgotten_users(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PRIVACY_KEY, KEY)
    config = _config(tmp_path, **{"privacy.pseudonymize_users": True})
    ForgetList(privacy_dir(tmp_path)).add([HASH("bob")], via="cli")
    report = _run(config, tmp_path / "run")
    events = pl.read_parquet(tmp_path / "run" / "validate" / "events.parquet")
    assert sorted(set(events["raw_user_id"])) == sorted(
        {HASH("alice"), HASH("carol"), HASH("dave")}
    )
    counts = report["sources"]["events"]  # type: ignore[index]
    assert counts["forgotten"] == 1
    assert counts["by_reason"]["forgotten-user"] == 1
    assert counts["rows_in"] == counts["accepted"] + counts["quarantined"] + counts["merged"] + 1
    for path in (tmp_path / "run").rglob("*"):  # parts, quarantine, reports: no raw id
        if path.is_file():
            data = path.read_bytes()
            assert not any(raw in data for raw in (b"alice", b"bob", b"carol", b"erin")), path


def test_forgetting_works_with_pseudonymisation_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PRIVACY_KEY, KEY)
    ForgetList(privacy_dir(tmp_path)).add([HASH("alice")], via="api")
    report = _run(_config(tmp_path), tmp_path / "run")
    events = pl.read_parquet(tmp_path / "run" / "validate" / "events.parquet")
    assert "alice" not in set(events["raw_user_id"])
    assert "bob" in set(events["raw_user_id"])
    assert report["sources"]["events"]["forgotten"] == 2  # type: ignore[index]


def test_ingest_refuses_to_pseudonymise_without_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PRIVACY_KEY, raising=False)
    config = _config(tmp_path, **{"privacy.pseudonymize_users": True})
    with pytest.raises(PrivacyKeyError, match="SHELFWISE_PRIVACY_KEY is not set"):
        _run(config, tmp_path / "run")


def test_a_forget_list_without_its_key_stops_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ForgetList(privacy_dir(tmp_path)).add([HASH("alice")], via="api")
    monkeypatch.delenv(PRIVACY_KEY, raising=False)
    with pytest.raises(PrivacyKeyError, match="1 user\\(s\\) are on the forget list"):
        _run(_config(tmp_path), tmp_path / "run")
