"""Candidate generators: recommenders and search indexes behind one protocol.

`RECOMMENDERS` and `SEARCH_INDEXES` map the name of each of retrieval's own models (as
in config and bundle manifests) to where its class lives; classes are imported on
first use, so loading a bundle imports only the models it holds (no torch unless it
holds SASRec). Training libraries (implicit, torch optimisers) are imported inside
`fit`, so loading and scoring a saved model needs as little as possible: the serving
image stays small.

Higher layers add their own kinds with their own loaders: `shelfwise.compress.
load_recommender` loads any recommender folder (compressed variants too) and
`shelfwise.search.load_search_index` any search index (hybrid too).
"""

from __future__ import annotations

from pathlib import Path

from shelfwise._internal.sequences import Sequences
from shelfwise.retrieval.base import (
    Histories,
    RankedSearch,
    Recommender,
    RecommenderLoader,
    SearchHits,
    SearchIndex,
    SequentialRecommender,
    SimilarItems,
    TextSearchIndex,
    UserHistories,
    recommend_top_k,
    top_k,
    top_k_batch,
    top_k_unseen,
)
from shelfwise.retrieval.bm25 import BM25Search
from shelfwise.retrieval.item_knn import ItemKNNRecommender
from shelfwise.retrieval.popularity import PopularityRecommender
from shelfwise.retrieval.tables import resolve as _resolve

# name -> "module:Class" of retrieval's recommender families; matrix and sequential
# models alike implement `Recommender`.
RECOMMENDERS: dict[str, str] = {
    "popularity": "shelfwise.retrieval.popularity:PopularityRecommender",
    "item_knn": "shelfwise.retrieval.item_knn:ItemKNNRecommender",
    "user_knn": "shelfwise.retrieval.user_knn:UserKNNRecommender",
    "ease": "shelfwise.retrieval.ease:EASERecommender",
    "gfcf": "shelfwise.retrieval.gfcf:GFCFRecommender",
    "rp3beta": "shelfwise.retrieval.rp3beta:RP3betaRecommender",
    "als": "shelfwise.retrieval.als:ALSRecommender",
    "bpr": "shelfwise.retrieval.bpr:BPRRecommender",
    "content": "shelfwise.retrieval.content:ContentRecommender",
    "sasrec": "shelfwise.retrieval.sasrec:SASRecRecommender",
    # session-based kNN over training sessions (rows = sessions, in start order)
    "sknn": "shelfwise.retrieval.session_knn:SKNNRecommender",
    "vsknn": "shelfwise.retrieval.session_knn:VSKNNRecommender",
    "stan": "shelfwise.retrieval.session_knn:STANRecommender",
    "blend": "shelfwise.retrieval.blend:BlendRecommender",
    "buy_again": "shelfwise.retrieval.buy_again:BuyAgainRecommender",
    "tifu_knn": "shelfwise.retrieval.tifu_knn:TIFUKNNRecommender",
}
# Families that score the user's own items on purpose (repeat purchases): with the
# repeat policy `exclude` they can list nothing useful, and the repeat-explore blend
# mixes one of them with the best of the others.
REPEAT_MODELS: frozenset[str] = frozenset({"buy_again", "tifu_knn"})
BLEND = "blend"  # the composite family: its components load through a loader
SEARCH_INDEXES: dict[str, str] = {
    "bm25": "shelfwise.retrieval.bm25:BM25Search",
    "dense": "shelfwise.retrieval.dense:DenseSearch",
    "dense_title": "shelfwise.retrieval.dense:DenseSearch",  # title-only vectors
}


def recommender_class(name: str) -> type[Recommender]:
    """The class of retrieval's family `name` (imported now).

    Raises:
        LookupError: not one of `RECOMMENDERS`.
    """
    cls: type[Recommender] = _resolve(RECOMMENDERS, name, kind="recommender")
    return cls


def load_recommender(
    name: str, folder: Path, *, loader: RecommenderLoader | None = None
) -> Recommender:
    """Load a saved recommender of one of retrieval's families by its registered name.

    Args:
        name: the family (`RECOMMENDERS`).
        folder: the saved model folder.
        loader: how a blend loads its components (default: this function); a higher
            layer passes its own, so a blend of compressed components loads too.

    Raises:
        LookupError: an unknown family.
        ArtifactError: a damaged or foreign folder.
    """
    if name == BLEND:
        from shelfwise.retrieval.blend import BlendRecommender

        return BlendRecommender.load(folder, loader=loader or load_recommender)
    return recommender_class(name).load(folder)


def search_index_class(name: str) -> type[SearchIndex]:
    """The class of retrieval's search index `name` (imported now).

    Raises:
        LookupError: not one of `SEARCH_INDEXES`.
    """
    cls: type[SearchIndex] = _resolve(SEARCH_INDEXES, name, kind="search index")
    return cls


def load_search_index(name: str, folder: Path) -> SearchIndex:
    """Load one of retrieval's saved search indexes (`SEARCH_INDEXES`) by its name.

    Raises:
        LookupError: an unknown index.
    """
    return search_index_class(name).load(folder)


__all__ = [
    "BLEND",
    "BM25Search",
    "Histories",
    "ItemKNNRecommender",
    "PopularityRecommender",
    "RECOMMENDERS",
    "REPEAT_MODELS",
    "RankedSearch",
    "Recommender",
    "RecommenderLoader",
    "SEARCH_INDEXES",
    "SearchHits",
    "SearchIndex",
    "Sequences",
    "SequentialRecommender",
    "SimilarItems",
    "TextSearchIndex",
    "UserHistories",
    "load_recommender",
    "load_search_index",
    "recommend_top_k",
    "recommender_class",
    "search_index_class",
    "top_k",
    "top_k_batch",
    "top_k_unseen",
]
