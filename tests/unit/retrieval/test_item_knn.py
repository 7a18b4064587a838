"""Item-kNN against an exact brute-force cosine oracle, and its similar-items view."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from shelfwise.errors import ArtifactError, ConfigError, UnknownItemError
from shelfwise.retrieval import SimilarItems
from shelfwise.retrieval.item_knn import ItemKNNRecommender
from shelfwise.retrieval.popularity import PopularityRecommender


def random_train(seed: int, n_users: int = 30, n_items: int = 12) -> sp.csr_matrix:
    """Random weights, so cosine values have no ties; item 11 never interacted with."""
    rng = np.random.default_rng(seed)
    dense = rng.uniform(0.5, 5.0, size=(n_users, n_items)) * (rng.random((n_users, n_items)) < 0.3)
    dense[:, -1] = 0.0
    return sp.csr_matrix(dense.astype(np.float32))


def cosine_oracle(train: sp.csr_matrix) -> np.ndarray:
    """Exact item-item cosine: columns of the user x item matrix, normalised, dotted."""
    dense = train.toarray().astype(np.float64)
    norms = np.linalg.norm(dense, axis=0)
    normalised = np.divide(dense, norms, out=np.zeros_like(dense), where=norms > 0)
    return np.asarray(normalised.T @ normalised, dtype=np.float64)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_full_neighbourhood_equals_exact_cosine(seed: int) -> None:
    train = random_train(seed)
    model = ItemKNNRecommender(neighbours=100)  # more than n_items: nothing truncated
    model.fit(train)
    assert model.similarity is not None
    similarity = model.similarity.toarray()
    oracle = cosine_oracle(train)
    assert similarity.shape == (12, 12)  # items x items: implicit took users x items
    np.testing.assert_allclose(similarity, oracle, atol=1e-6)
    np.testing.assert_allclose(similarity, similarity.T, atol=1e-6)


@pytest.mark.parametrize("neighbours", [1, 3, 5])
def test_each_row_keeps_its_top_neighbours(neighbours: int) -> None:
    train = random_train(seed=3)
    model = ItemKNNRecommender(neighbours=neighbours)
    model.fit(train)
    assert model.similarity is not None
    oracle = cosine_oracle(train)
    for item in range(oracle.shape[0]):
        row = model.similarity[item]
        positive = np.flatnonzero(oracle[item] > 0)
        expected = positive[np.argsort(-oracle[item, positive])][:neighbours]
        assert set(row.indices.tolist()) == set(expected.tolist())
        np.testing.assert_allclose(
            row.toarray().ravel()[expected], oracle[item, expected], atol=1e-6
        )


def test_score_uses_the_candidates_neighbourhood() -> None:
    # score(u, j) = sum over j's own top-K neighbours i of history[u, i] * sim(j, i):
    # history @ S transposed (RecBole's ItemKNN semantics), not history @ S.
    train = random_train(seed=4)
    model = ItemKNNRecommender(neighbours=4)
    model.fit(train)
    assert model.similarity is not None
    histories = train[:5]
    expected = histories.toarray() @ model.similarity.toarray().T
    np.testing.assert_allclose(model.score(histories), expected, rtol=1e-5)


def test_similar_excludes_self_and_is_sorted() -> None:
    model = ItemKNNRecommender(neighbours=100)
    train = random_train(seed=5)
    model.fit(train)
    assert isinstance(model, SimilarItems)
    oracle = cosine_oracle(train)
    items, scores = model.similar(2, k=4)
    assert 2 not in items.tolist()
    assert items.dtype == np.int64
    assert scores.dtype == np.float32
    assert list(scores) == sorted(scores, reverse=True)
    others = np.array([i for i in np.argsort(-oracle[2]) if i != 2 and oracle[2, i] > 0])
    assert items.tolist() == others[:4].tolist()


def test_similar_returns_fewer_when_few_neighbours() -> None:
    model = ItemKNNRecommender(neighbours=2)  # self + one other per row
    model.fit(random_train(seed=6))
    items, scores = model.similar(0, k=10)
    assert items.size == scores.size == 1
    never_seen = model.similar(11, k=10)  # item 11 has no interactions at all
    assert never_seen[0].size == 0
    assert model.similar(0, k=0)[0].size == 0


def test_similar_breaks_ties_by_lower_index() -> None:
    # Items 1, 2 and 3 are identical columns: all three have cosine 1 with each other.
    train = sp.csr_matrix(np.array([[1, 1, 1, 1], [0, 1, 1, 1], [1, 0, 0, 0]], dtype=np.float32))
    model = ItemKNNRecommender(neighbours=10)
    model.fit(train)
    assert model.similar(2, k=3)[0].tolist() == [1, 3, 0]


def test_similar_unknown_item() -> None:
    model = ItemKNNRecommender(neighbours=3)
    model.fit(random_train(seed=7))
    with pytest.raises(UnknownItemError, match="outside"):
        model.similar(12, k=3)
    with pytest.raises(UnknownItemError, match="outside"):
        model.similar(-1, k=3)


def test_neighbours_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="neighbours"):
        ItemKNNRecommender(neighbours=0)


def test_load_keeps_parameters(tmp_path: Path) -> None:
    model = ItemKNNRecommender(neighbours=7)
    model.fit(random_train(seed=8))
    model.save(tmp_path)
    loaded = ItemKNNRecommender.load(tmp_path)
    assert loaded.neighbours == 7
    assert loaded.n_items == 12
    assert loaded.similar(3, 5)[0].tolist() == model.similar(3, 5)[0].tolist()


def test_load_refuses_another_models_folder(tmp_path: Path) -> None:
    popular = PopularityRecommender()
    popular.fit(random_train(seed=9))
    popular.save(tmp_path)
    with pytest.raises(ArtifactError, match="'popularity' model"):
        ItemKNNRecommender.load(tmp_path)
    with pytest.raises(ArtifactError, match="missing"):
        ItemKNNRecommender.load(tmp_path / "nowhere")


def test_loading_and_scoring_do_not_import_implicit(tmp_path: Path) -> None:
    model = ItemKNNRecommender(neighbours=3)
    model.fit(random_train(seed=10))
    model.save(tmp_path)
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "import scipy.sparse as sp\n"
        "from shelfwise.retrieval import load_recommender\n"
        f"model = load_recommender('item_knn', Path({str(tmp_path)!r}))\n"
        "model.score(sp.csr_matrix((1, 12)))\n"
        "model.similar(0, 3)\n"
        "assert 'implicit' not in sys.modules, 'implicit was imported'\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)


def bm25_oracle(train: sp.csr_matrix, k1: float, b: float) -> np.ndarray:
    """Item-item dot products of implicit's BM25 weighting (items as documents)."""
    items = train.toarray().T.astype(np.float64)  # items x users
    idf = np.log(items.shape[0]) - np.log1p((items > 0).sum(axis=0))
    lengths = items.sum(axis=1)
    length_norm = (1.0 - b) + b * lengths / lengths.mean()
    weighted = np.zeros_like(items)
    rows, cols = np.nonzero(items)
    value = items[rows, cols]
    weighted[rows, cols] = value * (k1 + 1.0) / (k1 * length_norm[rows] + value) * idf[cols]
    return np.asarray(weighted @ weighted.T)


