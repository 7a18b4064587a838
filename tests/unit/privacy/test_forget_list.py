"""The forget list, the audit trail, and dropping forgotten users from frames and files."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from shelfwise.privacy import (
    ForgetList,
    Pseudonymizer,
    drop_forgotten,
    forget_in_jsonl,
    forget_in_parquet,
    pseudonymize_column,
)

HASH = Pseudonymizer(b"k3y-for-tests-0123456789abcdefghijkl")


def test_the_list_dedupes_and_the_digest_follows_it(tmp_path: Path) -> None:
    listed = ForgetList(tmp_path / "privacy")
    empty = listed.digest()
    assert listed.add([HASH("u1"), HASH("u1"), HASH("u2")], via="api") == [HASH("u1"), HASH("u2")]
    assert listed.add([HASH("u2")], via="cli") == []
    assert listed.pseudonyms() == {HASH("u1"), HASH("u2")}
    assert listed.digest() != empty
    assert listed.path.stat().st_mode & 0o777 == 0o600
    listed.audit(actor="cli:me", action="forget-user", pseudonym=HASH("u1"), detail={"n": 1})
    (record,) = listed.audit_records()
    assert record["pseudonym"] == HASH("u1")
    assert record["actor"] == "cli:me"
    assert record["at"]
    assert "u1" not in listed.audit_path.read_text().replace(HASH("u1"), "")


def test_frames_lose_forgotten_users_whether_raw_or_pseudonymised() -> None:
    frame = pl.DataFrame({"raw_user_id": ["u1", "u2", None, "u1"], "raw_item_id": list("abcd")})
    forgotten = frozenset({HASH("u1")})
    kept, dropped = drop_forgotten(frame, "raw_user_id", forgotten, HASH)
    assert dropped == 2
    assert kept["raw_item_id"].to_list() == ["b", "c"]
    hashed = pseudonymize_column(frame, "raw_user_id", HASH)
    assert hashed["raw_user_id"].to_list() == [HASH("u1"), HASH("u2"), None, HASH("u1")]
    assert pseudonymize_column(hashed, "raw_user_id", HASH).equals(hashed)  # idempotent
    kept, dropped = drop_forgotten(hashed, "raw_user_id", forgotten, None)
    assert dropped == 2
    assert kept.height == 2
    ints = pseudonymize_column(pl.DataFrame({"raw_user_id": [7, 8]}), "raw_user_id", HASH)
    assert ints["raw_user_id"].to_list() == [HASH("7"), HASH("8")]  # as the API sees "7"


def test_files_are_rewritten_without_forgotten_users(tmp_path: Path) -> None:
    forgotten = frozenset({HASH("u1")})
    parquet = tmp_path / "events.parquet"
    pl.DataFrame({"raw_user_id": ["u1", "u2"], "raw_item_id": ["a", "b"]}).write_parquet(parquet)
    assert forget_in_parquet(parquet, "raw_user_id", forgotten, HASH) == 1
    assert pl.read_parquet(parquet)["raw_user_id"].to_list() == ["u2"]
    log = tmp_path / "events.jsonl"
    lines = [{"raw_user_id": HASH("u1")}, {"raw_user_id": "u2"}]
    log.write_text("".join(json.dumps(row) + "\n" for row in lines) + "{torn\n")
    log.chmod(0o600)
    assert forget_in_jsonl(log, "raw_user_id", forgotten, HASH) == 1
    assert log.read_text() == '{"raw_user_id": "u2"}\n{torn\n'  # unparsable lines stay
    assert log.stat().st_mode & 0o777 == 0o600
    assert forget_in_jsonl(log, "raw_user_id", forgotten, HASH) == 0
