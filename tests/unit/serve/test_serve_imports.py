"""The online role imports no training code, and its public namespace is `__all__`."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import shelfwise.serve

FORBIDDEN = (
    "implicit",
    "shelfwise.validate",
    "shelfwise.ingest",
    "shelfwise.features",
    "shelfwise.evaluate",
    "shelfwise.pipeline",
)
_PROBE = """
import json, sys
import shelfwise.serve
import shelfwise.package.bundle
app = shelfwise.serve.create_app(shelfwise.serve.ServeSettings(bundle_path=None))
print(json.dumps(sorted(sys.modules)))
"""


def test_serving_imports_no_training_code() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=120
    )
    loaded = json.loads(completed.stdout.strip().splitlines()[-1])
    offending = sorted(
        name
        for name in loaded
        for banned in FORBIDDEN
        if name == banned or name.startswith(banned + ".")
    )
    assert offending == []


def test_all_matches_namespace() -> None:
    public = {
        name
        for name, value in vars(shelfwise.serve).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"
    }
    assert public == set(shelfwise.serve.__all__)
    assert list(shelfwise.serve.__all__) == sorted(shelfwise.serve.__all__)
