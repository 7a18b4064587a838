"""`EmbeddingCache.contains` answers from the keys alone (the plan's cache check)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shelfwise.text.embedding_cache import EmbeddingCache, item_texts, text_key


def test_contains_finds_keys_in_every_shard(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, "toy", dim=2)
    keys = [text_key("toy", text) for text in ("a", "b", "c")]
    cache.put(keys[:1], np.ones((1, 2), np.float32))
    cache.put(keys[2:], np.ones((1, 2), np.float32))
    assert cache.contains(keys).tolist() == [True, False, True]
    assert cache.contains([]).tolist() == []


def test_item_texts_join_clean_and_cut() -> None:
    fields = {"title": ["Red  dress", None], "brand": ["Acme", ""]}
    assert item_texts(fields, ["title", "brand"], max_chars=8) == ["Red dres", None]
