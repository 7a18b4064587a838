"""Content recommender: TF-IDF cosine against a numpy oracle, and cold-item answers."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from shelfwise.errors import (
    ArtifactError,
    ConfigError,
    DataError,
    EmptyDataError,
    NotReadyError,
    UnknownItemError,
)
from shelfwise.retrieval import SimilarItems, load_recommender, top_k_unseen
from shelfwise.retrieval.base import TextRecommender
from shelfwise.retrieval.content import ContentRecommender, neighbour_similarity
from shelfwise.text.tokenize import tokenize

# A tiny mixed catalog. Item 1 (black Lenovo laptop) never appears in the events.
CATALOG: dict[str, list[str | None]] = {
    "title": [
        "联想 笔记本电脑 银色",
        "联想 笔记本电脑 黑色",
        "蓝牙 耳机 白色",
        "Nike running shoes",
        "Adidas running shoes",
        None,  # item 5: no text at all
    ],
    "brand": ["Lenovo", "Lenovo", None, "Nike", "Adidas", None],
    "category": ["电脑", "电脑", "耳机", "shoes", "shoes", ""],
}
N_ITEMS = 6
COLD_ITEM = 1


def train_without_cold_item() -> sp.csr_matrix:
    """Three users; nobody touched item 1 (cold) or item 5 (no text)."""
    dense = np.zeros((3, N_ITEMS), dtype=np.float32)
    dense[0, [0, 2]] = 1.0
    dense[1, [2, 3]] = [2.0, 1.0]
    dense[2, [3, 4]] = 1.0
    return sp.csr_matrix(dense)


def fitted(neighbours: int = 50) -> ContentRecommender:
    model = ContentRecommender(neighbours=neighbours)
    model.fit_text(CATALOG)
    model.fit(train_without_cold_item())
    return model


def tfidf_cosine_oracle(documents: list[str]) -> np.ndarray:
    """Brute force in float64: sublinear tf, smoothed idf, unit rows, all pairs dotted.

    tf(t, d) = 1 + ln(count), idf(t) = ln((1 + n) / (1 + df(t))) + 1 (scikit-learn's
    smooth_idf), row vectors L2-normalised, cosine = V Vᵀ with the diagonal zeroed.
    """
    counts = [Counter(tokenize(document)) for document in documents]
    vocabulary = sorted(set().union(*counts))
    n = len(documents)
    document_frequency = {term: sum(term in c for c in counts) for term in vocabulary}
    vectors = np.zeros((n, len(vocabulary)))
    for row, counter in enumerate(counts):
        for column, term in enumerate(vocabulary):
            if counter[term]:
                idf = math.log((1 + n) / (1 + document_frequency[term])) + 1
                vectors[row, column] = (1 + math.log(counter[term])) * idf
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    cosine = vectors @ vectors.T
    np.fill_diagonal(cosine, 0.0)
    return np.asarray(cosine)


def test_documents_join_fields_and_repeat_the_title() -> None:
    documents = ContentRecommender().documents(CATALOG)
    assert documents[0] == "联想 笔记本电脑 银色\n联想 笔记本电脑 银色\nLenovo\n电脑"
    assert documents[2] == "蓝牙 耳机 白色\n蓝牙 耳机 白色\n耳机"
    assert documents[5] == ""  # None and "" are no text
    once = ContentRecommender(title_weight=1, fields=("brand", "title")).documents(CATALOG)
    assert once[3] == "Nike\nNike running shoes"  # `fields` order, title once


def test_similarity_equals_brute_force_cosine() -> None:
    model = fitted(neighbours=50)  # more than the catalog: nothing truncated
    assert model.similarity is not None
    oracle = tfidf_cosine_oracle(model.documents(CATALOG))
    similarity = model.similarity.toarray()
    np.testing.assert_allclose(similarity, oracle, atol=1e-6)
    np.testing.assert_allclose(similarity, similarity.T, atol=1e-6)
    assert similarity[0, 1] > 0.5  # the two Lenovo laptops share most of their text
    assert similarity[3, 4] > 0.1  # two pairs of running shoes
    assert similarity[0, 3] == 0.0  # nothing in common: not stored
    assert model.similarity.nnz == int((oracle > 0).sum())


@pytest.mark.parametrize("neighbours", [1, 2, 3])
def test_each_row_keeps_its_top_neighbours(neighbours: int) -> None:
    model = fitted(neighbours)
    assert model.similarity is not None
    oracle = tfidf_cosine_oracle(model.documents(CATALOG))
    for item in range(N_ITEMS):
        positive = np.flatnonzero(oracle[item] > 0)
        expected = positive[np.lexsort((positive, -oracle[item, positive]))][:neighbours]
        row = model.similarity[item]
        assert sorted(row.indices.tolist()) == sorted(expected.tolist())
        np.testing.assert_allclose(row.toarray()[0, expected], oracle[item, expected], atol=1e-6)


def test_cold_item_is_recommended_from_a_textually_similar_history() -> None:
    model = fitted()
    assert model.similarity is not None
    # The user bought the silver Lenovo laptop; the black one has no events at all.
    history = sp.csr_matrix(np.array([[1.0, 0, 0, 0, 0, 0]], dtype=np.float32))
    scores = model.score(history)
    ranked = top_k_unseen(scores, 3, seen=history)[0]
    assert ranked[0, 0] == COLD_ITEM
    assert np.flatnonzero(scores[0]).tolist() == [COLD_ITEM]  # no other item shares a token
    assert scores[0, COLD_ITEM] == pytest.approx(model.similarity[COLD_ITEM, 0])


def test_score_is_history_times_similarity_transposed() -> None:
    model = fitted(neighbours=1)  # asymmetric S: each row keeps one neighbour
    assert model.similarity is not None
    histories = train_without_cold_item()
    expected = (histories @ model.similarity.T).toarray()
    np.testing.assert_allclose(model.score(histories), expected, rtol=1e-6)


def test_items_without_text_have_no_neighbours_and_score_zero() -> None:
    model = fitted()
    assert model.similarity is not None
    assert model.similarity[5].nnz == 0
    assert model.similarity[:, 5].nnz == 0
    assert (model.score(train_without_cold_item())[:, 5] == 0).all()
    items, scores = model.similar(5, k=3)
    assert items.size == 0
    assert scores.size == 0


def test_similar_covers_cold_items() -> None:
    model = fitted()
    assert isinstance(model, SimilarItems)
    items, scores = model.similar(COLD_ITEM, k=5)
    assert items.tolist() == [0]  # the silver twin; the item itself is excluded
    assert scores[0] > 0.5
    items, scores = model.similar(3, k=5)
    assert items.tolist() == [4]
    assert items.dtype == np.int64
    assert scores.dtype == np.float32
    with pytest.raises(UnknownItemError, match="outside"):
        model.similar(N_ITEMS, k=1)
    assert model.similar(0, k=0)[0].size == 0


def test_ties_at_the_cut_go_to_the_lower_item_index() -> None:
    # Items 1, 2 and 3 have the same text, so row 0 has three equal similarities.
    texts: dict[str, list[str | None]] = {"title": ["red dress", "red", "red", "red"]}
    model = ContentRecommender.from_texts(texts, neighbours=2)
    model.fit(sp.csr_matrix(np.ones((1, 4), dtype=np.float32)))
    assert model.similar(0, k=5)[0].tolist() == [1, 2]
    assert model.similar(2, k=5)[0].tolist() == [1, 3]  # 1 and 3 tie at 1.0, 0 is lower


def test_blocks_and_dense_vectors_give_the_same_similarity() -> None:
    model = ContentRecommender()
    vectors = model.vectors(CATALOG)
    assert sp.issparse(vectors)
    whole = neighbour_similarity(vectors, 2)
    one_row_at_a_time = neighbour_similarity(vectors, 2, max_block_cells=1)
    dense = neighbour_similarity(sp.csr_matrix(vectors).toarray(), 2, max_block_cells=13)
    for other in (one_row_at_a_time, dense):
        np.testing.assert_array_equal(other.indptr, whole.indptr)
        np.testing.assert_array_equal(other.indices, whole.indices)
        np.testing.assert_allclose(other.data, whole.data, rtol=1e-6)


def test_save_load_round_trip(tmp_path: Path) -> None:
    model = ContentRecommender(neighbours=2, max_features=None, title_weight=3)
    model.fit_text(CATALOG)
    model.fit(train_without_cold_item())
    model.save(tmp_path / "content")
    loaded = load_recommender("content", tmp_path / "content")
    assert isinstance(loaded, ContentRecommender)
    assert (loaded.fields, loaded.neighbours, loaded.max_features, loaded.title_weight) == (
        model.fields,
        2,
        None,
        3,
    )
    histories = train_without_cold_item()
    np.testing.assert_array_equal(loaded.score(histories), model.score(histories))
    for item in range(N_ITEMS):
        for got, want in zip(loaded.similar(item, 3), model.similar(item, 3), strict=True):
            np.testing.assert_array_equal(got, want)


def test_load_rejects_a_damaged_folder(tmp_path: Path) -> None:
    model = fitted()
    model.save(tmp_path)
    (tmp_path / "similarity.npz").unlink()
    with pytest.raises(ArtifactError, match="missing"):
        ContentRecommender.load(tmp_path)


def test_fit_needs_fit_text_first_and_the_same_items() -> None:
    assert isinstance(ContentRecommender(), TextRecommender)
    with pytest.raises(NotReadyError, match="fit_text"):
        ContentRecommender().fit(train_without_cold_item())
    model = ContentRecommender.from_texts(CATALOG)
    with pytest.raises(NotReadyError, match="not fitted"):
        model.score(train_without_cold_item())  # fit_text alone is not enough
    with pytest.raises(DataError, match="7 item columns but the texts describe 6"):
        model.fit(sp.csr_matrix(np.ones((2, 7), dtype=np.float32)))
    model.fit(train_without_cold_item())
    model.fit_text({"title": ["a b", "b c"]})  # new text: fit must check again
    with pytest.raises(NotReadyError, match="not fitted"):
        model.similar(0, 1)


def test_text_errors() -> None:
    model = ContentRecommender()
    with pytest.raises(DataError, match="none of"):
        model.fit_text({"name": ["a", "b"]})
    with pytest.raises(DataError, match="different lengths"):
        model.fit_text({"title": ["a", "b"], "brand": ["x"]})
    with pytest.raises(EmptyDataError, match="no item text has a single token"):
        model.fit_text({"title": [None, "", "!!"]})
    with pytest.raises(EmptyDataError, match="no items"):
        model.fit_text({"title": []})


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"neighbours": 0}, "neighbours"),
        ({"max_features": 0}, "max_features"),
        ({"title_weight": 0}, "title_weight"),
        ({"fields": ()}, "fields"),
        ({"fields": "title"}, "fields"),
    ],
)
def test_config_errors(params: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ContentRecommender(**params)  # type: ignore[arg-type]


@pytest.mark.parametrize("neighbours", [1, 3, 5, 40])
def test_neighbour_selection_with_many_ties_matches_a_sorting_oracle(neighbours: int) -> None:
    # Small integer vectors: every dot product is exact, and most rows have ties at the cut.
    rng = np.random.default_rng(neighbours)
    vectors = rng.integers(0, 3, size=(40, 4)).astype(np.float32)
    vectors[rng.random(40) < 0.2] = 0.0  # some items without text
    products = vectors.astype(np.float64) @ vectors.T.astype(np.float64)
    np.fill_diagonal(products, 0.0)
    for block_cells in (40 * 7, 10**6):
        similarity = neighbour_similarity(
            sp.csr_matrix(vectors), neighbours, max_block_cells=block_cells
        )
        for item in range(40):
            positive = np.flatnonzero(products[item] > 0)
            order = np.lexsort((positive, -products[item, positive]))
            expected = np.sort(positive[order][:neighbours])
            row = similarity[item]
            assert row.indices.tolist() == expected.tolist()
            np.testing.assert_array_equal(row.data, products[item, expected])
