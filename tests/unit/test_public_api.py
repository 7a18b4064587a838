from __future__ import annotations

import types

import shelfwise


def test_all_matches_namespace() -> None:
    public = {
        name
        for name, value in vars(shelfwise).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"
    }
    assert public == set(shelfwise.__all__) - {"__version__"}


def test_all_is_sorted() -> None:
    assert list(shelfwise.__all__) == sorted(shelfwise.__all__)
