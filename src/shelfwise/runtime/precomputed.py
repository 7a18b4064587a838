"""Each known user's best items, computed in batches when a server loads a bundle.

Why: scoring one user live against a 50k-item catalog costs ~5 ms of CPU (the
recommender's scores over every item, a top-k over them, the click model's features
and LightGBM), most of it per-call overhead that a batch of 256 users shares (one
matrix product, one batched partition, one LightGBM call). The lists only depend on
the bundle, so the server computes them once per loaded bundle and answers
`/v1/recommend` from them; Gorse serves from per-user caches written by its workers
for the same reason. Written here rather than taken from a library because it is the
serving engine's own top-k and re-ranking rule, kept exact (below).

What `PrecomputedLists` keeps per user row `u`:

=============  ========================================================================
items[u]       the `depth` best items the live path may return (scored above 0 and,
               with `exclude_seen`, not in the user's history with a positive weight:
               the bundle's repeat policy decides, issue 15), best first by
               the recommender's score, ties by lower item_index (`top_k`'s order); -1
               pads
values[u]      what the live path reports for each: the click probability when the
               click model re-ranks, else the recommender's score
length[u]      how many are stored; -1 when the user is not precomputed (no history, or
               beyond the `max_users` most active)
complete[u]    True when the row holds every allowed item (fewer than `depth` exist)
=============  ========================================================================

Exactness: a request adds blocked items (filters, `exclude`, purchases, recent
events). Removing items from a ranked list leaves the order of the rest unchanged, so
the live top-k — or the live re-ranking pool, the `candidates` best — is the first k
(the first `candidates`) of the row's unblocked entries, whenever the row still holds
that many or holds every allowed item. The click model's features read the user's
history and the item's rank among all unseen items, never the pool or the blocked
items, so re-ranking that pool by the stored probabilities (stable: ties keep the
recommender's order) is the live re-ranking. Otherwise `lookup` answers None and the
engine scores the request live. The lists are scored in batches, so a score can
differ from the single-user computation in its last float32 bits (BLAS blocking).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import scipy.sparse as sp

from shelfwise.contracts import BoolArray, FloatArray
from shelfwise.contracts import IntArray as IndexArray

logger = logging.getLogger(__name__)

ScoreBatch = Callable[[IndexArray, sp.csr_matrix], FloatArray]
"""users (batch,), their history rows -> the recommender's dense (batch, n_items) scores."""
RerankBatch = Callable[[IndexArray, sp.csr_matrix, FloatArray, IndexArray], FloatArray]
"""users (batch,), their history rows, their scores (batch, n_items), items (batch,
depth; -1 pads) -> click probabilities shaped like the items."""

DEFAULT_BATCH: Final = 256
# Cells of one batch's dense (users x items) scores: 256 users of a 200k-item catalog
# would hold 205 MB of scores plus about four times that in the ranking's temporaries
# (copy, argpartition indices) per thread, so large catalogs get smaller batches.
MAX_BATCH_CELLS: Final = 16_000_000
DEPTH_MARGIN: Final = 50  # entries beyond the largest list a request can need


@dataclass(frozen=True)
class PrecomputedLists:
    """Per-user ranked lists (see the module doc); build with `precompute`."""

    items: np.ndarray[Any, np.dtype[np.int32]]
    values: FloatArray
    length: np.ndarray[Any, np.dtype[np.int32]]
    complete: BoolArray
    pool: int  # the click model's re-ranking pool (its `candidates`); 0: no re-ranking
    exclude_seen: bool = True  # False: the lists hold the user's own items too (repeats)

    @property
    def depth(self) -> int:
        """Entries kept per user."""
        return int(self.items.shape[1])

    @property
    def n_precomputed(self) -> int:
        """Users with a list."""
        return int((self.length >= 0).sum())

    @property
    def nbytes(self) -> int:
        """Memory the lists take."""
        return int(
            self.items.nbytes + self.values.nbytes + self.length.nbytes + self.complete.nbytes
        )

    def lookup(self, user: int, blocked: BoolArray, k: int) -> tuple[IndexArray, FloatArray] | None:
        """The live path's top `k` (items, values) for `user`, or None when it must score.

        Args:
            user: user_index in the bundle.
            blocked: True for items this request may not return (the user's history
                need not be marked: with `exclude_seen` it is never in the list).
            k: list length.
        """
        stored = int(self.length[user])
        if stored < 0:
            return None
        items = self.items[user, :stored]
        values = self.values[user, :stored]
        allowed = ~blocked[items]
        if not allowed.all():
            items, values = items[allowed], values[allowed]
        need = max(k, self.pool)
        if items.size < need and not self.complete[user]:
            return None  # the blocked items ate into the entries the answer needs
        items, values = items[:need], values[:need]
        if self.pool:
            order = np.argsort(-values, kind="stable")[:k]
            items, values = items[order], values[order]
        return items[:k].astype(np.int64), values[:k]


