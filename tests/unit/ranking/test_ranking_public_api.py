"""The package's namespace is its `__all__`, and importing it loads no training code."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import shelfwise.ranking


def test_all_matches_namespace() -> None:
    public = {
        name
        for name, value in vars(shelfwise.ranking).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name not in {"annotations", "TYPE_CHECKING"}
    }
    assert public == set(shelfwise.ranking.__all__)
    assert list(shelfwise.ranking.__all__) == sorted(shelfwise.ranking.__all__)


def test_import_is_light() -> None:
    probe = "import json, sys, shelfwise.ranking; print(json.dumps(sorted(sys.modules)))"
    completed = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    loaded = set(json.loads(completed.stdout.strip().splitlines()[-1]))
    heavy = {"torch", "lightgbm", "sklearn", "matplotlib", "shelfwise.evaluate"}
    assert not loaded & heavy
