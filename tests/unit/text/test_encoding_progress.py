"""Encoding shows a progress bar with an ETA when bars are on; none when off (issue 16)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shelfwise._internal import progress
from shelfwise.text import embedding_cache
from shelfwise.text.embedding_cache import encode_with_cache


class LengthEncoder:
    """2-d vectors from the text length; records the order texts arrive in."""

    name = "length"
    model_id = "length-v1"
    dim = 2

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode_passages(texts)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        self.seen.extend(texts)
        rows = np.asarray([[len(text), 1.0] for text in texts], dtype=np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.fixture
def bars(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """Progress bars turned on; each bar's description, total and steps recorded."""
    shown: list[dict[str, Any]] = []
    real = progress.track

    def track(items: Iterable[Any], description: str, total: int | None = None) -> Iterator[Any]:
        bar: dict[str, Any] = {"description": description, "total": total, "steps": 0}
        shown.append(bar)
        for item in real(items, description, total):
            bar["steps"] += 1
            yield item

    monkeypatch.setattr(embedding_cache.progress_bars, "track", track)
    progress.enable(True)
    yield shown
    progress.enable(False)


def test_encoding_shows_one_step_per_batch(bars: list[dict[str, Any]], tmp_path: Path) -> None:
    texts = [f"product {'x' * n}" for n in range(10)]
    vectors = encode_with_cache(LengthEncoder(), texts, tmp_path, batch_size=4)
    assert vectors.shape == (10, 2)
    assert bars == [{"description": "encoding 10 texts", "total": 3, "steps": 3}]


def test_a_cached_catalog_needs_no_encoding(bars: list[dict[str, Any]], tmp_path: Path) -> None:
    texts = ["red dress", "copper pipe"]
    first = encode_with_cache(LengthEncoder(), texts, tmp_path)
    again = LengthEncoder()
    np.testing.assert_array_equal(encode_with_cache(again, texts, tmp_path), first)
    assert again.seen == []
    assert bars[-1]["total"] == 0


def test_texts_go_to_the_encoder_shortest_first_in_their_own_rows(tmp_path: Path) -> None:
    encoder = LengthEncoder()
    texts = ["a much longer product title", "short", "mid length"]
    vectors = encode_with_cache(encoder, texts, None, batch_size=2, progress=False)
    assert encoder.seen == ["short", "mid length", "a much longer product title"]
    np.testing.assert_array_equal(vectors, LengthEncoder().encode_passages(texts))
