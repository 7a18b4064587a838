"""User-kNN against a brute-force cosine oracle, and its user-count guard."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from shelfwise.errors import ArtifactError, ConfigError
from shelfwise.retrieval import user_knn
from shelfwise.retrieval.user_knn import UserKNNRecommender


def random_matrix(seed: int, n_users: int = 20, n_items: int = 8) -> sp.csr_matrix:
    """Random weights (no ties among cosines); the last user has no interactions."""
    rng = np.random.default_rng(seed)
    dense = rng.uniform(0.5, 4.0, size=(n_users, n_items)) * (rng.random((n_users, n_items)) < 0.4)
    dense[-1] = 0.0
    return sp.csr_matrix(dense.astype(np.float32))


def normalised(dense: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(dense, axis=1, keepdims=True)
    return np.divide(dense, norms, out=np.zeros_like(dense), where=norms > 0)


def brute_force(train: np.ndarray, histories: np.ndarray, neighbours: int) -> np.ndarray:
    users, rows = normalised(train), normalised(histories)
    scores = np.zeros_like(histories)
    for h, row in enumerate(rows):
        similarity = users @ row
        best = np.argsort(-similarity)[:neighbours]
        best = best[similarity[best] > 0]
        scores[h] = similarity[best] @ users[best]
    return scores


@pytest.mark.parametrize("neighbours", [1, 3, 100])
def test_scores_equal_brute_force(neighbours: int) -> None:
    train = random_matrix(seed=neighbours)
    histories = random_matrix(seed=neighbours + 50, n_users=6)
    model = UserKNNRecommender(neighbours=neighbours)
    model.fit(train)
    expected = brute_force(
        train.toarray().astype(np.float64), histories.toarray().astype(np.float64), neighbours
    )
    np.testing.assert_allclose(model.score(histories), expected, rtol=1e-5, atol=1e-7)


def test_blocks_give_the_same_scores(monkeypatch: pytest.MonkeyPatch) -> None:
    train = random_matrix(seed=7)
    histories = random_matrix(seed=8, n_users=9)
    model = UserKNNRecommender(neighbours=4)
    model.fit(train)
    whole = model.score(histories)
    monkeypatch.setattr(user_knn, "_BLOCK_VALUES", 40)  # 2 history rows per block
    np.testing.assert_array_equal(model.score(histories), whole)


def test_stored_rows_are_unit_length() -> None:
    model = UserKNNRecommender()
    model.fit(random_matrix(seed=9))
    assert model.users is not None
    norms = np.sqrt(np.asarray(model.users.multiply(model.users).sum(axis=1)).ravel())
    np.testing.assert_allclose(norms[:-1], 1.0, rtol=1e-6)
    assert norms[-1] == 0.0  # a user without interactions stays empty


def test_refuses_more_users_than_max_users() -> None:
    model = UserKNNRecommender(max_users=19)
    with pytest.raises(ConfigError, match="20 users, more than max_users=19"):
        model.fit(random_matrix(seed=10))
    UserKNNRecommender(max_users=20).fit(random_matrix(seed=10))


def test_load_keeps_parameters(tmp_path: Path) -> None:
    model = UserKNNRecommender(neighbours=5, max_users=1000)
    model.fit(random_matrix(seed=11))
    model.save(tmp_path)
    loaded = UserKNNRecommender.load(tmp_path)
    assert (loaded.neighbours, loaded.max_users) == (5, 1000)


def test_load_refuses_a_damaged_folder(tmp_path: Path) -> None:
    model = UserKNNRecommender()
    model.fit(random_matrix(seed=12))
    model.save(tmp_path)
    (tmp_path / "train_users.npz").unlink()
    with pytest.raises(ArtifactError, match="missing"):
        UserKNNRecommender.load(tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "message"), [({"neighbours": 0}, "neighbours"), ({"max_users": 0}, "max_users")]
)
def test_invalid_parameters(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        UserKNNRecommender(**kwargs)
