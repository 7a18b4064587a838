"""RP3beta against a dense numpy rewrite of Dacrema et al.'s reference implementation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from shelfwise.errors import ArtifactError, ConfigError
from shelfwise.retrieval import rp3beta
from shelfwise.retrieval.item_knn import ItemKNNRecommender
from shelfwise.retrieval.rp3beta import RP3betaRecommender
from shelfwise.retrieval.sparse import keep_top_per_row


def random_train(seed: int, n_users: int = 25, n_items: int = 9) -> sp.csr_matrix:
    """Random weights (no ties among similarities); item 8 never interacted with."""
    rng = np.random.default_rng(seed)
    dense = rng.uniform(0.5, 4.0, size=(n_users, n_items)) * (rng.random((n_users, n_items)) < 0.4)
    dense[:, -1] = 0.0
    return sp.csr_matrix(dense.astype(np.float32))


def rp3beta_oracle(
    dense: np.ndarray, alpha: float, beta: float, neighbours: int, normalize: bool
) -> np.ndarray:
    """Dense, loop-free rewrite of RP3betaRecommender.fit from Dacrema et al. (2019)."""
    row_sums = dense.sum(axis=1, keepdims=True)
    p_ui = np.divide(dense, row_sums, out=np.zeros_like(dense), where=row_sums > 0) ** alpha
    binary = (dense.T > 0).astype(np.float64)
    popularity = binary.sum(axis=1)
    p_iu = np.divide(
        binary, popularity[:, None], out=np.zeros_like(binary), where=popularity[:, None] > 0
    )
    p_iu **= alpha
    degree = np.zeros_like(popularity)
    degree[popularity > 0] = popularity[popularity > 0] ** -beta
    full = (p_iu @ p_ui) * degree[None, :]
    np.fill_diagonal(full, 0.0)
    kept = np.zeros_like(full)
    for row in range(full.shape[0]):
        best = np.argsort(-full[row])[:neighbours]
        best = best[full[row, best] > 0]
        kept[row, best] = full[row, best]
    if normalize:
        sums = kept.sum(axis=1, keepdims=True)
        kept = np.divide(kept, sums, out=np.zeros_like(kept), where=sums > 0)
    return kept


@pytest.mark.parametrize(
    ("alpha", "beta", "neighbours", "normalize"),
    [
        (1.0, 0.0, 100, False),
        (1.0, 0.6, 100, True),
        (0.7, 0.5, 3, False),
        (1.3, 0.9, 4, True),
    ],
)
def test_similarity_equals_reference(
    alpha: float, beta: float, neighbours: int, normalize: bool
) -> None:
    train = random_train(seed=int(alpha * 10 + beta * 100 + neighbours))
    model = RP3betaRecommender(alpha, beta, neighbours, normalize=normalize)
    model.fit(train)
    assert model.similarity is not None
    oracle = rp3beta_oracle(train.toarray().astype(np.float64), alpha, beta, neighbours, normalize)
    np.testing.assert_allclose(model.similarity.toarray(), oracle, rtol=1e-5, atol=1e-7)
    assert np.all(model.similarity.diagonal() == 0.0)
    assert np.all(model.similarity.getnnz(axis=1) <= neighbours)
    assert model.similarity[8].nnz == 0  # never interacted with: nothing to walk to
    assert np.all(model.similarity[:, 8].toarray() == 0.0)


def test_blocks_give_the_same_similarity(monkeypatch: pytest.MonkeyPatch) -> None:
    train = random_train(seed=11)
    whole = RP3betaRecommender(neighbours=4)
    whole.fit(train)
    monkeypatch.setattr(rp3beta, "_BLOCK_VALUES", 20)  # 2 rows per block of 9 items
    blocked = RP3betaRecommender(neighbours=4)
    blocked.fit(train)
    assert whole.similarity is not None
    assert blocked.similarity is not None
    np.testing.assert_array_equal(whole.similarity.toarray(), blocked.similarity.toarray())


def test_score_is_history_times_similarity() -> None:
    train = random_train(seed=12)
    model = RP3betaRecommender(neighbours=5)
    model.fit(train)
    assert model.similarity is not None
    histories = train[:6]
    expected = histories.toarray() @ model.similarity.toarray()
    np.testing.assert_allclose(model.score(histories), expected, rtol=1e-6)


def test_load_keeps_parameters(tmp_path: Path) -> None:
    model = RP3betaRecommender(alpha=0.8, beta=0.3, neighbours=7, normalize=False)
    model.fit(random_train(seed=13))
    model.save(tmp_path)
    loaded = RP3betaRecommender.load(tmp_path)
    assert (loaded.alpha, loaded.beta, loaded.neighbours, loaded.normalize) == (
        0.8,
        0.3,
        7,
        False,
    )


def test_load_refuses_another_models_folder(tmp_path: Path) -> None:
    other = ItemKNNRecommender(neighbours=3)
    other.fit(random_train(seed=14))
    other.save(tmp_path)
    with pytest.raises(ArtifactError, match="'item_knn' model"):
        RP3betaRecommender.load(tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"alpha": 0.0}, "alpha"), ({"beta": -0.1}, "beta"), ({"neighbours": 0}, "neighbours")],
)
def test_invalid_parameters(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RP3betaRecommender(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(5))
def test_keep_top_per_row_matches_a_sort_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    dense = rng.integers(-1, 4, size=(7, 11)).astype(np.float32)  # many ties, some < 0
    dense *= rng.random(dense.shape) < 0.7
    k = int(rng.integers(1, 6))
    kept = keep_top_per_row(sp.csr_matrix(dense), k)
    expected = np.zeros_like(dense)
    for row in range(dense.shape[0]):
        order = np.lexsort((np.arange(11), -dense[row]))  # value desc, then column asc
        columns = [c for c in order if dense[row, c] > 0][:k]
        expected[row, columns] = dense[row, columns]
    np.testing.assert_array_equal(kept.toarray(), expected)
    assert kept.has_sorted_indices


def test_keep_top_per_row_with_rows_of_very_different_lengths() -> None:
    # rows from 1 to 1,500 stored entries: several length classes in one matrix
    rng = np.random.default_rng(11)
    lengths = np.unique(np.geomspace(1, 1500, 40).astype(int))
    dense = np.zeros((lengths.size, 1600), dtype=np.float32)
    for row, length in enumerate(lengths):
        columns = rng.choice(1600, size=length, replace=False)
        dense[row, columns] = rng.integers(1, 6, size=length)  # ties everywhere
    kept = keep_top_per_row(sp.csr_matrix(dense), 20)
    expected = np.zeros_like(dense)
    for row in range(dense.shape[0]):
        order = np.lexsort((np.arange(1600), -dense[row]))
        columns = [c for c in order if dense[row, c] > 0][:20]
        expected[row, columns] = dense[row, columns]
    np.testing.assert_array_equal(kept.toarray(), expected)
