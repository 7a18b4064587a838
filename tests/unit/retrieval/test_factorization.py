"""ALS and BPR: the fold-in against its formula and implicit, determinism, loading."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from shelfwise.errors import ArtifactError, ConfigError
from shelfwise.retrieval.als import ALSRecommender
from shelfwise.retrieval.bpr import BPRRecommender
from shelfwise.retrieval.fold_in import _blas_controller, fold_in_least_squares


def random_train(seed: int, n_users: int = 40, n_items: int = 25) -> sp.csr_matrix:
    """Random weights 1..3 on about 30% of the cells; the last user is empty."""
    rng = np.random.default_rng(seed)
    dense = rng.uniform(1.0, 3.0, size=(n_users, n_items)) * (rng.random((n_users, n_items)) < 0.3)
    dense[-1] = 0.0
    return sp.csr_matrix(dense.astype(np.float32))


def hu_et_al_user(row: np.ndarray, items: np.ndarray, regularization: float, alpha: float):  # type: ignore[no-untyped-def]
    """x_u = (Yᵀ C_u Y + λI)⁻¹ Yᵀ C_u p_u with the full diagonal C_u, as in the paper."""
    confidence = 1.0 + alpha * row  # 1 where the user did nothing
    preference = (row > 0).astype(np.float64)
    lhs = items.T @ (confidence[:, None] * items) + regularization * np.eye(items.shape[1])
    return np.linalg.solve(lhs, items.T @ (confidence * preference))


@pytest.mark.parametrize(("regularization", "alpha"), [(0.1, 1.0), (5.0, 0.3), (0.0, 4.0)])
def test_fold_in_equals_the_normal_equations(regularization: float, alpha: float) -> None:
    rng = np.random.default_rng(0)
    items = rng.normal(size=(25, 4)).astype(np.float32)
    histories = random_train(seed=1)[:7]
    users = fold_in_least_squares(histories, items, regularization=regularization, alpha=alpha)
    dense = histories.toarray().astype(np.float64)
    for u in range(6):  # the last row is empty
        expected = hu_et_al_user(dense[u], items.astype(np.float64), regularization, alpha)
        np.testing.assert_allclose(users[u], expected, rtol=1e-7, atol=1e-9)


def test_empty_history_folds_into_zero() -> None:
    items = np.ones((5, 3), dtype=np.float32)
    users = fold_in_least_squares(sp.csr_matrix((2, 5)), items, regularization=1.0, alpha=1.0)
    assert np.all(users == 0.0)


def test_fold_in_solves_on_one_blas_thread_and_restores_the_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads() -> list[int]:
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    seen: list[list[int]] = []
    solve = np.linalg.solve

    def recording_solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        seen.append(blas_threads())
        return solve(a, b)

    monkeypatch.setattr(np.linalg, "solve", recording_solve)
    # The controller is found once per process; BLAS libraries loaded after that (by
    # torch or faiss in other tests) are outside it, so look again for this check.
    _blas_controller.cache_clear()
    items = np.random.default_rng(0).normal(size=(25, 4)).astype(np.float32)
    with threadpool_limits(2, "blas"):
        before = blas_threads()
        fold_in_least_squares(random_train(seed=1), items, regularization=1.0, alpha=1.0)
        assert blas_threads() == before
    assert seen
    assert all(threads == [1] * len(threads) for threads in seen)


def test_als_fold_in_of_train_rows_is_close_to_implicits_user_factors() -> None:
    # Close, not equal: implicit's conjugate-gradient solves are approximate and its
    # last user step ran before the last item step.
    train = random_train(seed=2)
    model = ALSRecommender(factors=4, regularization=0.1, iterations=15, num_threads=1)
    model.fit(train)
    assert model.user_factors is not None
    folded = model.user_vectors(train[:-1])
    fitted = model.user_factors[:-1].astype(np.float64)
    cosine = (folded * fitted).sum(axis=1) / (
        np.linalg.norm(folded, axis=1) * np.linalg.norm(fitted, axis=1)
    )
    assert cosine.min() > 0.99
    relative = np.linalg.norm(folded - fitted, axis=1) / np.linalg.norm(fitted, axis=1)
    assert np.median(relative) < 0.1


def test_als_passes_one_plus_alpha_weight_to_implicit() -> None:
    # The same factorisation as implicit run directly on confidences 1 + alpha * w.
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    train = random_train(seed=3)
    model = ALSRecommender(factors=3, regularization=0.5, alpha=2.0, iterations=4, num_threads=1)
    model.fit(train)
    confidence = train.copy()
    confidence.data = 1.0 + 2.0 * confidence.data
    with threadpool_limits(1, "blas"):
        direct = AlternatingLeastSquares(
            factors=3, regularization=0.5, iterations=4, random_state=42, num_threads=1
        )
        direct.fit(confidence, show_progress=False)
    np.testing.assert_allclose(model.item_factors, direct.item_factors, rtol=1e-6)


@pytest.mark.parametrize(
    "make",
    [
        functools.partial(ALSRecommender, num_threads=1),
        functools.partial(BPRRecommender, num_threads=1),
    ],
)
def test_same_seed_same_model_other_seed_other_model(make) -> None:  # type: ignore[no-untyped-def]
    train = random_train(seed=4)
    first, second = make(factors=4, iterations=5), make(factors=4, iterations=5)
    other = make(factors=4, iterations=5, random_state=7)
    for model in (first, second, other):
        model.fit(train)
    np.testing.assert_array_equal(first.item_factors, second.item_factors)
    assert not np.array_equal(first.item_factors, other.item_factors)


def test_bpr_scores_the_weighted_mean_of_history_items_plus_bias() -> None:
    train = random_train(seed=5)
    model = BPRRecommender(factors=4, iterations=5)
    model.fit(train)
    assert model.item_factors is not None
    assert model.item_biases is not None
    assert model.item_factors.shape == (25, 4)  # implicit's bias column split off
    histories = train[[0, 1, 39]]  # row 39 is empty
    dense = histories.toarray().astype(np.float64)
    items = model.item_factors.astype(np.float64)
    expected = np.zeros((3, 25))
    for u in range(2):
        expected[u] = (dense[u] @ items / dense[u].sum()) @ items.T
    expected += model.item_biases
    np.testing.assert_allclose(model.score(histories), expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(model.score(histories)[2], model.item_biases, rtol=1e-6)


@pytest.mark.parametrize(
    ("make", "keep"),
    [
        (
            lambda: ALSRecommender(8, 0.5, 3.0, 4, 11, num_threads=1),
            ("factors", "regularization", "alpha"),
        ),
        (
            lambda: BPRRecommender(8, 0.05, 0.002, 6, 11),
            ("factors", "learning_rate", "regularization"),
        ),
    ],
)
def test_load_keeps_parameters(make, keep: tuple[str, ...], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model = make()
    model.fit(random_train(seed=6))
    model.save(tmp_path)
    loaded = type(model).load(tmp_path)
    for name in (*keep, "iterations", "random_state", "num_threads"):
        assert getattr(loaded, name) == getattr(model, name)
    assert loaded.user_factors is None  # train users are not saved


def test_load_refuses_a_damaged_folder(tmp_path: Path) -> None:
    model = BPRRecommender(factors=4, iterations=2)
    model.fit(random_train(seed=7))
    model.save(tmp_path)
    np.save(tmp_path / "item_biases.npy", np.zeros(3, dtype=np.float32))
    with pytest.raises(ArtifactError, match="damaged"):
        BPRRecommender.load(tmp_path)
    (tmp_path / "item_factors.npy").unlink()
    with pytest.raises(ArtifactError, match="missing"):
        BPRRecommender.load(tmp_path)
    with pytest.raises(ArtifactError, match="'bpr' model"):
        ALSRecommender.load(tmp_path)


def test_loading_and_scoring_do_not_import_implicit(tmp_path: Path) -> None:
    for model in (
        ALSRecommender(factors=3, iterations=2, num_threads=1),
        BPRRecommender(factors=3, iterations=2),
    ):
        model.fit(random_train(seed=8))
        model.save(tmp_path / model.name)
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "import scipy.sparse as sp\n"
        "from shelfwise.retrieval import load_recommender\n"
        "for name in ('als', 'bpr'):\n"
        f"    model = load_recommender(name, Path({str(tmp_path)!r}) / name)\n"
        "    model.score(sp.csr_matrix((1, 25)))\n"
        "assert 'implicit' not in sys.modules, 'implicit was imported'\n"
        "assert 'threadpoolctl' not in sys.modules, 'threadpoolctl was imported'\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ALSRecommender(factors=0), "factors"),
        (lambda: ALSRecommender(regularization=-1.0), "regularization"),
        (lambda: ALSRecommender(alpha=-1.0), "alpha"),
        (lambda: ALSRecommender(iterations=0), "iterations"),
        (lambda: BPRRecommender(learning_rate=0.0), "learning_rate"),
        (lambda: BPRRecommender(num_threads=-1), "num_threads"),
    ],
)
def test_invalid_parameters(make, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=message):
        make()
