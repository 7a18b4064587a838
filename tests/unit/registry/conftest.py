"""The package tests' tiny bundle factory, and a quick MLflow store setup for these tests.

Creating an MLflow sqlite store runs its 66 schema migrations (about 2 s of CPU each
time); every MLflow test here starts from a fresh store, so the store is created once
per session, on first need, and copied. A test module lists the tests that need the
real setup in `REAL_MLFLOW_SETUP`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests.unit.package.conftest import make_bundle, make_spec, model_folders

from shelfwise.registry import mlflow_setup

__all__ = ["make_bundle", "make_spec", "model_folders"]

_real_create = mlflow_setup._create
_template: list[Path] = []


@pytest.fixture(autouse=True)
def _quick_mlflow_setup(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    if request.node.originalname in getattr(request.module, "REAL_MLFLOW_SETUP", ()):
        return

    def copy(path: Path) -> None:
        if not _template:  # made by the real setup the first time a test needs one
            made = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
            _real_create(made)
            _template.append(made)
        shutil.copyfile(_template[0], path)

    monkeypatch.setattr(mlflow_setup, "_create", copy)
