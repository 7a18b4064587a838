"""The bundle's `audience/` files (issue 15): unit text vectors, profiles, last activity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

from shelfwise.package.audience import (
    AUDIENCE_PARAMS_FILE,
    ITEM_VECTORS_FILE,
    LAST_ACTIVE_FILE,
    USER_PROFILES_FILE,
    last_active,
    write_audience,
)

ITEMS = pl.DataFrame(
    {
        "title": ["green tea", "black tea", "coffee beans", None],
        "category": ["tea", "tea", "coffee", None],
    }
)
HISTORIES = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 0, 2, 0], [0, 0, 0, 0]], dtype=np.float32))


def test_audience_files(tmp_path: Path) -> None:
    times = last_active(pl.LazyFrame({"user_index": [0, 0, 1], "timestamp": [5, 9, 7]}), n_users=3)
    folder = write_audience(
        tmp_path / "audience", items=ITEMS, histories=HISTORIES, last_event=times
    )
    vectors = np.load(folder / ITEM_VECTORS_FILE)
    profiles = np.load(folder / USER_PROFILES_FILE)
    assert vectors.shape[0] == 4
    assert profiles.shape == (3, vectors.shape[1])
    np.testing.assert_allclose(np.linalg.norm(vectors[:3], axis=1), 1.0, rtol=1e-5)
    assert not vectors[3].any()  # no text: a zero vector
    assert not profiles[2].any()  # no history: a zero profile
    # the tea drinker's profile is closer to a tea than to coffee
    assert profiles[0] @ vectors[0] > profiles[0] @ vectors[2]
    assert np.load(folder / LAST_ACTIVE_FILE)[:2].tolist() == [9, 7]
    params = json.loads((folder / AUDIENCE_PARAMS_FILE).read_text())
    assert params["reference_time"] == 9
    assert params["has_content"] is True


def test_a_catalog_without_text_writes_only_activity(tmp_path: Path) -> None:
    folder = write_audience(
        tmp_path / "audience",
        items=pl.DataFrame({"raw_item_id": ["a", "b", "c", "d"]}),
        histories=HISTORIES,
        last_event=np.array([1, 2, 3]),
    )
    assert not (folder / ITEM_VECTORS_FILE).exists()
    assert json.loads((folder / AUDIENCE_PARAMS_FILE).read_text())["has_content"] is False
