"""FAISS indexes against the numpy oracle: exactness, recall, filters, persistence."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from shelfwise.errors import ArtifactError, ConfigError, DataError
from shelfwise.retrieval.ann import (
    INDEX_FILE,
    ANNParams,
    VectorIndex,
    exact_search,
    recall_at_k,
    resolve_kind,
)


def unit_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def clustered_vectors(n: int, dim: int, clusters: int, seed: int) -> np.ndarray:
    """Unit vectors around `clusters` centres: structured like text embeddings."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    vectors = centres[rng.integers(clusters, size=n)] + 0.4 * rng.standard_normal((n, dim))
    vectors = vectors.astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def oracle(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Top-k rows by a stable argsort of the full score matrix."""
    return np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :k]


VECTORS = unit_vectors(5000, 32, seed=1)
QUERIES = unit_vectors(100, 32, seed=2)


@pytest.fixture(scope="module")
def hnsw() -> VectorIndex:
    return VectorIndex.build(VECTORS, "hnsw")


def test_exact_search_equals_the_argsort_oracle() -> None:
    ids, scores = exact_search(VECTORS, QUERIES, 10)
    np.testing.assert_array_equal(ids, oracle(VECTORS, QUERIES, 10))
    np.testing.assert_allclose(scores, np.take_along_axis(QUERIES @ VECTORS.T, ids, 1), rtol=1e-5)


def test_exact_search_breaks_ties_by_lower_row() -> None:
    vectors = np.array([[1, 0], [0, 1], [1, 0], [1, 0]], dtype=np.float32)
    ids, _ = exact_search(vectors, np.array([[1, 0]], dtype=np.float32), 3)
    assert ids.tolist() == [[0, 2, 3]]


def test_flat_index_equals_the_oracle() -> None:
    index = VectorIndex.build(VECTORS, "exact")
    assert index.kind == "exact"
    ids, scores = index.search(QUERIES, 10)
    np.testing.assert_array_equal(ids, oracle(VECTORS, QUERIES, 10))
    np.testing.assert_allclose(scores, exact_search(VECTORS, QUERIES, 10)[1], rtol=1e-5)


def test_hnsw_recall_at_10_is_high(hnsw: VectorIndex) -> None:
    assert hnsw.kind == "hnsw"
    ids, scores = hnsw.search(QUERIES, 10)
    exact_ids, _ = exact_search(VECTORS, QUERIES, 10)
    assert recall_at_k(ids, exact_ids, 10) >= 0.9
    # whatever rows it finds, the scores are their exact dot products, best first
    np.testing.assert_allclose(scores, np.take_along_axis(QUERIES @ VECTORS.T, ids, 1), rtol=1e-5)
    assert (np.diff(scores, axis=1) <= 0).all()


def test_ivfpq_recall_at_10_on_clustered_vectors() -> None:
    vectors = clustered_vectors(10_000, 32, clusters=50, seed=3)
    queries = clustered_vectors(50, 32, clusters=50, seed=3)  # same centres
    index = VectorIndex.build(vectors, "ivfpq")  # 8 bytes per 32-d vector
    assert index.kind == "ivfpq"
    ids, scores = index.search(queries, 10)
    assert recall_at_k(ids, exact_search(vectors, queries, 10)[0], 10) >= 0.8
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ vectors.T, ids, 1), rtol=1e-5)
    assert index.memory_bytes() < vectors.nbytes / 2  # PQ codes, not float vectors


def test_auto_is_exact_up_to_the_threshold_then_hnsw() -> None:
    assert resolve_kind("auto", 100, exact_max_items=100) == "exact"
    assert resolve_kind("auto", 101, exact_max_items=100) == "hnsw"
    assert resolve_kind("hnsw", 10, exact_max_items=100) == "hnsw"


def test_small_ivfpq_falls_back_to_exact(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert resolve_kind("ivfpq", 500, exact_max_items=100) == "exact"
    assert "searching exactly" in caplog.text


def test_unknown_kind_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"unknown dense index 'annoy'"):
        VectorIndex.build(VECTORS, "annoy")


@pytest.mark.parametrize("share", [0.01, 0.5])
def test_filtered_search_is_exact_for_small_masks(hnsw: VectorIndex, share: float) -> None:
    allowed = np.random.default_rng(4).random(len(VECTORS)) < share
    ids, scores = hnsw.search(QUERIES, 10, allowed_mask=allowed)
    expected_ids, expected_scores = exact_search(VECTORS, QUERIES, 10, allowed)
    np.testing.assert_array_equal(ids, expected_ids)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5)


def test_filtered_graph_search_returns_only_allowed_rows() -> None:
    # thresholds low enough that a half-open mask goes through FAISS' ID selector
    params = ANNParams(filter_exact_max_items=100, filter_exact_share=0.1)
    index = VectorIndex.build(VECTORS, "hnsw", params=params)
    allowed = np.random.default_rng(5).random(len(VECTORS)) < 0.5
    ids, _ = index.search(QUERIES, 10, allowed_mask=allowed)
    assert (ids >= 0).all()
    assert allowed[ids].all()
    assert recall_at_k(ids, exact_search(VECTORS, QUERIES, 10, allowed)[0], 10) >= 0.9


def test_results_are_padded_when_few_rows_qualify(hnsw: VectorIndex) -> None:
    allowed = np.zeros(len(VECTORS), dtype=bool)
    allowed[[3, 7]] = True
    ids, scores = hnsw.search(QUERIES[:2], 4, allowed_mask=allowed)
    assert ids.shape == (2, 4)
    assert set(ids[:, :2].ravel().tolist()) == {3, 7}
    assert (ids[:, 2:] == -1).all()
    assert np.isneginf(scores[:, 2:]).all()
    nothing, _ = hnsw.search(QUERIES[:2], 4, allowed_mask=np.zeros(len(VECTORS), bool))
    assert (nothing == -1).all()
    small = VectorIndex.build(VECTORS[:3], "exact")
    assert small.search(QUERIES[:1], 5)[0].tolist()[0][3:] == [-1, -1]


def test_bad_shapes_are_data_errors(hnsw: VectorIndex) -> None:
    with pytest.raises(DataError, match=r"queries must be \(n, 32\)"):
        hnsw.search(np.zeros((2, 16), np.float32), 3)
    with pytest.raises(DataError, match=r"allowed_mask must have shape \(5000,\)"):
        hnsw.search(QUERIES, 3, allowed_mask=np.ones(10, bool))


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_save_and_load_give_the_same_answers(tmp_path: Path, kind: str) -> None:
    index = VectorIndex.build(VECTORS[:2000], kind)
    index.save(tmp_path)
    assert (tmp_path / INDEX_FILE).is_file()
    loaded = VectorIndex.load(tmp_path, VECTORS[:2000])
    assert loaded.kind == kind
    for a, b in zip(index.search(QUERIES, 10), loaded.search(QUERIES, 10), strict=True):
        np.testing.assert_array_equal(a, b)


def test_load_checks_the_vectors_and_files(tmp_path: Path) -> None:
    VectorIndex.build(VECTORS[:100], "exact").save(tmp_path)
    with pytest.raises(ArtifactError, match="holds 100 vectors of dim 32, but 99"):
        VectorIndex.load(tmp_path, VECTORS[:99])
    (tmp_path / INDEX_FILE).unlink()
    with pytest.raises(ArtifactError, match="index.faiss is missing"):
        VectorIndex.load(tmp_path, VECTORS[:100])


def test_recall_at_k_by_hand() -> None:
    approx = np.array([[1, 2, 3], [5, -1, -1]])
    exact = np.array([[1, 2, 4], [5, 6, -1]])
    # query 1: {1, 2} of {1, 2, 4}; query 2: {5} of {5, 6}
    assert recall_at_k(approx, exact, 3) == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert recall_at_k(approx, exact, 1) == 1.0
    with pytest.raises(DataError, match="k must be >= 1"):
        recall_at_k(approx, exact, 0)


def test_a_mask_allowing_every_row_searches_the_index(
    hnsw: VectorIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    unfiltered = hnsw.search(QUERIES, 10)

    def no_brute_force(*args: object, **kwargs: object) -> None:
        raise AssertionError("a full mask must not fall back to exact search")

    monkeypatch.setattr("shelfwise.retrieval.ann.exact_search", no_brute_force)
    ids, scores = hnsw.search(QUERIES, 10, allowed_mask=np.ones(len(VECTORS), dtype=np.bool_))
    np.testing.assert_array_equal(ids, unfiltered[0])
    np.testing.assert_allclose(scores, unfiltered[1])
