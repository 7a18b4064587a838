"""search: hybrid product search and the stage that assembles, trains and picks it.

Stage inputs: `features`, `retrieval` (the fitted BM25 and dense indexes). The stage
(`search.stage`) builds `HybridSearch` (BM25 + dense candidates fused by reciprocal
rank, `search.fusion`), trains its LambdaMART re-ranker (`search.lambdamart`) on
features of (query, item) pairs (`search.features`) with labels from judged queries
or search events (`search.labels`), compares the variants by cross-validation over
queries on the full catalog, and writes the one it serves (`search.selection`: the
pick rule and the record every report reads). The inference side (`HybridSearch`,
`SearchReranker`, and `load_search_index`, which loads any saved search index: bm25,
dense, dense_title or hybrid) loads in the online role; the stage (`search.stage.run`)
is batch-only.
"""

from __future__ import annotations

from shelfwise.search.hybrid import HybridSearch
from shelfwise.search.lambdamart import SearchReranker
from shelfwise.search.loading import HYBRID_INDEXES, load_search_index, search_index_names

__all__ = [
    "HYBRID_INDEXES",
    "HybridSearch",
    "SearchReranker",
    "load_search_index",
    "search_index_names",
]
