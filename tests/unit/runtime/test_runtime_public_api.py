"""`shelfwise.runtime`'s namespace is its sorted `__all__`, and the engine's jobs stay
private to it (the split of the former 800-line engine module must not leak names).
"""

from __future__ import annotations

import types

import shelfwise.runtime
from shelfwise.runtime import engine


def test_all_matches_namespace() -> None:
    public = {
        name
        for name, value in vars(shelfwise.runtime).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"
    }
    assert public == set(shelfwise.runtime.__all__)
    assert list(shelfwise.runtime.__all__) == sorted(shelfwise.runtime.__all__)


def test_the_engine_module_still_offers_what_callers_import() -> None:
    # publish.gate, the CLI and monitor import these from `shelfwise.runtime.engine`
    assert engine.Engine is shelfwise.runtime.Engine
    assert engine.load_engine is shelfwise.runtime.load_engine
