"""`shelfwise experiment`: sample sizes before an experiment starts; start, status and stop
on a running server."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from tests.unit.conftest import free_port
from typer.testing import CliRunner

from shelfwise.cli.main import app
from shelfwise.experiments import fixed_sample_size, sequential_sample_size
from shelfwise.runtime import Engine, load_engine
from shelfwise.serve import ServeSettings, create_app


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


def test_start_status_stop_against_a_running_server(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, bundle_path: Path, engine: Engine
) -> None:
    import uvicorn

    token = "cli-experiments-9Rk2Wd7Pq4Zm1Xc8Vb5Nh3Jt6"
    settings = ServeSettings(
        bundle_path=None,
        admin_enabled=True,
        admin_token=token,
        event_log_dir=tmp_path / "events",
        drift_interval_s=0,
        omp_threads=0,
        freeze_heap=False,
    )
    app_under_test = create_app(settings, engine=engine)
    app_under_test.state.holder.swap(load_engine(bundle_path, version="v-two"), "challenger")
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app_under_test, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SHELFWISE_SERVE_ADMIN_TOKEN", token)
    runner, url = CliRunner(), f"http://127.0.0.1:{port}"
    try:
        variants = ["--variant", f"control={engine.version}:0.5", "--variant", "new=v-two:0.5@none"]
        started = runner.invoke(app, ["experiment", "start", "e1", *variants, "--url", url])
        assert started.exit_code == 0, started.output
        assert "e1 (ab, running): waiting" in started.output
        again = runner.invoke(app, ["experiment", "start", "e1", *variants, "--url", url])
        assert again.exit_code == 1
        assert "error[experiment-conflict]" in again.output
        status = runner.invoke(app, ["experiment", "status", "--json", "--url", url])
        assert status.exit_code == 0, status.output
        (listed,) = json.loads(status.output)["experiments"]
        assert [v["version"] for v in listed["variants"]] == [engine.version, "v-two"]
        assert [v["rules"] for v in listed["variants"]] == ["current", "none"]
        stopped = runner.invoke(app, ["experiment", "stop", "e1", "--url", url])
        assert stopped.exit_code == 0, stopped.output
        assert "stopped" in stopped.output
        bad = runner.invoke(app, ["experiment", "start", "e2", "--variant", "x", "--url", url])
        assert "NAME=VERSION" in bad.output
    finally:
        server.should_exit = True
        thread.join(timeout=30)
