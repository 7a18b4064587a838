"""Every example config loads; where ../shared/data is present, its paths exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from shelfwise.config import load_config

EXAMPLES = sorted((Path(__file__).parents[3] / "examples").glob("*.yaml"))


def test_there_is_an_example_per_dataset() -> None:
    names = {path.stem for path in EXAMPLES}
    assert {"ml-100k", "amazon-beauty", "taobao-userbehavior", "crowdflower"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_loads(path: Path) -> None:
    config = load_config(path, environ={})
    sources = [s for s in (config.data.catalog, config.data.events, config.data.queries) if s]
    assert sources
    shared = path.parents[1].parent / "shared" / "data"
    if shared.is_dir():
        for source in sources:
            assert source.path.exists(), source.path
