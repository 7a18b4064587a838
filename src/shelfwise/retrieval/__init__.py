"""Candidate generators: recommenders and search indexes behind one protocol.

`RECOMMENDERS` and `SEARCH_INDEXES` map a model's name (as in config and bundle
manifests) to where its class lives; classes are imported on first use, so loading a
bundle imports only the models it holds (no torch unless it holds SASRec). Training
libraries (implicit, torch optimisers) are imported inside `fit`, so loading and
scoring a saved model needs as little as possible: the serving image stays small.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from shelfwise._internal.sequences import Sequences
from shelfwise.retrieval.base import (
    RankedSearch,
    Recommender,
    SearchHits,
    SearchIndex,
    SequentialRecommender,
    SimilarItems,
    top_k,
    top_k_batch,
)
from shelfwise.retrieval.bm25 import BM25Search
from shelfwise.retrieval.item_knn import ItemKNNRecommender
from shelfwise.retrieval.popularity import PopularityRecommender

# name -> "module:Class". Matrix recommenders (fit/score on CSR histories) and
# sequential ones (fit_sequences/score_sequences) share the name space.
RECOMMENDERS: dict[str, str] = {
    "popularity": "shelfwise.retrieval.popularity:PopularityRecommender",
    "item_knn": "shelfwise.retrieval.item_knn:ItemKNNRecommender",
    "user_knn": "shelfwise.retrieval.user_knn:UserKNNRecommender",
    "ease": "shelfwise.retrieval.ease:EASERecommender",
    "gfcf": "shelfwise.retrieval.gfcf:GFCFRecommender",
    "rp3beta": "shelfwise.retrieval.rp3beta:RP3betaRecommender",
    "als": "shelfwise.retrieval.factorization:ALSRecommender",
    "bpr": "shelfwise.retrieval.factorization:BPRRecommender",
    "content": "shelfwise.retrieval.content:ContentRecommender",
    "sasrec": "shelfwise.retrieval.sasrec:SASRecRecommender",
    "blend": "shelfwise.retrieval.blend:BlendRecommender",
    # compressed variants (shelfwise.compress): a bundle stores them under the base
    # model's name; `load_recommender` reads the kind from the folder's params.json
    "compressed": "shelfwise.compress.models:CompressedRecommender",
    "sasrec_onnx": "shelfwise.compress.onnx_sasrec:SASRecOnnxRecommender",
}
COMPRESSED_KINDS: tuple[str, ...] = ("compressed", "sasrec_onnx")
SEARCH_INDEXES: dict[str, str] = {
    "bm25": "shelfwise.retrieval.bm25:BM25Search",
    "dense": "shelfwise.retrieval.dense:DenseSearch",
    "dense_title": "shelfwise.retrieval.dense:DenseSearch",  # title-only vectors
    "hybrid": "shelfwise.search.hybrid:HybridSearch",
}


def _resolve(table: dict[str, str], name: str, kind: str) -> Any:
    try:
        module_name, _, attribute = table[name].partition(":")
    except KeyError:
        known = ", ".join(sorted(table))
        raise LookupError(f"unknown {kind} {name!r}; known: {known}") from None
    return getattr(importlib.import_module(module_name), attribute)


def recommender_class(name: str) -> type[Recommender] | type[SequentialRecommender]:
    """The class registered under `name` (imported now)."""
    cls: type[Recommender] | type[SequentialRecommender] = _resolve(
        RECOMMENDERS, name, "recommender"
    )
    return cls


def load_recommender(name: str, folder: Path) -> Recommender | SequentialRecommender:
    """Load a saved recommender (matrix or sequential) by its registered name.

    A folder holding a compressed variant of `name` (its params.json names one of
    `COMPRESSED_KINDS`) loads through that kind's class instead.
    """
    return recommender_class(_saved_kind(folder) or name).load(folder)


def _saved_kind(folder: Path) -> str | None:
    """The compressed kind a folder's params.json names, None for any other folder."""
    try:
        params = json.loads((folder / "params.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # the model's own loader reports what is wrong
    kind = params.get("name") if isinstance(params, dict) else None
    return kind if kind in COMPRESSED_KINDS else None


def load_search_index(name: str, folder: Path) -> SearchIndex:
    """Load a saved search index by its registered name."""
    cls: type[SearchIndex] = _resolve(SEARCH_INDEXES, name, "search index")
    return cls.load(folder)


__all__ = [
    "BM25Search",
    "COMPRESSED_KINDS",
    "ItemKNNRecommender",
    "PopularityRecommender",
    "RECOMMENDERS",
    "RankedSearch",
    "Recommender",
    "SEARCH_INDEXES",
    "SearchHits",
    "SearchIndex",
    "Sequences",
    "SequentialRecommender",
    "SimilarItems",
    "load_recommender",
    "load_search_index",
    "recommender_class",
    "top_k",
    "top_k_batch",
]
