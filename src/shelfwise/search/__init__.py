"""search: hybrid product search and the stage that assembles, trains and picks it.

Stage inputs: `features`, `retrieval` (the fitted BM25 and dense indexes). The stage
(`search.stage`) builds `HybridSearch` (BM25 + dense candidates fused by reciprocal
rank, `search.fusion`), trains its LambdaMART re-ranker (`search.lambdamart`) on
features of (query, item) pairs (`search.features`) with labels from judged queries
or search events (`search.labels`), compares the variants by cross-validation over
queries, and writes the one it serves. The inference side (`HybridSearch`,
`SearchReranker`) loads in the online role; the stage (`search.stage.run`) is batch-only.
"""

from __future__ import annotations

from shelfwise.search.hybrid import HybridSearch
from shelfwise.search.lambdamart import SearchReranker

__all__ = ["HybridSearch", "SearchReranker"]
