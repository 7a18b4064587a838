"""Embedding cache: unchanged texts are never re-encoded; shards are plain, atomic files."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from shelfwise.errors import ConfigError
from shelfwise.text import embedding_cache
from shelfwise.text.embedding_cache import EmbeddingCache, encode_with_cache, text_key
from shelfwise.text.encoders import TextEncoder


class CountingEncoder:
    """A tiny deterministic encoder (hashed characters) that records what it encodes."""

    def __init__(self, model_id: str = "counting-v1", dim: int = 8) -> None:
        self.name = "counting"
        self.model_id = model_id
        self.dim = dim
        self.calls: list[list[str]] = []

    def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        rows = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in zip(rows, texts, strict=True):
            digest = hashlib.sha256(text.encode()).digest()
            row[:] = np.frombuffer(digest[: self.dim], dtype=np.uint8) + 1.0
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._vectors(texts)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return self._vectors(texts)

    @property
    def encoded(self) -> list[str]:
        return [text for call in self.calls for text in call]


TEXTS = [f"product {i}" for i in range(10)]


def test_fake_encoder_fits_the_protocol() -> None:
    assert isinstance(CountingEncoder(), TextEncoder)


def test_unchanged_texts_are_never_reencoded(tmp_path: Path) -> None:
    encoder = CountingEncoder()
    first = encode_with_cache(encoder, TEXTS, tmp_path, batch_size=4)
    assert sorted(encoder.encoded) == sorted(TEXTS)
    encoder.calls.clear()
    second = encode_with_cache(encoder, TEXTS, tmp_path, batch_size=4)
    assert encoder.calls == []
    np.testing.assert_array_equal(first, second)
    assert second.dtype == np.float32


def test_only_new_or_changed_texts_are_encoded(tmp_path: Path) -> None:
    encoder = CountingEncoder()
    encode_with_cache(encoder, TEXTS, tmp_path)
    encoder.calls.clear()
    changed = [*TEXTS[:5], "product 5 (new colour)", *TEXTS[6:], "brand new product"]
    vectors = encode_with_cache(encoder, changed, tmp_path)
    assert sorted(encoder.encoded) == ["brand new product", "product 5 (new colour)"]
    np.testing.assert_allclose(vectors, encoder._vectors(changed), rtol=1e-6)


def test_a_new_encoder_version_does_not_reuse_vectors(tmp_path: Path) -> None:
    encode_with_cache(CountingEncoder("counting-v1"), TEXTS, tmp_path)
    newer = CountingEncoder("counting-v2")
    encode_with_cache(newer, TEXTS, tmp_path)
    assert sorted(newer.encoded) == sorted(TEXTS)
    assert len(list(tmp_path.iterdir())) == 2  # one folder per model id


def test_duplicates_are_encoded_once_and_batches_are_respected() -> None:
    encoder = CountingEncoder()
    texts = ["a", "b", "a", "c", "b", "d", "e"]
    vectors = encode_with_cache(encoder, texts, None, batch_size=2)
    assert [len(call) for call in encoder.calls] == [2, 2, 1]
    assert sorted(encoder.encoded) == ["a", "b", "c", "d", "e"]
    np.testing.assert_array_equal(vectors[0], vectors[2])
    assert vectors.shape == (7, 8)


def test_without_a_cache_dir_everything_is_encoded_each_time() -> None:
    encoder = CountingEncoder()
    encode_with_cache(encoder, TEXTS, None)
    encode_with_cache(encoder, TEXTS, None)
    assert len(encoder.encoded) == 2 * len(TEXTS)


def test_empty_input() -> None:
    encoder = CountingEncoder()
    assert encode_with_cache(encoder, [], None).shape == (0, 8)
    assert encoder.calls == []


def test_batch_size_is_checked() -> None:
    with pytest.raises(ConfigError, match="batch_size must be >= 1, got 0"):
        encode_with_cache(CountingEncoder(), TEXTS, None, batch_size=0)


def test_files_are_plain_npy_without_pickle(tmp_path: Path) -> None:
    encoder = CountingEncoder()
    encode_with_cache(encoder, TEXTS, tmp_path)
    (folder,) = tmp_path.iterdir()
    (keys_file,) = folder.glob("keys-*.npy")
    (vectors_file,) = folder.glob("vectors-*.npy")
    keys = np.load(keys_file, allow_pickle=False)
    vectors = np.load(vectors_file, allow_pickle=False)
    assert keys.dtype == np.dtype("S32")
    assert vectors.shape == (10, 8)
    assert keys[0] == text_key("counting-v1", TEXTS[0])
    assert (folder / "encoder.json").is_file()


def test_interrupted_runs_keep_flushed_vectors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedding_cache, "FLUSH_EVERY", 4)

    class FailingEncoder(CountingEncoder):
        def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
            if len(self.calls) == 3:
                raise KeyboardInterrupt
            return super().encode_passages(texts)

    with pytest.raises(KeyboardInterrupt):
        encode_with_cache(FailingEncoder(), TEXTS, tmp_path, batch_size=2)
    encoder = CountingEncoder()
    encode_with_cache(encoder, TEXTS, tmp_path, batch_size=2)
    assert len(encoder.encoded) == 6  # the first 4 were flushed before the failure


def test_many_shards_are_merged(tmp_path: Path) -> None:
    encoder = CountingEncoder()
    for text in TEXTS * 2:  # every text twice: the second round hits the cache
        encode_with_cache(encoder, [text], tmp_path)
    cache = EmbeddingCache(tmp_path, encoder.model_id, encoder.dim)
    assert len(list(cache.folder.glob("keys-*.npy"))) == len(TEXTS)
    for i in range(embedding_cache.MAX_SHARDS):
        encode_with_cache(encoder, [f"extra {i}"], tmp_path)
    assert len(list(cache.folder.glob("keys-*.npy"))) < embedding_cache.MAX_SHARDS
    assert len(cache) == len(TEXTS) + embedding_cache.MAX_SHARDS
    encoder.calls.clear()
    encode_with_cache(encoder, TEXTS, tmp_path)
    assert encoder.calls == []


def test_incomplete_or_damaged_shards_are_ignored(tmp_path: Path) -> None:
    encoder = CountingEncoder()
    encode_with_cache(encoder, TEXTS[:5], tmp_path)
    cache = EmbeddingCache(tmp_path, encoder.model_id, encoder.dim)
    np.save(cache.folder / "vectors-orphan.npy", np.zeros((3, 8), np.float32))  # no keys
    np.save(cache.folder / "keys-bad.npy", np.arange(5))  # wrong dtype
    np.save(cache.folder / "vectors-bad.npy", np.zeros((5, 8), np.float32))
    encoder.calls.clear()
    encode_with_cache(encoder, TEXTS, tmp_path)
    assert sorted(encoder.encoded) == sorted(TEXTS[5:])


def test_put_checks_shapes(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, "m", dim=4)
    with pytest.raises(ValueError, match="2 keys but vectors of shape"):
        cache.put([b"x" * 32, b"y" * 32], np.zeros((3, 4), np.float32))
