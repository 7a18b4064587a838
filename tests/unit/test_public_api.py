"""Every package's `__all__` is honest: sorted, holding every public name the package
defines (re-exports allowed), and nothing it does not have."""

from __future__ import annotations

import importlib
import pkgutil
import types

import pytest

import shelfwise

PACKAGES = sorted(
    info.name
    for info in pkgutil.iter_modules(shelfwise.__path__, "shelfwise.")
    if info.ispkg and not info.name.rsplit(".", 1)[-1].startswith("_")
)
_NOT_API = {"annotations", "TYPE_CHECKING"}


def _public(module: types.ModuleType) -> set[str]:
    """Public names the package defines: its own classes and functions (those of its
    modules), and constants; not submodules, nor what it imported from elsewhere."""
    own = module.__name__

    def defined_here(value: object) -> bool:
        origin = getattr(value, "__module__", None)
        return not isinstance(origin, str) or origin == own or origin.startswith(own + ".")

    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and name not in _NOT_API
        and not isinstance(value, types.ModuleType)
        and defined_here(value)
    }


def test_the_root_exports_run_and_load_bundle() -> None:
    assert {"run", "load_bundle", "load_config"} <= set(shelfwise.__all__)
    assert _public(shelfwise) == set(shelfwise.__all__) - {"__version__"}
    assert list(shelfwise.__all__) == sorted(shelfwise.__all__)


def test_every_package_is_listed() -> None:
    stages = {"ingest", "validate", "features", "tune", "retrieval", "evaluate", "ranking"}
    stages |= {"search", "compress", "package", "runtime", "serve", "registry", "publish"}
    assert {f"shelfwise.{name}" for name in stages} <= set(PACKAGES)


@pytest.mark.parametrize("name", PACKAGES)
def test_all_matches_the_namespace(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert list(exported) == sorted(exported), f"{name}.__all__ is not sorted"
    assert _public(module) <= set(exported), f"{name} defines public names not in __all__"
    missing = [export for export in exported if not hasattr(module, export)]
    assert not missing, f"{name}.__all__ names what it does not have: {missing}"
