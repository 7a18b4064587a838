"""Loading any saved search index: retrieval's plain indexes and the hybrid index.

This is the search loader of the online role: it imports an index's module only when
a folder of that kind is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from shelfwise.retrieval import SEARCH_INDEXES, SearchIndex, search_index_class
from shelfwise.retrieval.tables import resolve

# name -> "module:Class" of the search package's own indexes
HYBRID_INDEXES: Final[dict[str, str]] = {"hybrid": "shelfwise.search.hybrid:HybridSearch"}


def search_index_names() -> tuple[str, ...]:
    """Every registered search index: retrieval's plain ones and the hybrid one."""
    return tuple(sorted({*SEARCH_INDEXES, *HYBRID_INDEXES}))


def load_search_index(name: str, folder: Path) -> SearchIndex:
    """Load any saved search index (bm25, dense, dense_title, hybrid) by its name.

    Raises:
        LookupError: an unknown index (the message lists the known ones).
        ArtifactError: a damaged or foreign folder.
    """
    if name in HYBRID_INDEXES:
        cls: type[SearchIndex] = resolve(HYBRID_INDEXES, name, kind="search index")
        return cls.load(folder)
    if name not in SEARCH_INDEXES:
        known = ", ".join(search_index_names())
        raise LookupError(f"unknown search index {name!r}; known: {known}")
    return search_index_class(name).load(folder)


__all__ = ["HYBRID_INDEXES", "load_search_index", "search_index_names"]