def tfidf_oracle(train: sp.csr_matrix) -> np.ndarray:
    """Cosine of √weight · idf(user) item vectors (implicit's TFIDFRecommender)."""
    items = train.toarray().T.astype(np.float64)
    idf = np.log(items.shape[0]) - np.log1p((items > 0).sum(axis=0))
    weighted = np.sqrt(items) * idf
    norms = np.linalg.norm(weighted, axis=1, keepdims=True)
    weighted = np.divide(weighted, norms, out=np.zeros_like(weighted), where=norms > 0)
    return np.asarray(weighted @ weighted.T)


@pytest.mark.parametrize(("k1", "b"), [(1.2, 0.75), (0.5, 0.0), (3.0, 1.0)])
def test_bm25_weighting_equals_oracle(k1: float, b: float) -> None:
    train = random_train(seed=20, n_users=60)  # idf > 0: no user saw most items
    model = ItemKNNRecommender(neighbours=100, weighting="bm25", bm25_k1=k1, bm25_b=b)
    model.fit(train)
    assert model.similarity is not None
    np.testing.assert_allclose(model.similarity.toarray(), bm25_oracle(train, k1, b), atol=1e-5)


def test_tfidf_weighting_equals_oracle() -> None:
    train = random_train(seed=21, n_users=60)
    model = ItemKNNRecommender(neighbours=100, weighting="tfidf")
    model.fit(train)
    assert model.similarity is not None
    np.testing.assert_allclose(model.similarity.toarray(), tfidf_oracle(train), atol=1e-5)


def test_weighting_survives_save_and_load(tmp_path: Path) -> None:
    model = ItemKNNRecommender(neighbours=4, weighting="bm25", bm25_k1=0.9, bm25_b=0.4)
    model.fit(random_train(seed=22))
    model.save(tmp_path)
    loaded = ItemKNNRecommender.load(tmp_path)
    assert (loaded.weighting, loaded.bm25_k1, loaded.bm25_b) == ("bm25", 0.9, 0.4)


def test_folders_without_weighting_load_as_cosine(tmp_path: Path) -> None:
    model = ItemKNNRecommender(neighbours=4)
    model.fit(random_train(seed=23))
    model.save(tmp_path)
    params = json.loads((tmp_path / "params.json").read_text())
    for key in ("weighting", "bm25_k1", "bm25_b"):
        del params[key]
    (tmp_path / "params.json").write_text(json.dumps(params))
    assert ItemKNNRecommender.load(tmp_path).weighting == "none"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"weighting": "idf"}, "weighting must be one of none, bm25, tfidf"),
        ({"bm25_k1": -1.0}, "bm25_k1"),
        ({"bm25_b": 1.5}, "bm25_b"),
    ],
)
def test_invalid_weighting_parameters(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ItemKNNRecommender(**kwargs)  # type: ignore[arg-type]
