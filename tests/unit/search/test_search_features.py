"""Search ranking features on a tiny catalog whose answers are worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from shelfwise.errors import DataError
from shelfwise.retrieval.bm25 import BM25Search
from shelfwise.search.features import (
    EXTRA_ENCODER_SIGNALS,
    SEARCH_FEATURE_NAMES,
    SIGNAL_NAMES,
    SearchItemTable,
    UserAffinity,
    bm25_signals,
    char_grams,
    char_share,
    item_popularity,
    normalise_text,
    query_features,
    rank_signal,
    search_feature_names,
    search_features,
    user_affinity,
)

ITEMS = pl.DataFrame(
    {
        "item_index": [0, 1, 2, 3],
        "raw_item_id": ["A", "B", "C", "D"],
        "title": ["Red Dress", "Cotton Red Dresses, summer", "Lenovo 笔记本电脑 15寸", None],
        "category": ["女装 / Dresses", "女装 / Dresses", "笔记本电脑 / Laptops", None],
        "brand": ["Zara", "Zara", "Lenovo/联想", "  "],
        "price": [30.0, None, 3999.0, -5.0],
    }
)


@pytest.fixture(scope="module")
def table() -> SearchItemTable:
    return SearchItemTable.from_frame(ITEMS, popularity=[0, 9, 99, 0])


def column(matrix: np.ndarray, name: str) -> list[float]:
    return [float(v) for v in matrix[:, SEARCH_FEATURE_NAMES.index(name)]]


def test_names_are_stable_and_distinct() -> None:
    assert len(set(SEARCH_FEATURE_NAMES)) == len(SEARCH_FEATURE_NAMES)
    assert SEARCH_FEATURE_NAMES[: len(SIGNAL_NAMES)] == SIGNAL_NAMES
    assert SEARCH_FEATURE_NAMES[:5] == (
        "bm25_title",
        "bm25_brand",
        "bm25_category",
        "bm25_description",
        "bm25_score",
    )
    assert SEARCH_FEATURE_NAMES[-2:] == ("user_category_affinity", "user_brand_affinity")


def test_shape_dtype_and_missing_signals(table: SearchItemTable) -> None:
    matrix = search_features("red dress", [1, 0, 2], {"rrf_score": [0.3, 0.2, 0.1]}, table)
    assert matrix.shape == (3, len(SEARCH_FEATURE_NAMES))
    assert matrix.dtype == np.float32
    assert column(matrix, "rrf_score") == pytest.approx([0.3, 0.2, 0.1])
    assert all(math.isnan(v) for v in column(matrix, "dense_cosine"))  # not given: NaN
    assert all(math.isnan(v) for v in column(matrix, "bm25_rank"))


def test_title_matches(table: SearchItemTable) -> None:
    matrix = search_features("Red dresses!", [0, 1, 2, 3], {}, table)
    # tokens: red, dress (stemmed); item 0 "red dress" exactly, item 1 has both and more
    assert column(matrix, "query_token_count") == [2.0] * 4
    assert column(matrix, "title_exact_match") == [1.0, 0.0, 0.0, 0.0]
    assert column(matrix, "title_token_share") == [1.0, 1.0, 0.0, 0.0]
    # the normalised text "red dresses" is inside item 1's title only
    assert column(matrix, "title_contains_query") == [0.0, 1.0, 0.0, 0.0]
    partial = search_features("red laptop", [0, 2], {}, table)
    assert column(partial, "title_token_share") == [0.5, 0.0]


def test_char_grams_by_hand() -> None:
    # trigrams with a space either side, across words too
    assert char_grams("red dress") == {
        " re", "red", "ed ", "d d", " dr", "dre", "res", "ess", "ss ",
    }  # fmt: skip
    # Chinese runs give character bigrams (a lone character itself), never trigrams
    assert char_grams("华为手机壳") == {"华为", "为手", "手机", "机壳"}
    assert char_grams("手机") == {"手机"}
    assert char_grams("i 手") == {" i ", "手"}
    assert char_grams("") == frozenset()


def test_char_share_equals_the_share_of_common_trigrams() -> None:
    # the substring lookup against the oracle: the two texts' trigram sets compared
    rng = np.random.default_rng(3)
    words = ["red", "dress", "dresses", "back", "pack", "backpack", "1/2", "in", "oven"]
    for _ in range(200):
        query = " ".join(rng.choice(words, rng.integers(1, 4)))
        title = " ".join(rng.choice(words, rng.integers(1, 6)))
        grams = char_grams(query)
        assert char_share(grams, title) == len(grams & char_grams(title)) / len(grams)
    assert char_share(frozenset(), "red dress") == 0.0


def test_title_char_share_is_a_fuzzy_title_match() -> None:
    items = pl.DataFrame(
        {"title": ["Refrigerator, stainless", "Backpack for school", "华为手机壳 黑色", "Oven"]}
    )
    table = SearchItemTable.from_frame(items)
    share = column(search_features("refridgerators", [0, 1, 2, 3], {}, table), "title_char_share")
    # a misspelt plural shares most trigrams with the right word; no token matches it
    assert share[0] > 0.6
    assert share[1] == share[2] == share[3] == 0.0
    split = column(search_features("back pack", [0, 1], {}, table), "title_char_share")
    assert split[1] > 0.6 > split[0]
    chinese = column(search_features("手机", [0, 2], {}, table), "title_char_share")
    assert chinese == [0.0, 1.0]
    # by hand: "ovens" -> " ov", "ove", "ven", "ens", "ns "; the title "oven" has 3 of 5
    assert column(search_features("ovens", [3], {}, table), "title_char_share") == [
        pytest.approx(0.6)
    ]


def test_corrections_fix_the_text_features(table: SearchItemTable) -> None:
    raw = search_features("red dresss", [0], {}, table)
    fixed = search_features("red dresss", [0], {}, table, corrections={"dresss": "dress"})
    assert column(raw, "title_exact_match") == [0.0]
    assert column(raw, "title_token_share") == [0.5]
    assert column(fixed, "title_exact_match") == [1.0]
    assert column(fixed, "title_token_share") == [1.0]


def test_query_mentions_category_and_brand(table: SearchItemTable) -> None:
    english = search_features("zara dresses", [0, 2, 3], {}, table)
    assert column(english, "query_mentions_brand") == [1.0, 0.0, 0.0]
    assert column(english, "query_mentions_category") == [1.0, 0.0, 0.0]
    chinese = search_features("联想 笔记本电脑", [0, 2], {}, table)  # the other name of each
    assert column(chinese, "query_mentions_brand") == [0.0, 1.0]
    assert column(chinese, "query_mentions_category") == [0.0, 1.0]
    partial = search_features("笔记本", [2], {}, table)  # only part of "笔记本电脑"
    assert column(partial, "query_mentions_category") == [0.0]


def test_item_features(table: SearchItemTable) -> None:
    matrix = search_features("anything", [0, 1, 2, 3], {}, table)
    assert column(matrix, "log_popularity") == pytest.approx(
        [0.0, math.log1p(9), math.log1p(99), 0.0]
    )
    log_price = column(matrix, "log_price")
    assert log_price[0] == pytest.approx(math.log1p(30.0))
    assert math.isnan(log_price[1])  # null
    assert math.isnan(log_price[3])  # negative: unknown
    assert column(matrix, "price_missing") == [0.0, 1.0, 0.0, 1.0]
    unknown = SearchItemTable.from_frame(ITEMS.drop("price"))  # no counts, no prices
    matrix = search_features("anything", [0], {}, unknown)
    assert math.isnan(column(matrix, "log_popularity")[0])
    assert column(matrix, "price_missing") == [1.0]


def test_user_affinity(table: SearchItemTable) -> None:
    # history: item 0 twice, item 2 once, item 3 (no category / brand) once
    affinity = user_affinity(table, [0, 0, 2, 3])
    assert affinity.category == pytest.approx(
        {"女装 / dresses": 2 / 3, "笔记本电脑 / laptops": 1 / 3}
    )
    assert affinity.brand == pytest.approx({"zara": 2 / 3, "lenovo/联想": 1 / 3})
    matrix = search_features("x", [1, 2, 3], {}, table, affinity=affinity)
    assert column(matrix, "user_category_affinity") == pytest.approx([2 / 3, 1 / 3, 0.0])
    assert column(matrix, "user_brand_affinity") == pytest.approx([2 / 3, 1 / 3, 0.0])
    anonymous = search_features("x", [1, 2], {}, table)
    assert column(anonymous, "user_category_affinity") == [0.0, 0.0]
    weighted = user_affinity(table, [0, 2], weights=[1.0, 3.0])
    assert weighted.brand == pytest.approx({"zara": 0.25, "lenovo/联想": 0.75})
    assert user_affinity(table, []) == UserAffinity()


def test_signals_from_the_retrievers(table: SearchItemTable) -> None:
    index = BM25Search(field_weights={"title": 2.0, "brand": 1.0, "attributes": 1.0})
    index.fit(
        {
            "title": ITEMS["title"].to_list(),
            "brand": ITEMS["brand"].to_list(),
            "attributes": ["red", None, None, None],
        }
    )
    candidates = np.array([2, 0])
    signals = bm25_signals(index.field_scores("zara red dress"), candidates)
    assert sorted(signals) == ["bm25_brand", "bm25_title"]  # no feature for "attributes"
    signals["bm25_score"] = index.score("zara red dress")[candidates]
    signals["bm25_rank"] = rank_signal([0, 1], candidates)
    matrix = search_features("zara red dress", candidates, signals, table)
    assert column(matrix, "bm25_title")[0] == 0.0
    assert column(matrix, "bm25_title")[1] > 0.0
    assert math.isnan(column(matrix, "bm25_rank")[0])
    assert column(matrix, "bm25_rank")[1] == 1.0


def test_rank_signal() -> None:
    ranks = rank_signal([7, -1, 3, 7, 5], [5, 3, 7, 4])
    assert ranks.dtype == np.float32
    np.testing.assert_array_equal(ranks, [5.0, 3.0, 1.0, np.nan])
    assert np.isnan(rank_signal([], [1, 2])).all()


def test_query_features_stack_queries(table: SearchItemTable) -> None:
    features, groups = query_features(
        ["red dress", "lenovo", "nothing"],
        [[0, 1], [2], []],
        [{"rrf_score": [0.5, 0.4]}, {}, {}],
        table,
        affinities=[None, UserAffinity(brand={"lenovo/联想": 1.0}), None],
    )
    assert features.shape == (3, len(SEARCH_FEATURE_NAMES))
    assert groups.tolist() == [0, 0, 1]
    np.testing.assert_array_equal(
        features[:2], search_features("red dress", [0, 1], {"rrf_score": [0.5, 0.4]}, table)
    )
    assert column(features, "user_brand_affinity") == [0.0, 0.0, 1.0]
    with pytest.raises(DataError, match="one entry per query"):
        query_features(["a"], [[0], [1]], [{}], table)


def test_item_popularity_counts_distinct_users() -> None:
    interactions = pl.DataFrame(
        {
            "user_index": [0, 0, 1, 2, 2],
            "item_index": [1, 1, 1, 3, 0],
            "weight": [1.0, 1.0, 2.0, 1.0, 0.0],  # weight 0: a search, not counted
        }
    )
    assert item_popularity(interactions, 5).tolist() == [0, 2, 0, 1, 0]


def test_normalise_text() -> None:
    assert normalise_text("  ＲＥＤ  Dress,  红色!! ") == "red dress 红色"
    assert normalise_text(None) == ""


def test_invalid_input(table: SearchItemTable) -> None:
    with pytest.raises(DataError, match="unknown signals"):
        search_features("x", [0], {"dense_cos": [0.1]}, table)
    with pytest.raises(DataError, match="1 candidates"):
        search_features("x", [0], {"rrf_score": [0.1, 0.2]}, table)
    with pytest.raises(DataError, match=r"0\.\.3"):
        search_features("x", [4], {}, table)
    with pytest.raises(DataError, match="popularity"):
        SearchItemTable.from_frame(ITEMS, popularity=[1, 2])
    with pytest.raises(DataError, match="sorted by item_index"):
        SearchItemTable.from_frame(ITEMS.reverse())
    with pytest.raises(DataError, match="history item"):
        user_affinity(table, [9])


def test_feature_encoders_add_columns_after_every_other_feature(table: SearchItemTable) -> None:
    assert search_feature_names() == SEARCH_FEATURE_NAMES
    names = search_feature_names(2)
    assert names[: len(SEARCH_FEATURE_NAMES)] == SEARCH_FEATURE_NAMES
    assert names[len(SEARCH_FEATURE_NAMES) :] == tuple(
        f"extra{k}_{signal}" for k in (1, 2) for signal in EXTRA_ENCODER_SIGNALS
    )
    signals = {"rrf_score": [0.3, 0.2], "extra2_cosine": [0.9, 0.1]}
    matrix = search_features("red dress", [1, 0], signals, table, extra_encoders=2)
    assert matrix.shape == (2, len(names))
    assert matrix[:, names.index("extra2_cosine")].tolist() == pytest.approx([0.9, 0.1])
    assert np.isnan(matrix[:, names.index("extra1_cosine")]).all()  # not given: NaN
    # the columns every model has are the same with or without feature encoders
    np.testing.assert_array_equal(
        matrix[:, : len(SEARCH_FEATURE_NAMES)],
        search_features("red dress", [1, 0], {"rrf_score": [0.3, 0.2]}, table),
    )
    stacked, _ = query_features(["red dress"], [[1, 0]], [signals], table, extra_encoders=2)
    np.testing.assert_array_equal(stacked, matrix)
    empty, _ = query_features([], [], [], table, extra_encoders=1)
    assert empty.shape == (0, len(search_feature_names(1)))


def test_extra_signals_need_their_encoder(table: SearchItemTable) -> None:
    with pytest.raises(DataError, match="unknown signals"):
        search_features("x", [0], {"extra1_cosine": [0.1]}, table)  # no feature encoder
    with pytest.raises(DataError, match="unknown signals"):
        search_features("x", [0], {"extra2_cosine": [0.1]}, table, extra_encoders=1)
    with pytest.raises(DataError, match="extra_encoders"):
        search_feature_names(-1)
