"""BM25 search: multilingual matching, field weights, persistence, and a hand-made oracle."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import bm25s
import numpy as np
import pytest

from shelfwise.errors import ArtifactError, ConfigError, DataError, EmptyDataError
from shelfwise.retrieval import SearchIndex, load_search_index
from shelfwise.retrieval.bm25 import BM25Search
from shelfwise.text.tokenize import tokenize

CATALOG: dict[str, list[str | None]] = {
    "title": [
        "联想 轻薄笔记本电脑 银色",
        "Red Summer Dress 红色连衣裙",
        "笔记本 A5 横线 100页",
        "电脑包 15寸 黑色",
        "Blue Denim Jeans 牛仔裤",
        "Red Wine Glass 红酒杯",
        None,
    ],
    "brand": ["联想", "Zara", "得力", "Targus", "Levi's", None, None],
    "category": ["电脑", "女装", "文具", "箱包", "男装", "厨具", None],
    "description": [None, "light cotton summer dress", None, None, None, None, None],
}


@pytest.fixture(scope="module")
def shared_index() -> BM25Search:
    index = BM25Search()
    index.fit(CATALOG)
    return index


def ranking(scores: np.ndarray) -> list[int]:
    """Items with a positive score, best first."""
    order = np.lexsort((np.arange(scores.size), -scores))
    return [int(i) for i in order if scores[i] > 0]


def test_is_a_registered_search_index(shared_index: BM25Search) -> None:
    assert isinstance(shared_index, SearchIndex)
    assert shared_index.indexed_fields == ["title", "brand", "category", "description"]


def test_chinese_query_finds_the_laptop_first(shared_index: BM25Search) -> None:
    scores = shared_index.score("笔记本电脑")
    assert scores.shape == (7,)
    assert scores.dtype == np.float32
    assert ranking(scores)[0] == 0  # ahead of the notebook (2) and the laptop bag (3)


def test_partial_chinese_word_matches_longer_word(shared_index: BM25Search) -> None:
    assert shared_index.score("连衣")[1] > 0  # bigram of 连衣裙


def test_english_query_finds_the_dress_first(shared_index: BM25Search) -> None:
    assert ranking(shared_index.score("red dress"))[:2] == [1, 5]  # dress, then red wine glass


def test_mixed_query(shared_index: BM25Search) -> None:
    assert ranking(shared_index.score("Zara 连衣裙"))[0] == 1
    assert ranking(shared_index.score("denim 牛仔裤"))[0] == 4


def test_full_width_and_case_are_normalised(shared_index: BM25Search) -> None:
    np.testing.assert_array_equal(
        shared_index.score("ＲＥＤ ＤＲＥＳＳ"), shared_index.score("red dress")
    )


@pytest.mark.parametrize("query", ["", "   ", "!!! ，。", "the of and", "zzzz 鑫鑫鑫"])
def test_no_known_token_scores_zero(shared_index: BM25Search, query: str) -> None:
    scores = shared_index.score(query)
    assert scores.shape == (7,)
    assert not scores.any()


def test_field_weights_change_the_ranking() -> None:
    fields: dict[str, list[str | None]] = {
        "title": ["logitech mouse", "wireless mouse"],
        "brand": ["acme", "logitech"],
    }
    title_heavy = BM25Search(field_weights={"title": 5.0, "brand": 0.1})
    title_heavy.fit(fields)
    brand_heavy = BM25Search(field_weights={"title": 0.1, "brand": 5.0})
    brand_heavy.fit(fields)
    assert ranking(title_heavy.score("logitech")) == [0, 1]
    assert ranking(brand_heavy.score("logitech")) == [1, 0]
    zero_brand = BM25Search(field_weights={"title": 1.0, "brand": 0.0})
    zero_brand.fit(fields)
    assert zero_brand.indexed_fields == ["title"]
    assert ranking(zero_brand.score("logitech")) == [0]


def test_scores_are_the_weighted_sum_of_fields() -> None:
    fields: dict[str, list[str | None]] = {"title": ["red cup", "blue cup"], "brand": ["red", None]}
    both = BM25Search(field_weights={"title": 2.0, "brand": 0.5})
    both.fit(fields)
    title = BM25Search(field_weights={"title": 1.0})
    title.fit(fields)
    brand = BM25Search(field_weights={"brand": 1.0})
    brand.fit(fields)
    expected = 2.0 * title.score("red cup") + 0.5 * brand.score("red cup")
    np.testing.assert_allclose(both.score("red cup"), expected, rtol=1e-6)


def test_fields_empty_everywhere_are_skipped() -> None:
    index = BM25Search()
    index.fit({"title": ["red cup", "blue cup"], "description": [None, "  ...  "]})
    assert index.indexed_fields == ["title"]


def test_save_load_round_trip(shared_index: BM25Search, tmp_path: Path) -> None:
    shared_index.save(tmp_path / "bm25")
    loaded = load_search_index("bm25", tmp_path / "bm25")
    assert isinstance(loaded, BM25Search)
    assert loaded.indexed_fields == shared_index.indexed_fields
    assert loaded.field_weights == shared_index.field_weights
    for query in ["笔记本电脑", "red dress", "Zara 连衣裙", ""]:
        np.testing.assert_array_equal(loaded.score(query), shared_index.score(query))
    files = [path for path in (tmp_path / "bm25").rglob("*") if path.is_file()]
    assert {path.suffix for path in files} <= {".npy", ".json"}
    for path in files:
        if path.suffix == ".npy":
            np.load(path, allow_pickle=False)


def test_saved_files_are_deterministic(tmp_path: Path) -> None:
    for run in ("a", "b"):
        index = BM25Search()
        index.fit(CATALOG)
        index.save(tmp_path / run)
    for path in sorted((tmp_path / "a").rglob("*")):
        if path.is_file():
            twin = tmp_path / "b" / path.relative_to(tmp_path / "a")
            assert path.read_bytes() == twin.read_bytes(), path.name


def test_load_damaged_folder(shared_index: BM25Search, tmp_path: Path) -> None:
    shared_index.save(tmp_path)
    (tmp_path / "fields" / "brand" / "doc_items.npy").unlink()
    with pytest.raises(ArtifactError, match="incomplete"):
        BM25Search.load(tmp_path)


def test_invalid_input() -> None:
    with pytest.raises(DataError, match="lengths differ"):
        BM25Search().fit({"title": ["a cup"], "brand": ["x", "y"]})
    with pytest.raises(EmptyDataError, match="no items"):
        BM25Search().fit({"title": []})
    with pytest.raises(EmptyDataError, match="has any text"):
        BM25Search().fit({"title": [None, "!!!"], "colour": ["red", "blue"]})
    with pytest.raises(ConfigError, match="field name"):
        BM25Search(field_weights={"../title": 1.0})
    with pytest.raises(ConfigError, match="k1"):
        BM25Search(k1=0.0)
    with pytest.raises(ConfigError, match=r"b must be in \[0, 1\]"):
        BM25Search(b=1.5)


# --- oracle: the Lucene BM25 variant computed by hand --------------------------------

ORACLE_TITLES: list[str | None] = [
    "red cup red cup red",
    "blue cup",
    None,  # no text: not a document of the field, scores 0
    "green bowl with red rim",
    "cup cup cup cup cup cup plate",
    "bowl",
]


def lucene_bm25(docs: list[list[str]], query: list[str], k1: float, b: float) -> np.ndarray:
    """Lucene BM25 by the formula, one query term at a time.

        score(d) = Σ_{t in query} ln(1 + (N - df + .5) / (df + .5))
                                  · tf / (tf + k1 (1 - b + b · dl / avgdl))

    This is bm25s' default method="lucene" (Lucene >= 8 drops the constant (k1 + 1)
    numerator factor; it does not change rankings). N, df and avgdl count only the
    documents that have text.
    """
    n_docs = len(docs)
    avgdl = sum(len(d) for d in docs) / n_docs
    df = Counter(t for d in docs for t in set(d))
    scores = np.zeros(n_docs)
    for i, doc in enumerate(docs):
        tf = Counter(doc)
        for term in query:  # repeated query terms count again, as in bm25s
            if tf[term]:
                idf = math.log(1 + (n_docs - df[term] + 0.5) / (df[term] + 0.5))
                norm = k1 * (1 - b + b * len(doc) / avgdl)
                scores[i] += idf * tf[term] / (tf[term] + norm)
    return scores


def test_bm25s_defaults_to_the_lucene_variant() -> None:
    assert bm25s.BM25().method == "lucene"


@pytest.mark.parametrize(("k1", "b"), [(1.2, 0.75), (1.5, 0.0), (0.9, 1.0)])
@pytest.mark.parametrize("query", ["red cup", "bowl", "cup plate rim", "red red"])
def test_single_field_matches_hand_computed_bm25(k1: float, b: float, query: str) -> None:
    index = BM25Search(k1=k1, b=b, field_weights={"title": 1.0})
    index.fit({"title": ORACLE_TITLES})
    present = [i for i, text in enumerate(ORACLE_TITLES) if text]
    docs = [tokenize(ORACLE_TITLES[i] or "") for i in present]
    expected = np.zeros(len(ORACLE_TITLES))
    expected[present] = lucene_bm25(docs, tokenize(query), k1, b)
    np.testing.assert_allclose(index.score(query), expected, rtol=1e-5, atol=1e-7)


# --- typo tolerance and per-field scores ---------------------------------------------

TYPO_CATALOG: dict[str, list[str | None]] = {
    "title": [
        "Red Summer Dress",
        "Lenovo Laptop 15 inch",
        "Laptop Bag 15 inch",
        "Blue Denim Jeans",
        "Cotton Dress Shirt",
        "联想 笔记本电脑",
    ],
    "brand": ["Zara", "Lenovo", "Targus", "Levi's", "Uniqlo", "联想"],
    "category": ["Dresses", "Laptops", "Bags", "Jeans", "Shirts", "电脑"],
}


@pytest.fixture(scope="module")
def typo_index() -> BM25Search:
    index = BM25Search()
    index.fit(TYPO_CATALOG)
    return index


def test_misspelled_queries_find_the_items(typo_index: BM25Search) -> None:
    assert ranking(typo_index.score("dresss"))[:2] == [0, 4]  # the dress, then the dress shirt
    assert ranking(typo_index.score("red dresss"))[0] == 0
    assert ranking(typo_index.score("laptpo"))[:2] == [1, 2]  # laptop (category too), bag
    assert ranking(typo_index.score("lenvoo laptpo"))[0] == 1
    assert typo_index.corrections("red dresss laptpo") == {"dresss": "dress", "laptpo": "laptop"}


def test_corrections_are_added_not_substituted(typo_index: BM25Search) -> None:
    assert typo_index.query_tokens("red dresss") == ["red", "dresss", "dress"]
    assert typo_index.query_tokens("dress") == ["dress"]  # known: untouched
    assert typo_index.query_tokens("笔记本电恼") == tokenize("笔记本电恼")  # CJK: untouched
    # the unknown token scores 0, so the misspelling scores exactly like the fix
    np.testing.assert_array_equal(typo_index.score("dresss"), typo_index.score("dress"))


def test_typo_tolerance_can_be_switched_off(tmp_path: Path) -> None:
    strict = BM25Search(typo_tolerance=False)
    strict.fit(TYPO_CATALOG)
    assert not strict.score("dresss").any()
    assert strict.corrections("dresss") == {}
    strict.save(tmp_path)
    assert not (tmp_path / "spell.json").exists()
    assert not BM25Search.load(tmp_path).score("dresss").any()


def test_vocabulary_is_saved_and_loaded(typo_index: BM25Search, tmp_path: Path) -> None:
    typo_index.save(tmp_path)
    assert (tmp_path / "spell.json").is_file()
    loaded = BM25Search.load(tmp_path)
    assert loaded.typo_tolerance
    for query in ["dresss", "lenvoo laptpo", "笔记本电脑"]:
        np.testing.assert_array_equal(loaded.score(query), typo_index.score(query))
    (tmp_path / "spell.json").unlink()
    with pytest.raises(ArtifactError, match="spell.json"):
        BM25Search.load(tmp_path)


def test_index_saved_without_typo_tolerance_params_still_loads(
    typo_index: BM25Search, tmp_path: Path
) -> None:
    typo_index.save(tmp_path)
    params_path = tmp_path / "params.json"
    params = json.loads(params_path.read_text(encoding="utf-8"))
    del params["typo_tolerance"]  # the format before typo tolerance
    params_path.write_text(json.dumps(params), encoding="utf-8")
    (tmp_path / "spell.json").unlink()
    loaded = BM25Search.load(tmp_path)
    assert not loaded.typo_tolerance
    np.testing.assert_array_equal(loaded.score("red dress"), typo_index.score("red dress"))


@pytest.mark.parametrize("query", ["red dresss", "lenovo 笔记本电脑", "jeans levi", "", "zzz"])
def test_field_scores_are_the_unweighted_parts_of_score(typo_index: BM25Search, query: str) -> None:
    parts = typo_index.field_scores(query)
    assert list(parts) == typo_index.indexed_fields == ["title", "brand", "category"]
    for values in parts.values():
        assert values.shape == (6,)
        assert values.dtype == np.float32
    weighted = sum(typo_index.field_weights[f] * parts[f] for f in parts)
    np.testing.assert_allclose(typo_index.score(query), weighted, rtol=1e-6, atol=1e-7)


def test_field_scores_match_a_single_field_index() -> None:
    alone = BM25Search(field_weights={"brand": 1.0})
    alone.fit(TYPO_CATALOG)
    combined = BM25Search(field_weights={"title": 3.0, "brand": 0.5})
    combined.fit(TYPO_CATALOG)
    np.testing.assert_array_equal(
        combined.field_scores("lenovo laptop")["brand"], alone.score("lenovo laptop")
    )
