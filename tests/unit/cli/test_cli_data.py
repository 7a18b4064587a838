"""`shelfwise validate` on damaged input: exit code 4 naming file and byte, or, with
data.allow_partial_files, a warning on the console (issue 14, point 1: the console
showed none, and the run exited 0)."""

from __future__ import annotations

import gzip
from pathlib import Path

from typer.testing import CliRunner

from shelfwise.cli.main import app
from shelfwise.errors import EXIT_DATA


def _setup(tmp_path: Path) -> Path:
    rows = "".join(f"u{n % 7},i{n % 5},view,{1_600_000_000 + n}\n" for n in range(400))
    data = gzip.compress(("user_id,item_id,event,timestamp\n" + rows).encode())
    events = tmp_path / "events.csv.gz"
    events.write_bytes(data[: int(len(data) * 0.6)])
    config = tmp_path / "shelfwise.yaml"
    config.write_text(f"home: {tmp_path / 'state'}\ndata:\n  events:\n    path: {events}\n")
    return config


def test_validate_stops_on_a_damaged_file_with_exit_code_4(tmp_path: Path) -> None:
    config = _setup(tmp_path)
    result = CliRunner().invoke(app, ["validate", "-c", str(config)], env={"COLUMNS": "300"})
    assert result.exit_code == EXIT_DATA
    flat = " ".join(result.output.split())
    assert "error[input-damaged]" in flat
    assert "events.csv.gz is damaged at byte" in flat


def test_allow_partial_files_warns_on_the_console(tmp_path: Path) -> None:
    config = _setup(tmp_path)
    result = CliRunner().invoke(
        app,
        ["validate", "-c", str(config), "--set", "data.allow_partial_files=true"],
        env={"COLUMNS": "300"},
    )
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "WARNING: 1 damaged file(s) kept only up to the damage" in flat
    assert "rows before it were used (data.allow_partial_files: true)" in flat
    assert "events: time taken from column 'timestamp'" in flat
