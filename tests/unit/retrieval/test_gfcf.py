"""GF-CF against its formula written out with numpy's full SVD, on both solver paths."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from shelfwise.errors import ArtifactError, ConfigError
from shelfwise.retrieval.gfcf import GFCFRecommender, top_right_singular_vectors


def random_train(seed: int, n_users: int, n_items: int, density: float = 0.3) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = rng.uniform(0.5, 3.0, size=(n_users, n_items)) * (
        rng.random((n_users, n_items)) < density
    )
    dense[:, -1] = 0.0  # an item nobody touched: zero degree
    return sp.csr_matrix(dense.astype(np.float32))


def gfcf_oracle(dense: np.ndarray, factors: int, alpha: float) -> np.ndarray:
    """Shen et al. (2021): F = R̃ᵀR̃ + alpha D_I^-1/2 V_k V_kᵀ D_I^1/2, R̃ = D_U^-1/2 R D_I^-1/2."""
    user_degrees, item_degrees = dense.sum(axis=1), dense.sum(axis=0)
    with np.errstate(divide="ignore"):
        du = np.where(user_degrees > 0, user_degrees**-0.5, 0.0)
        di = np.where(item_degrees > 0, item_degrees**-0.5, 0.0)
    normalised = du[:, None] * dense * di[None, :]
    _, singular, right_t = np.linalg.svd(normalised)
    k = int(np.sum(singular[:factors] > 1e-6 * singular[0]))
    vectors = right_t[:k].T
    ideal = di[:, None] * (vectors @ vectors.T) * np.sqrt(item_degrees)[None, :]
    return np.asarray(normalised.T @ normalised + alpha * ideal)


@pytest.mark.parametrize(
    ("seed", "shape", "factors", "alpha"),
    [
        (0, (30, 10), 4, 0.3),  # exact path, item-side Gram (10 <= 2·4 + 1)
        (1, (6, 20), 3, 1.0),  # exact path, user-side Gram (6 <= 7)
        (2, (60, 40), 5, 0.5),  # ARPACK path
        (3, (60, 40), 5, 0.0),  # linear filter alone
    ],
)
def test_scores_equal_the_closed_form(
    seed: int, shape: tuple[int, int], factors: int, alpha: float
) -> None:
    train = random_train(seed, *shape)
    model = GFCFRecommender(factors=factors, alpha=alpha)
    model.fit(train)
    oracle = gfcf_oracle(train.toarray().astype(np.float64), factors, alpha)
    histories = train[:7]
    expected = histories.toarray() @ oracle
    np.testing.assert_allclose(model.score(histories), expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(model.score(histories)[:, -1], 0.0)  # zero-degree item


def test_singular_vectors_span_the_top_subspace() -> None:
    train = random_train(4, 50, 30).astype(np.float64)
    dense = train.toarray()
    _, _, right_t = np.linalg.svd(dense)
    for count in (3, 20):  # ARPACK, then the exact path
        vectors = top_right_singular_vectors(sp.csr_matrix(train), count)
        assert vectors.shape == (30, count)
        np.testing.assert_allclose(vectors.T @ vectors, np.eye(count), atol=1e-8)
        expected = right_t[:count].T @ right_t[:count]
        np.testing.assert_allclose(vectors @ vectors.T, expected, atol=1e-6)


def test_zero_singular_directions_are_dropped() -> None:
    rank_one = sp.csr_matrix(np.outer([1.0, 2.0, 0.0, 1.0], [1.0, 1.0, 3.0]))
    vectors = top_right_singular_vectors(rank_one, 3)
    assert vectors.shape == (3, 1)
    np.testing.assert_allclose(np.abs(vectors[:, 0]), np.array([1.0, 1.0, 3.0]) / np.sqrt(11.0))


def test_fit_is_deterministic() -> None:
    train = random_train(5, 80, 50)
    first, second = GFCFRecommender(factors=6), GFCFRecommender(factors=6)
    first.fit(train)
    second.fit(train)
    np.testing.assert_array_equal(first.score(train), second.score(train))


def test_saved_params_and_damaged_folder(tmp_path: Path) -> None:
    model = GFCFRecommender(factors=4, alpha=0.7)
    model.fit(random_train(6, 30, 10))
    model.save(tmp_path)
    params = json.loads((tmp_path / "params.json").read_text())
    assert params["factors"] == 4
    assert params["alpha"] == 0.7
    assert params["n_items"] == 10
    np.save(tmp_path / "singular_vectors.npy", np.zeros((9, 4), dtype=np.float32))
    with pytest.raises(ArtifactError, match="damaged"):
        GFCFRecommender.load(tmp_path)
    (tmp_path / "item_degrees.npy").unlink()
    with pytest.raises(ArtifactError, match="missing"):
        GFCFRecommender.load(tmp_path)


@pytest.mark.parametrize("kwargs", [{"factors": 0}, {"alpha": -0.1}])
def test_bad_parameters_are_config_errors(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        GFCFRecommender(**kwargs)  # type: ignore[arg-type]