def precompute(
    histories: sp.csr_matrix,
    users: IndexArray,
    score: ScoreBatch,
    *,
    depth: int,
    rerank: RerankBatch | None = None,
    pool: int = 0,
    batch_size: int = DEFAULT_BATCH,
    threads: int = 1,
    exclude_seen: bool = True,
) -> PrecomputedLists:
    """Rank the items of `users` in batches.

    Args:
        histories: CSR (n_users, n_items) of the bundle; entries with a positive
            weight are the user's seen items.
        users: the user_index values to precompute (others get length -1); users
            without a positive history entry are skipped (the live path answers them
            with popular items).
        score: the recommender's scores of a batch of users.
        depth: entries kept per user; requests with `max(k, pool)` above it, or whose
            blocked items leave fewer, are scored live.
        rerank: the click model's probabilities, when it re-ranks the recommender.
        pool: the click model's re-ranking pool (`candidates`); with `rerank`.
        batch_size: users scored at once (memory: batch_size x n_items float32 per
            thread), lowered to keep a batch within `MAX_BATCH_CELLS` cells.
        threads: batches scored at once.
        exclude_seen: leave each user's history out of their list (the live path's
            default); False keeps it in, for a bundle whose repeat policy is "allow".
    """
    n_users, n_items = histories.shape
    depth = max(1, min(depth, n_items))
    items = np.full((n_users, depth), -1, dtype=np.int32)
    values = np.full((n_users, depth), np.nan, dtype=np.float32)
    length = np.full(n_users, -1, dtype=np.int32)
    complete = np.zeros(n_users, dtype=np.bool_)
    entry_rows = np.repeat(np.arange(n_users), np.diff(histories.indptr))
    positive = np.bincount(entry_rows[histories.data > 0], minlength=n_users) > 0
    chosen = np.asarray(users, dtype=np.int64)
    chosen = chosen[positive[chosen]]
    started = time.perf_counter()

    def one_batch(batch: IndexArray) -> None:  # writes rows no other batch writes
        rows = histories[batch]
        scores = np.asarray(score(batch, rows), dtype=np.float32).reshape(batch.size, n_items)
        ranked, ranked_scores, allowed = _ranked(scores, rows, depth, exclude_seen)
        items[batch] = ranked
        if rerank is not None:
            values[batch] = rerank(batch, rows, scores, ranked.astype(np.int64))
        else:
            values[batch] = ranked_scores
        length[batch] = np.minimum(allowed, depth)
        complete[batch] = allowed <= depth

    batch_size = max(1, min(batch_size, MAX_BATCH_CELLS // max(n_items, 1)))
    batches = [chosen[start : start + batch_size] for start in range(0, chosen.size, batch_size)]
    # numpy's products and partitions and LightGBM release the GIL: threads overlap
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool_:
        for _ in pool_.map(one_batch, batches):
            pass
    lists = PrecomputedLists(
        items, values, length, complete, pool if rerank is not None else 0, exclude_seen
    )
    logger.info(
        "precomputed the top %d items of %d users in %.1f s (%.0f MB)",
        depth,
        chosen.size,
        time.perf_counter() - started,
        lists.nbytes / 2**20,
    )
    return lists


def most_active(histories: sp.csr_matrix, limit: int) -> IndexArray:
    """The `limit` users with the most history entries (ties: lower user_index)."""
    counts = np.diff(sp.csr_matrix(histories).indptr)
    if limit >= counts.size:
        return np.arange(counts.size, dtype=np.int64)
    order = np.lexsort((np.arange(counts.size), -counts))
    return np.sort(order[:limit]).astype(np.int64)


def _ranked(
    scores: FloatArray, rows: sp.csr_matrix, depth: int, exclude_seen: bool = True
) -> tuple[np.ndarray[Any, np.dtype[np.int32]], FloatArray, np.ndarray[Any, np.dtype[np.int64]]]:
    """Row-wise best `depth` allowed items (-1 pads), their scores, and allowed counts.

    Allowed as in the live path: score above 0 and, with `exclude_seen`, not seen with
    a positive weight.
    """
    values = scores.copy()
    values[~(values > 0)] = -np.inf  # NaN too
    if exclude_seen:
        coo = sp.coo_matrix(rows)
        seen = coo.data > 0
        values[coo.row[seen], coo.col[seen]] = -np.inf
    allowed: np.ndarray[Any, np.dtype[np.int64]] = np.isfinite(values).sum(axis=1)
    part = np.argpartition(-values, depth - 1, axis=1)[:, :depth]
    part_scores = np.take_along_axis(values, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)  # best first, ties by lower index
    ranked = np.take_along_axis(part, order, axis=1)
    ranked_scores = np.take_along_axis(part_scores, order, axis=1)
    finite = np.isfinite(ranked_scores)
    padded: np.ndarray[Any, np.dtype[np.int32]] = np.where(finite, ranked, -1).astype(np.int32)
    return padded, np.where(finite, ranked_scores, np.nan).astype(np.float32), allowed
