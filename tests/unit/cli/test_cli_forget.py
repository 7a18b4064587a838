"""`shelfwise forget`: files under the home lose the users now, the list keeps them."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from shelfwise.cli.main import app
from shelfwise.privacy import PRIVACY_KEY, Pseudonymizer

KEY = "k3y-for-tests-0123456789abcdefghijkl"
HASH = Pseudonymizer(KEY.encode())
runner = CliRunner()


def _home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    validated = home / "runs" / "20260101T000000" / "validate" / "events.parquet"
    validated.parent.mkdir(parents=True)
    users = [HASH("alice"), HASH("bob"), HASH("carol")]
    pl.DataFrame({"raw_user_id": users, "raw_item_id": ["a", "b", "c"]}).write_parquet(validated)
    old_hour = home / "events" / "date=2020-01-01" / "hour=00" / "events-1.jsonl"
    old_hour.parent.mkdir(parents=True)
    old_hour.write_text("".join(json.dumps({"raw_user_id": u}) + "\n" for u in users))
    return home


def test_forget_removes_rows_now_and_lists_the_users(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PRIVACY_KEY, KEY)
    home = _home(tmp_path)
    ids = tmp_path / "ids.txt"
    ids.write_text("bob\n\n")
    result = runner.invoke(app, ["forget", "alice", "--file", str(ids), "--set", f"home={home}"])
    assert result.exit_code == 0, result.output
    assert "forgot 2 user(s)" in " ".join(result.output.split())
    validated = pl.read_parquet(next(home.rglob("validate/events.parquet")))
    assert validated["raw_user_id"].to_list() == [HASH("carol")]
    log = next(home.rglob("*.jsonl")).read_text()
    assert HASH("alice") not in log
    assert HASH("carol") in log
    listed = (home / "privacy" / "forget.jsonl").read_text()
    assert HASH("alice") in listed
    assert HASH("bob") in listed
    audit = [
        json.loads(line) for line in (home / "privacy" / "audit.jsonl").read_text().splitlines()
    ]
    assert {row["pseudonym"] for row in audit} == {HASH("alice"), HASH("bob")}
    assert all(row["actor"].startswith("cli:") for row in audit)
    assert all(row["detail"]["rows_removed_now"]["run_artefacts"] == 2 for row in audit)
    for path in home.rglob("*"):
        if path.is_file():
            assert b"alice" not in path.read_bytes()
            assert b"bob" not in path.read_bytes()


def test_forget_needs_the_key_and_a_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PRIVACY_KEY, raising=False)
    result = runner.invoke(app, ["forget", "alice", "--set", f"home={tmp_path}"])
    assert result.exit_code == 3
    assert "privacy-key" in result.output
    assert "SHELFWISE_PRIVACY_KEY" in result.output
    assert not (tmp_path / "privacy").exists()
    result = runner.invoke(app, ["forget", "--set", f"home={tmp_path}"])
    assert result.exit_code == 3
    assert "at least one user id" in result.output


def test_run_refuses_to_start_without_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PRIVACY_KEY, raising=False)
    events = tmp_path / "events.csv"
    events.write_text("user_id,item_id\nalice,a\n", encoding="utf-8")
    config = tmp_path / "shelfwise.yaml"
    config.write_text(
        f"home: {tmp_path / 'home'}\ndata: {{events: {{path: {events}}}}}\n"
        "privacy: {pseudonymize_users: true}\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["run", "-c", str(config)])
    assert result.exit_code == 3
    assert "privacy-key" in result.output
    assert not list((tmp_path / "home").rglob("*.parquet"))  # no stage ran


def test_forget_clears_a_redis_online_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    from shelfwise.contracts import EventType
    from shelfwise.stores.online import UserEvent
    from shelfwise.stores.redis_store import RedisStore

    monkeypatch.setenv(PRIVACY_KEY, KEY)
    store = RedisStore(redis_url, timeout=2.0)
    store.append([UserEvent(HASH("alice"), "a", EventType.VIEW, 1)])
    sets = ["--set", f"home={tmp_path}", "--set", f"serve.online_store_url={redis_url}"]
    sets += ["--set", "privacy.pseudonymize_users=true"]
    result = runner.invoke(app, ["forget", "alice", *sets])
    assert result.exit_code == 0, result.output
    assert "online_store 1" in result.output
    assert store.state(HASH("alice")).is_empty
    store.close()
