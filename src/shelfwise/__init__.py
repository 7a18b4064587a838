"""shelfwise: from a shop's raw data to served search and recommendation models.

    import shelfwise

    outcome = shelfwise.run("shelfwise.yaml")            # ingest → … → package → version N
    engine = shelfwise.load_bundle(outcome.bundle_path)  # or load_bundle("champion")
    engine.recommend("U000042", k=5).items

`load_config` builds the configuration the same way the CLI does (defaults < file <
`SHELFWISE_*` environment < overrides); every error is a `ShelfwiseError` with a
stable `code`.
"""

from __future__ import annotations

from shelfwise._version import __version__
from shelfwise.api import load_bundle, run
from shelfwise.config import ShelfwiseConfig, load_config
from shelfwise.errors import ShelfwiseError

__all__ = ["ShelfwiseConfig", "ShelfwiseError", "__version__", "load_bundle", "load_config", "run"]
