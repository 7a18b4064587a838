"""The import contracts (`[tool.importlinter]` in pyproject.toml, `make lint`) hold, and
they do catch violations: a copy of the package with one bad import fails them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter missing")


def _lint(source_root: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(source_root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _violate(tmp_path: Path, module: str, line: str) -> subprocess.CompletedProcess[str]:
    """lint-imports over a copy of the package where `module` gains `line`."""
    source = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "shelfwise", source / "shelfwise")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    path = source.joinpath(*module.split(".")).with_suffix(".py")
    path.write_text(path.read_text() + f"\n{line}  # a deliberate violation\n")
    return _lint(source, tmp_path)


def test_the_contracts_hold() -> None:
    result = _lint(ROOT / "src", ROOT)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "BROKEN" not in result.stdout


def test_a_training_import_in_the_online_role_breaks_them(tmp_path: Path) -> None:
    result = _violate(tmp_path, "shelfwise.runtime.engine", "import shelfwise.tune.study")

    assert result.returncode == 1
    assert "The online role (serve, runtime) never imports training code BROKEN" in result.stdout
    assert "shelfwise.runtime.engine -> shelfwise.tune.study" in result.stdout


def test_an_import_up_the_layers_breaks_them(tmp_path: Path) -> None:
    result = _violate(tmp_path, "shelfwise.ingest.stage", "import shelfwise.retrieval")

    assert result.returncode == 1
    assert "Layers: a package imports only the packages below it BROKEN" in result.stdout
    assert "shelfwise.ingest is not allowed to import shelfwise.retrieval" in result.stdout
