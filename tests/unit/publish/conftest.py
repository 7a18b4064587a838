"""The package tests' tiny bundle factory, for the publish tests (a real bundle to register)."""

from __future__ import annotations

from tests.unit.package.conftest import make_bundle, make_spec, model_folders

__all__ = ["make_bundle", "make_spec", "model_folders"]
