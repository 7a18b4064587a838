"""The Dockerfile: hadolint, stages, pins, the non-root user, serving-only dependencies."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

from shelfwise.deploy import DeploySpec

REPO_ROOT = Path(__file__).resolve().parents[3]
# Never in the serving image: training, tuning, tracking UI, plotting.
TRAINING_STACK = ("optuna", "implicit", "matplotlib", "mlflow", "onnxscript", "onnx", "ray")


def _stages(text: str) -> dict[str, str]:
    """Stage name -> its instructions (line continuations joined)."""
    joined = re.sub(r"\\\n\s*", " ", text)
    stages: dict[str, str] = {}
    current = None
    for line in joined.splitlines():
        match = re.match(r"FROM\s+(\S+)\s+AS\s+(\S+)", line)
        if match:
            current = match.group(2)
            stages[current] = line + "\n"
        elif current is not None and line.strip() and not line.lstrip().startswith("#"):
            stages[current] += line + "\n"
    return stages


def test_hadolint_passes(rendered: Path, hadolint: str, tmp_path: Path) -> None:
    # An explicit config, so a stray .hadolint.yaml cannot loosen the rules, and the
    # strictest threshold: style findings fail too. Inline ignore pragmas are disabled.
    config = tmp_path / "hadolint.yaml"
    config.write_text("failure-threshold: style\n")
    completed = subprocess.run(
        [hadolint, "--config", str(config), "--disable-ignore-pragma", "--no-color",
         str(rendered / "docker" / "Dockerfile")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_hadolint_is_not_a_no_op(hadolint: str, tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install fastapi\n")
    completed = subprocess.run(
        [hadolint, "--no-color", str(bad)], capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.returncode != 0
    assert "DL3007" in completed.stdout
    assert "DL3013" in completed.stdout


def test_multi_stage_pinned_and_non_root(rendered: Path) -> None:
    text = (rendered / "docker" / "Dockerfile").read_text()
    stages = _stages(text)
    assert list(stages)[-1] == "serve", "serve must be the default (last) target"
    assert {"build", "build-serve", "build-batch", "runtime", "batch", "serve"} <= set(stages)
    base = DeploySpec().python_image
    assert re.search(rf"^ARG PYTHON_IMAGE={re.escape(base)}$", text, re.MULTILINE)
    assert "slim" in base
    assert not base.endswith(":latest")
    for name in ("serve", "batch"):
        assert re.search(r"^USER 10001:10001$", stages[name], re.MULTILINE), name
    for name in ("build-serve", "build-batch"):
        install = stages[name]
        assert "pip install --no-cache-dir -c constraints.txt" in install
        assert "--extra-index-url https://download.pytorch.org/whl/cpu" in install
    assert "COPY constraints.txt" in stages["build"]


def test_serving_image_has_no_training_stack(rendered: Path) -> None:
    stages = _stages((rendered / "docker" / "Dockerfile").read_text())
    serve_install = stages["build-serve"]
    assert '".[serve]"' in serve_install
    assert ".[train" not in serve_install
    assert '".[train,cluster]"' in stages["build-batch"]  # Ray for the KubeRay pods
    assert "COPY --from=build-serve /opt/venv /opt/venv" in stages["serve"]
    assert "build-batch" not in stages["serve"]
    # what `.[serve]` pulls in is the serve extra: it must stay free of the training stack
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    names = {re.split(r"[<>=!~\[ ;]", req, maxsplit=1)[0].lower() for req in extras["serve"]}
    assert not names & set(TRAINING_STACK), sorted(names & set(TRAINING_STACK))
    added = set(serve_install.split('".[serve]"', 1)[1].split())
    assert added == {"mlflow-skinny", "sqlalchemy", "alembic"}  # the registry client only


def test_serve_stage_healthcheck_and_command(rendered: Path) -> None:
    port = DeploySpec().port
    serve = _stages((rendered / "docker" / "Dockerfile").read_text())["serve"]
    assert f"EXPOSE {port}" in serve
    assert re.search(rf"HEALTHCHECK .*CMD .*127\.0\.0\.1:{port}/healthz", serve)
    assert '"shelfwise.serve.app:create_app", "--factory"' in serve
    assert f'"--port", "{port}"' in serve


def test_dockerignore_keeps_the_context_small(rendered: Path) -> None:
    lines = (rendered / "docker" / "Dockerfile.dockerignore").read_text().splitlines()
    assert lines[lines.index("*")] == "*"
    for kept in ("!constraints.txt", "!pyproject.toml", "!README.md", "!src/"):
        assert kept in lines
    for copied in ("constraints.txt", "pyproject.toml", "README.md", "src"):
        assert (REPO_ROOT / copied).exists(), copied
