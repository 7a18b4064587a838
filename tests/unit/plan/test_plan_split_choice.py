"""`split.method: auto` (issue 15): the session split for logs of anonymous visits, the
default split for shops whose users come back, resolved before the features stage and
shown in the plan's table."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from shelfwise.config import SplitConfig, load_config
from shelfwise.pipeline import STAGES, _stage_config
from shelfwise.plan.split_choice import choose_split, resolve_split, split_row
from shelfwise.sample.generator import generate_shop

DAY = 86_400
START = 1_727_740_800  # 2024-10-01 00:00 UTC


def _write(folder: Path, rows: list[tuple[str, str, int, str | None]]) -> Path:
    """validate's `events.parquet` in `folder` from (user, item, timestamp, session id)."""
    folder.mkdir(parents=True, exist_ok=True)
    users, items, times, sessions = zip(*rows, strict=True)
    pl.DataFrame(
        {"raw_user_id": users, "raw_item_id": items, "timestamp": times, "session_id": sessions},
        schema={
            "raw_user_id": pl.String,
            "raw_item_id": pl.String,
            "timestamp": pl.Int64,
            "session_id": pl.String,
        },
    ).write_parquet(folder / "events.parquet")
    return folder


def _visits(n: int, *, session_ids: bool) -> list[tuple[str, str, int, str | None]]:
    """`n` visitors, one visit of three views each, spread over ten days."""
    return [
        (
            f"v{v}",
            f"i{(v + step) % 7}",
            START + (v % 10) * DAY + step * 60,
            f"s{v}" if session_ids else None,
        )
        for v in range(n)
        for step in range(3)
    ]


def _auto() -> SplitConfig:
    return load_config(None, environ={}, overrides={"split.method": "auto"}).split


def test_a_log_of_one_session_per_user_gets_the_session_split(tmp_path: Path) -> None:
    folder = _write(tmp_path / "validate", _visits(30, session_ids=True))
    choice = choose_split(folder / "events.parquet", _auto())
    assert choice.method == "session"
    assert "session_id on 100% of events and 100% of users" in choice.reason
    assert choice.numbers["sessions_of_two"] == 30


def test_user_ids_that_are_visits_get_the_session_split(tmp_path: Path) -> None:
    folder = _write(tmp_path / "validate", _visits(30, session_ids=False))
    choice = choose_split(folder / "events.parquet", _auto())
    assert choice.method == "session"
    assert "100% of users (>= 80%) seen on one day only, median 3 events" in choice.reason


def test_returning_users_keep_the_default_split(tmp_path: Path) -> None:
    rows = [
        (f"u{u}", f"i{(u + day) % 7}", START + day * DAY + u, f"s{u}-{day}")
        for u in range(30)
        for day in range(4)
    ]
    folder = _write(tmp_path / "validate", rows)
    choice = choose_split(folder / "events.parquet", _auto())
    assert choice.method == "time"
    assert "users come back (0% of users with one session id, 0% seen on one day" in choice.reason


def test_too_few_visits_to_hold_out_keep_the_default(tmp_path: Path) -> None:
    folder = _write(tmp_path / "validate", _visits(5, session_ids=True))
    choice = choose_split(folder / "events.parquet", _auto())
    assert choice.method == "time"
    assert "only 5 visits of two or more events (< 20)" in choice.reason


def test_a_configured_method_is_kept_without_a_look(tmp_path: Path) -> None:
    config = load_config(None, environ={}, overrides={"split.method": "leave_last_out"})
    choice = choose_split(tmp_path / "missing.parquet", config.split)
    assert choice.method == "leave_last_out"
    assert choice.reason == "as configured (split.method: leave_last_out)"
    assert load_config(None, environ={}).split.method == "time"  # the default is unchanged


def test_the_features_stage_runs_on_the_chosen_split_and_the_plan_shows_why(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "run"
    _write(run_dir / "validate", _visits(30, session_ids=True))
    config = load_config(None, environ={}, overrides={"split.method": "auto"})
    features = next(stage for stage in STAGES if stage.name == "features")
    assert _stage_config(features, config, run_dir).split.method == "session"
    assert resolve_split(config, run_dir / "validate").split.method == "session"
    row = split_row(config, run_dir / "validate")
    assert row.name == "split"
    assert row.reason.startswith("session: session_id on 100% of events")


def test_the_generated_shop_keeps_its_split_under_auto(tmp_path: Path) -> None:
    generate_shop(tmp_path / "shop", users=150, items=80, events=3000, seed=1)
    choice = choose_split(tmp_path / "shop" / "events.parquet", _auto())
    assert choice.method == "time"
    assert choice.reason.startswith("users come back")


def test_the_split_itself_refuses_an_unresolved_auto() -> None:
    import pytest

    from shelfwise.errors import ConfigError
    from shelfwise.features.split import assign_split

    events = pl.DataFrame(
        {"user_index": [0], "timestamp": [START], "row_number": [0]},
        schema={"user_index": pl.Int32, "timestamp": pl.Int64, "row_number": pl.Int64},
    )
    with pytest.raises(ConfigError, match="resolved from the validated events"):
        assign_split(events, SplitConfig(method="auto"))
