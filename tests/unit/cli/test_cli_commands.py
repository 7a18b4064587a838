"""The command line: one way to pass a config, serve settings through the one loader,
the demo's config file, and the top-level help."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

import shelfwise.serve
from shelfwise.cli.main import app
from shelfwise.cli.pipeline import write_demo_config
from shelfwise.config import load_config
from shelfwise.pipeline import STAGE_NAMES

# Commands that read no config: `init` writes one, `generate` writes data, `demo` writes
# and runs its own.
WITHOUT_CONFIG = {"init", "generate", "demo"}


def _commands(group: Any, prefix: str = "") -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            found |= _commands(command, f"{prefix}{name} ")
        else:
            found[prefix + name] = command
    return found


def test_every_command_takes_config_and_set_the_same_way() -> None:
    commands = _commands(get_command(app))
    assert {"serve", "deploy render", "monitor drift", "canary judge"} <= set(commands)
    for name, command in commands.items():
        options = {param.name: param.opts for param in command.params}
        if name in WITHOUT_CONFIG:
            assert not {"config", "sets"} & set(options), name
            continue
        assert options.get("config") == ["--config", "-c"], name
        assert options.get("sets") == ["--set"], name


def test_top_level_help_lists_the_stages_in_pipeline_order() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    flat = " ".join(result.output.replace("│", " ").split())
    assert " → ".join((*STAGE_NAMES, "serve")) in flat


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[shelfwise.serve.ServeSettings]:
    """The settings `shelfwise serve` hands to `run_server` (which then does nothing)."""
    seen: list[shelfwise.serve.ServeSettings] = []
    monkeypatch.setattr(shelfwise.serve, "run_server", lambda settings, **_: seen.append(settings))
    return seen


def _serve(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    config = tmp_path / "shelfwise.yaml"
    if not config.exists():
        config.write_text("home: state\nserve:\n  port: 9000\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["serve", "-c", str(config), *args], env=env)
    assert result.exit_code == 0, result.output
    return result


def test_serve_honours_serve_variables(
    tmp_path: Path, served: list[shelfwise.serve.ServeSettings]
) -> None:
    bundle = tmp_path / "bundle"
    env = {"SHELFWISE_SERVE_PORT": "9100", "SHELFWISE_SERVE_MAX_K": "70"}
    _serve(tmp_path, "--bundle", str(bundle), env=env)
    (settings,) = served
    assert (settings.port, settings.max_k, settings.bundle_path) == (9100, 70, bundle)
    # the event log is the config's: <home>/events, home relative to the config file
    assert settings.event_log_dir == (tmp_path / "state" / "events").resolve()


def test_serve_flags_beat_the_environment(
    tmp_path: Path, served: list[shelfwise.serve.ServeSettings]
) -> None:
    env = {"SHELFWISE_SERVE_PORT": "9100", "SHELFWISE_SERVE_BUNDLE_PATH": str(tmp_path / "b")}
    _serve(tmp_path, "--port", "9200", "--set", "serve.max_k=30", env=env)
    _serve(tmp_path, "--port", "9200", "--set", "serve.port=9300", env=env)
    first, second = served
    assert (first.port, first.max_k, first.bundle_path) == (9200, 30, tmp_path / "b")
    assert second.port == 9300  # --set is the general override


def test_the_old_serve_variables_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "shelfwise.yaml"
    config.write_text("home: state\n", encoding="utf-8")
    result = CliRunner().invoke(
        app, ["serve", "-c", str(config)], env={"SHELFWISE_SERVE__PORT": "9100"}
    )
    assert result.exit_code != 0
    assert "use SHELFWISE_SERVE_PORT instead" in result.output


def test_demo_config_names_the_project_the_demo_registers(tmp_path: Path) -> None:
    path = write_demo_config(tmp_path)
    config = load_config(path, environ={})
    assert config.project == "demo-shop"
    assert config.home == (tmp_path / ".shelfwise").resolve()
    assert config.tune.budget_seconds == 20
    assert config.data.events is not None  # the sample shop's files, as `init` writes them
    assert "project: demo-shop" in path.read_text(encoding="utf-8")


def test_demo_keeps_an_existing_config(tmp_path: Path) -> None:
    path = tmp_path / "shelfwise.yaml"
    path.write_text("project: mine\n", encoding="utf-8")
    assert write_demo_config(tmp_path) == path
    assert path.read_text(encoding="utf-8") == "project: mine\n"


def test_guard_prints_the_error_code(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["models", "-c", str(tmp_path / "missing.yaml")])
    assert result.exit_code != 0
    assert "error[config-invalid]" in result.output
