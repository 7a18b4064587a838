"""Dense queries read what BM25 reads: a long query costs no more than a bounded one."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from shelfwise.retrieval.dense import DenseSearch
from shelfwise.text.embedding_cache import clean_text
from shelfwise.text.tokenize import MAX_QUERY_CHARS, bound_query


class RecordingEncoder:
    """Constant unit vectors; remembers every query text it was asked to encode."""

    name = "recording"
    model_id = "recording-v1"
    dim = 4

    def __init__(self) -> None:
        self.queries: list[str] = []

    def _vectors(self, count: int) -> np.ndarray:
        return np.tile(np.asarray([[1.0, 0.0, 0.0, 0.0]], dtype=np.float32), (count, 1))

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        self.queries.extend(texts)
        return self._vectors(len(texts))

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._vectors(len(texts))


def fitted(encoder: RecordingEncoder) -> DenseSearch:
    index = DenseSearch(encoder=encoder, fields=["title"], query_cache_size=0)
    index.fit({"title": ["red dress", "copper pipe"]})
    return index


def test_a_512_character_query_is_encoded_as_its_bounded_part() -> None:
    encoder = RecordingEncoder()
    index = fitted(encoder)
    query = ("copper pipe fitting " * 30)[:512]
    index.nearest(query, k=1)
    (encoded,) = encoder.queries
    assert len(encoded) <= MAX_QUERY_CHARS
    assert encoded == clean_text(bound_query(query))


def test_a_pasted_paragraph_costs_what_its_first_words_cost() -> None:
    encoder = RecordingEncoder()
    index = fitted(encoder)
    index.encode_query("x" * 5000 + " copper")
    index.encode_query("红色连衣裙" * 200)
    assert all(len(text) <= MAX_QUERY_CHARS for text in encoder.queries)


def test_ordinary_queries_are_encoded_whole() -> None:
    encoder = RecordingEncoder()
    index = fitted(encoder)
    index.encode_query("1/2 in. copper   pipe")
    assert encoder.queries == ["1/2 in. copper pipe"]
