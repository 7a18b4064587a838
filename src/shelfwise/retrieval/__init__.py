"""Candidate generators: recommenders and search indexes behind one protocol.

`RECOMMENDERS` and `SEARCH_INDEXES` map a model's name (as in config and bundle
manifests) to its class; `load_recommender` / `load_search_index` read a saved model.
Training libraries (implicit) are imported inside `fit`, so loading and scoring a
saved model needs only numpy/scipy (and bm25s/jieba for search): the serving image
stays small.
"""

from __future__ import annotations

from pathlib import Path

from shelfwise.retrieval.base import (
    Recommender,
    SearchIndex,
    SimilarItems,
    top_k,
    top_k_batch,
)
from shelfwise.retrieval.bm25 import BM25Search
from shelfwise.retrieval.item_knn import ItemKNNRecommender
from shelfwise.retrieval.popularity import PopularityRecommender

RECOMMENDERS: dict[str, type[Recommender]] = {
    PopularityRecommender.name: PopularityRecommender,
    ItemKNNRecommender.name: ItemKNNRecommender,
}
SEARCH_INDEXES: dict[str, type[SearchIndex]] = {
    BM25Search.name: BM25Search,
}


def load_recommender(name: str, folder: Path) -> Recommender:
    """Load a saved recommender by its registered name."""
    try:
        cls = RECOMMENDERS[name]
    except KeyError:
        known = ", ".join(sorted(RECOMMENDERS))
        raise LookupError(f"unknown recommender {name!r}; known: {known}") from None
    return cls.load(folder)


def load_search_index(name: str, folder: Path) -> SearchIndex:
    """Load a saved search index by its registered name."""
    try:
        cls = SEARCH_INDEXES[name]
    except KeyError:
        known = ", ".join(sorted(SEARCH_INDEXES))
        raise LookupError(f"unknown search index {name!r}; known: {known}") from None
    return cls.load(folder)


__all__ = [
    "RECOMMENDERS",
    "SEARCH_INDEXES",
    "BM25Search",
    "ItemKNNRecommender",
    "PopularityRecommender",
    "Recommender",
    "SearchIndex",
    "SimilarItems",
    "load_recommender",
    "load_search_index",
    "top_k",
    "top_k_batch",
]
