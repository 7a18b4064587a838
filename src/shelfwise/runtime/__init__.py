"""runtime: inference over one bundle, shared by the server, the gate, monitoring and the CLI.

`load_engine(path)` verifies and loads a bundle into an `Engine` that answers
`recommend`, `search`, `similar` and `predict` with raw ids at its edges; the catalog's
filters (`Filters`), precomputed per-user lists and live recommendations from fresh
events (`live_recommend`, weighing them with the bundle's event weights) live here too.
No web framework and no training code: the online role imports this package, `serve/`
wraps it in HTTP.
"""

from __future__ import annotations

from shelfwise.runtime.catalog import Catalog, Filters, ScoredItem
from shelfwise.runtime.engine import Engine, load_engine
from shelfwise.runtime.loading import resolve_bundle_path
from shelfwise.runtime.realtime import LiveRecommendation, live_recommend
from shelfwise.runtime.results import PredictResult, RecommendResult, SearchResult, SimilarResult

__all__ = [
    "Catalog",
    "Engine",
    "Filters",
    "LiveRecommendation",
    "PredictResult",
    "RecommendResult",
    "ScoredItem",
    "SearchResult",
    "SimilarResult",
    "live_recommend",
    "load_engine",
    "resolve_bundle_path",
]
