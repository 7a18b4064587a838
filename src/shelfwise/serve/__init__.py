"""The online role: a FastAPI service answering search and recommendation requests.

`create_app` builds the app (settings from the environment unless given),
`load_engine` loads a bundle for inference, `run_server` runs uvicorn. Nothing here
imports training, validation or evaluation code.
"""

from __future__ import annotations

from shelfwise.serve.app import create_app, run_server
from shelfwise.serve.catalog import Filters, ScoredItem
from shelfwise.serve.engine import (
    Engine,
    RecommendResult,
    SearchResult,
    SimilarResult,
    load_engine,
)
from shelfwise.serve.settings import ServeSettings

__all__ = [
    "Engine",
    "Filters",
    "RecommendResult",
    "ScoredItem",
    "SearchResult",
    "ServeSettings",
    "SimilarResult",
    "create_app",
    "load_engine",
    "run_server",
]
