"""The bundle's `audience/` folder: what ranking users for a product needs.

Written by the package stage, read by `shelfwise.runtime.audience`:

====================  ===========================================================
file                  holds
====================  ===========================================================
`item_vectors.npy`    (n_items, d) float32, unit rows: each product's text (TF-IDF of
                      title, brand, category, description, as the content model) cut
                      to d dimensions by truncated SVD (LSA); zeros without text
`user_profiles.npy`   (n_users, d) float32, unit rows: the weighted mean of the
                      vectors of the user's items (histories row-normalised)
`last_active.npy`     (n_users,) int64: unix time of each user's last event
`audience.json`       {"dimensions": d, "reference_time": the data's last event,
                      "has_content": whether the catalog had text}
====================  ===========================================================

d is at most `DIMENSIONS` (64): dense profiles cost n_users × 256 bytes (22k users
of Amazon Beauty: 5.6 MB) where sparse TF-IDF profiles would hold every token of
every item a user touched. Without catalog text only `last_active.npy` and
`audience.json` are written, and audiences of products without events fall back to
the most active users.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np
import polars as pl
import scipy.sparse as sp

from shelfwise._internal.artifacts import atomic_write_json
from shelfwise.contracts import FloatArray, IntArray

AUDIENCE_DIR: Final = "audience"
ITEM_VECTORS_FILE: Final = "item_vectors.npy"
USER_PROFILES_FILE: Final = "user_profiles.npy"
LAST_ACTIVE_FILE: Final = "last_active.npy"
AUDIENCE_PARAMS_FILE: Final = "audience.json"
DIMENSIONS: Final = 64
_TEXT_FIELDS: Final = ("title", "brand", "category", "description")


def item_vectors(
    items: pl.DataFrame, *, dimensions: int = DIMENSIONS, seed: int = 0
) -> FloatArray | None:
    """Unit LSA vectors of the catalog's text, or None when no item has text.

    Args:
        items: the catalog in item_index order (text columns optional).
        dimensions: the most dimensions kept (fewer when the vocabulary is smaller).
        seed: the SVD's random state (same catalog, same vectors).
    """
    from sklearn.decomposition import TruncatedSVD

    from shelfwise.errors import EmptyDataError
    from shelfwise.retrieval.content import ContentRecommender

    texts: dict[str, list[str | None]] = {
        name: items[name].cast(pl.String).to_list()
        for name in _TEXT_FIELDS
        if name in items.columns
    }
    if not texts:
        return None
    try:
        tfidf = sp.csr_matrix(ContentRecommender().vectors(texts))
    except EmptyDataError:
        return None
    rank = min(dimensions, tfidf.shape[1] - 1, tfidf.shape[0] - 1)
    if rank < 1:
        dense = np.asarray(tfidf.todense(), dtype=np.float32)
    else:
        dense = TruncatedSVD(n_components=rank, random_state=seed).fit_transform(tfidf)
    return unit_rows(np.asarray(dense, dtype=np.float32))


def unit_rows(matrix: FloatArray) -> FloatArray:
    """Rows scaled to length 1 (zero rows stay zero)."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    scaled: FloatArray = np.divide(
        matrix, norms, out=np.zeros_like(matrix), where=norms > 0
    ).astype(np.float32)
    return scaled


def user_profiles(histories: sp.csr_matrix, vectors: FloatArray) -> FloatArray:
    """Each user's weighted mean item vector, as a unit row (zeros without history)."""
    weights = sp.csr_matrix(histories, dtype=np.float32)
    totals = np.asarray(weights.sum(axis=1)).ravel()
    scale = sp.diags(np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0))
    return unit_rows(np.asarray((scale @ weights) @ vectors, dtype=np.float32))


def last_active(interactions: pl.LazyFrame, n_users: int) -> IntArray:
    """Unix time of each user's last event (the earliest int64 for users without one).

    Args:
        interactions: `user_index` and `timestamp` columns (features' interactions).
        n_users: users in the bundle.
    """
    latest = interactions.group_by("user_index").agg(pl.col("timestamp").max()).collect()
    times = np.full(n_users, np.iinfo(np.int64).min, dtype=np.int64)
    times[latest["user_index"].to_numpy()] = latest["timestamp"].to_numpy()
    return times


def write_audience(
    folder: Path,
    *,
    items: pl.DataFrame,
    histories: sp.csr_matrix,
    last_event: IntArray,
    dimensions: int = DIMENSIONS,
) -> Path:
    """Write the `audience/` files into `folder` (created) and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    vectors = item_vectors(items, dimensions=dimensions)
    if vectors is not None:
        np.save(folder / ITEM_VECTORS_FILE, vectors, allow_pickle=False)
        np.save(folder / USER_PROFILES_FILE, user_profiles(histories, vectors), allow_pickle=False)
    np.save(folder / LAST_ACTIVE_FILE, last_event.astype(np.int64), allow_pickle=False)
    known = last_event[last_event > np.iinfo(np.int64).min]
    atomic_write_json(
        folder / AUDIENCE_PARAMS_FILE,
        {
            "dimensions": 0 if vectors is None else int(vectors.shape[1]),
            "reference_time": int(known.max()) if known.size else 0,
            "has_content": vectors is not None,
        },
    )
    return folder
