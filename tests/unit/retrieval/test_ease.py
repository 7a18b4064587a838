"""EASE against the closed form written out in numpy, and its top-items guard."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from shelfwise.errors import ArtifactError, ConfigError
from shelfwise.retrieval import ease
from shelfwise.retrieval.ease import EASERecommender
from shelfwise.retrieval.popularity import PopularityRecommender


def random_train(seed: int, n_users: int = 30, n_items: int = 10) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = rng.uniform(0.5, 3.0, size=(n_users, n_items)) * (rng.random((n_users, n_items)) < 0.4)
    return sp.csr_matrix(dense.astype(np.float32))


def ease_oracle(dense: np.ndarray, l2: float) -> np.ndarray:
    """Steck (2019): B = I - P diag(1/diag(P)), P = (XᵀX + λI)⁻¹, in float64."""
    gram = dense.T @ dense + l2 * np.eye(dense.shape[1])
    inverse = np.linalg.inv(gram)
    weights = np.eye(dense.shape[1]) - inverse @ np.diag(1.0 / np.diag(inverse))
    return np.asarray(weights)


@pytest.mark.parametrize(("seed", "l2"), [(0, 1.0), (1, 10.0), (2, 250.0)])
def test_weights_equal_the_closed_form(seed: int, l2: float) -> None:
    train = random_train(seed)
    model = EASERecommender(l2=l2)
    model.fit(train)
    assert model.weights is not None
    oracle = ease_oracle(train.toarray().astype(np.float64), l2)
    np.testing.assert_allclose(np.diag(oracle), 0.0, atol=1e-12)  # the constraint holds
    assert np.all(np.diag(model.weights) == 0.0)
    np.testing.assert_allclose(model.weights, oracle, rtol=1e-5, atol=1e-7)
    assert model.variant == "full"


def test_score_is_history_times_weights() -> None:
    train = random_train(3)
    model = EASERecommender(l2=5.0)
    model.fit(train)
    histories = train[:4]
    expected = histories.toarray() @ ease_oracle(train.toarray().astype(np.float64), 5.0)
    np.testing.assert_allclose(model.score(histories), expected, rtol=1e-4, atol=1e-6)


def test_float32_solve_above_the_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ease, "FLOAT64_MAX_ITEMS", 4)  # 10 items: the float32 path
    train = random_train(4)
    model = EASERecommender(l2=10.0)
    model.fit(train)
    assert model.weights is not None
    oracle = ease_oracle(train.toarray().astype(np.float64), 10.0)
    np.testing.assert_allclose(model.weights, oracle, rtol=1e-3, atol=1e-5)


def test_too_many_items_switches_to_top_items_and_says_so(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    train = random_train(5)
    counts = np.diff(train.tocsc().indptr)
    expected_items = np.sort(np.argsort(-counts, kind="stable")[:4])
    model = EASERecommender(l2=2.0, max_dense_items=4)
    with caplog.at_level(logging.WARNING, logger="shelfwise.retrieval.ease"):
        model.fit(train)
    assert "top-items variant" in caplog.text
    assert "GB dense Gram matrix" in caplog.text
    assert "max_dense_items=4" in caplog.text
    assert model.variant == "top-items"
    assert model.items is not None
    np.testing.assert_array_equal(model.items, expected_items)
    # EASE on the kept columns only; every other item scores 0.
    kept = train.toarray()[:, expected_items].astype(np.float64)
    scores = model.score(train)
    np.testing.assert_allclose(
        scores[:, expected_items], kept @ ease_oracle(kept, 2.0), rtol=1e-4, atol=1e-6
    )
    others = np.setdiff1d(np.arange(10), expected_items)
    assert np.all(scores[:, others] == 0.0)
    model.save(tmp_path)
    params = json.loads((tmp_path / "params.json").read_text())
    assert params["variant"] == "top-items"
    assert params["fitted_items"] == 4
    loaded = EASERecommender.load(tmp_path)
    assert loaded.variant == "top-items"
    np.testing.assert_array_equal(loaded.score(train), scores)


def test_exact_variant_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="shelfwise.retrieval.ease"):
        EASERecommender(max_dense_items=10).fit(random_train(6))
    assert caplog.text == ""


def test_load_keeps_parameters(tmp_path: Path) -> None:
    model = EASERecommender(l2=42.0, max_dense_items=99)
    model.fit(random_train(7))
    model.save(tmp_path)
    params = json.loads((tmp_path / "params.json").read_text())
    assert params["variant"] == "full"
    loaded = EASERecommender.load(tmp_path)
    assert (loaded.l2, loaded.max_dense_items, loaded.variant) == (42.0, 99, "full")


def test_load_refuses_damaged_or_foreign_folders(tmp_path: Path) -> None:
    popular = PopularityRecommender()
    popular.fit(random_train(8))
    popular.save(tmp_path / "pop")
    with pytest.raises(ArtifactError, match="'popularity' model"):
        EASERecommender.load(tmp_path / "pop")
    model = EASERecommender()
    model.fit(random_train(8))
    model.save(tmp_path / "ease")
    np.save(tmp_path / "ease" / "weights.npy", np.zeros((3, 3), dtype=np.float32))
    with pytest.raises(ArtifactError, match="damaged"):
        EASERecommender.load(tmp_path / "ease")
    (tmp_path / "ease" / "items.npy").unlink()
    with pytest.raises(ArtifactError, match="missing"):
        EASERecommender.load(tmp_path / "ease")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"l2": 0.0}, "l2"), ({"l2": -1.0}, "l2"), ({"max_dense_items": 0}, "max_dense_items")],
)
def test_invalid_parameters(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        EASERecommender(**kwargs)  # type: ignore[arg-type]
