"""CI/CD templates: GitHub Actions and GitLab CI parse and run tests -> pipeline + gate ->
render + publish; the Jenkinsfile is smoke-checked; every shelfwise command they call
exists with the options they pass."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from shelfwise.cli.main import app


def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def _commands(text: str) -> list[list[str]]:
    """Every `shelfwise ...` invocation in a file, as argv lists (continuations joined)."""
    code = "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith(("#", "//"))
    )
    joined = re.sub(r"\\\n\s*", " ", code)
    return [
        shlex.split(match.group(1).split(" #")[0])
        for match in re.finditer(r"(?:\.venv/bin/)?shelfwise ([^'\n]+)", joined)
    ]


def test_github_actions_jobs(rendered: Path) -> None:
    workflow = _load(rendered / "ci" / "github-actions.yml")
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads `on` as true
    assert "push" in triggers
    assert "pull_request" in triggers
    jobs = workflow["jobs"]
    assert list(jobs) == ["test", "pipeline", "publish"]
    assert jobs["pipeline"]["needs"] == "test"
    assert jobs["publish"]["needs"] == "pipeline"
    runs = {
        name: " ".join(step.get("run", "") for step in job["steps"]) for name, job in jobs.items()
    }
    assert "make check" in runs["test"]
    assert "shelfwise run" in runs["pipeline"]
    assert "shelfwise deploy render" in runs["publish"]
    assert "docker push" in runs["publish"]
    assert "main" in jobs["publish"]["if"]
    assert workflow["permissions"] == {"contents": "read"}


def test_gitlab_ci_stages(rendered: Path) -> None:
    pipeline = _load(rendered / "ci" / ".gitlab-ci.yml")
    assert pipeline["stages"] == ["test", "pipeline", "publish"]
    scripts = {name: " ".join(job["script"]) for name, job in pipeline.items() if "script" in job}
    assert "make check" in scripts["test"]
    assert "shelfwise run" in scripts["pipeline"]
    assert "shelfwise deploy render" in scripts["render"]
    assert "docker push" in scripts["publish"]
    assert pipeline["publish"]["needs"] == ["render"]


def test_jenkinsfile_smoke(rendered: Path) -> None:
    text = (rendered / "ci" / "Jenkinsfile").read_text()
    code = re.sub(r"//.*", "", text)
    assert code.count("{") == code.count("}")
    assert code.count("(") == code.count(")")
    assert code.count("'''") % 2 == 0
    assert re.search(r"^pipeline \{", code, re.MULTILINE)
    stages = re.findall(r"stage\('([^']+)'\)", code)
    assert stages == ["Test", "Pipeline and gate", "Render", "Publish"]
    for needed in ("sh 'make check'", "shelfwise run", "shelfwise deploy render", "docker push"):
        assert needed in code


@pytest.mark.parametrize("name", ["github-actions.yml", ".gitlab-ci.yml", "Jenkinsfile"])
def test_shelfwise_invocations_exist(rendered: Path, name: str) -> None:
    group = typer.main.get_command(app)
    invocations = _commands((rendered / "ci" / name).read_text())
    assert invocations
    for argv in invocations:
        command: Any = group
        words = list(argv)
        while hasattr(command, "commands") and words and words[0] in command.commands:
            command = command.commands[words.pop(0)]
        assert not hasattr(command, "commands"), f"{argv}: no such command"
        options = {opt for param in command.params for opt in getattr(param, "opts", [])}
        used = {word for word in words if word.startswith("--")}
        assert used <= options, f"{argv}: unknown {sorted(used - options)}"
