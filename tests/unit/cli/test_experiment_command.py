"""`shelfwise experiment plan`: sample sizes before an experiment starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shelfwise.cli.main import app
from shelfwise.experiments import fixed_sample_size, sequential_sample_size


def test_plan_prints_both_sample_sizes_and_days(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app,
        [
            "experiment",
            "plan",
            "--baseline",
            "0.05",
            "--mde",
            "0.1",
            "--lists-per-day",
            "1000",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    sequential = sequential_sample_size(0.05, 0.005, alpha=0.05, power=0.8)
    assert plan["lists_per_side"] == {
        "sequential": sequential,
        "fixed_horizon": fixed_sample_size(0.05, 0.005, alpha=0.05, power=0.8),
    }
    assert plan["days"]["sequential"] == -(-sequential // 1000)


def test_plan_refuses_a_zero_baseline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["experiment", "plan", "--baseline", "0"])
    assert result.exit_code != 0
    assert "baseline rate must be positive" in result.output
