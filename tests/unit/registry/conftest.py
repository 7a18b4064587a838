"""The package tests' tiny bundle factory, for the local bundle store's tests."""

from __future__ import annotations

from tests.unit.package.conftest import make_bundle, make_spec, model_folders

__all__ = ["make_bundle", "make_spec", "model_folders"]
