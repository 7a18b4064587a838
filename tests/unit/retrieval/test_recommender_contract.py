"""The contract every recommender passes; each model plugs in through a factory.

Add a model by appending `(name, factory)` to `FACTORIES`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from shelfwise.errors import DataError, EmptyDataError, NotReadyError
from shelfwise.retrieval import Recommender, load_recommender, recommender_class
from shelfwise.retrieval.blend import BlendRecommender
from shelfwise.retrieval.content import ContentRecommender
from shelfwise.retrieval.ease import EASERecommender
from shelfwise.retrieval.factorization import ALSRecommender, BPRRecommender
from shelfwise.retrieval.gfcf import GFCFRecommender
from shelfwise.retrieval.item_knn import ItemKNNRecommender
from shelfwise.retrieval.popularity import PopularityRecommender
from shelfwise.retrieval.rp3beta import RP3betaRecommender
from shelfwise.retrieval.user_knn import UserKNNRecommender

Factory = Callable[[], Recommender]

FACTORIES: list[tuple[str, Factory]] = [
    ("popularity", PopularityRecommender),
    ("item_knn", lambda: ItemKNNRecommender(neighbours=3)),
    ("item_knn_bm25", lambda: ItemKNNRecommender(neighbours=3, weighting="bm25")),
    ("user_knn", lambda: UserKNNRecommender(neighbours=3)),
    ("ease", lambda: EASERecommender(l2=1.0)),
    ("ease_top_items", lambda: EASERecommender(l2=1.0, max_dense_items=4)),
    ("gfcf", lambda: GFCFRecommender(factors=2, alpha=0.5)),  # ARPACK path
    ("gfcf_dense", lambda: GFCFRecommender(factors=3, alpha=0.5)),  # exact eigh path
    ("rp3beta", lambda: RP3betaRecommender(neighbours=3)),
    ("als", lambda: ALSRecommender(factors=4, iterations=3, num_threads=1)),
    ("bpr", lambda: BPRRecommender(factors=4, iterations=5)),
    (
        "content",
        lambda: ContentRecommender.from_texts(
            {"title": [f"tile {i % 2}" for i in range(6)]}, neighbours=3
        ),
    ),
    (
        "blend",
        lambda: BlendRecommender(
            {"popularity": 0.3, "item_knn": 1.0},
            {"popularity": PopularityRecommender(), "item_knn": ItemKNNRecommender(neighbours=3)},
        ),
    ),
]


def checkerboard(n_users: int = 8, n_items: int = 6) -> sp.csr_matrix:
    """User u interacted with item i when u + i is even, weights 1..3 (implicit's fixture)."""
    users, items = np.indices((n_users, n_items))
    mask = (users + items) % 2 == 0
    weights = 1.0 + (users + 2 * items) % 3
    return sp.csr_matrix(np.where(mask, weights, 0.0).astype(np.float32))


@pytest.fixture(params=FACTORIES, ids=[name for name, _ in FACTORIES])
def factory(request: pytest.FixtureRequest) -> Factory:
    _, make = request.param
    return make  # type: ignore[no-any-return]


@pytest.fixture
def fitted(factory: Factory) -> Recommender:
    model = factory()
    model.fit(checkerboard())
    return model


class TestRecommenderContract:
    def test_is_a_registered_recommender(self, fitted: Recommender) -> None:
        assert isinstance(fitted, Recommender)
        assert recommender_class(fitted.name) is type(fitted)

    def test_score_shape_dtype_finite(self, fitted: Recommender) -> None:
        histories = checkerboard()[:3]
        scores = fitted.score(histories)
        assert scores.shape == (3, 6)
        assert scores.dtype == np.float32
        assert np.isfinite(scores).all()

    def test_batch_equals_rows_one_by_one(self, fitted: Recommender) -> None:
        histories = checkerboard()
        batch = fitted.score(histories)
        one_by_one = np.vstack([fitted.score(histories[[u]]) for u in range(histories.shape[0])])
        np.testing.assert_allclose(batch, one_by_one, rtol=1e-6)

    def test_empty_history_scores_finite(self, fitted: Recommender) -> None:
        scores = fitted.score(sp.csr_matrix((2, 6), dtype=np.float32))
        assert scores.shape == (2, 6)
        assert np.isfinite(scores).all()

    def test_empty_batch(self, fitted: Recommender) -> None:
        assert fitted.score(sp.csr_matrix((0, 6), dtype=np.float32)).shape == (0, 6)

    def test_save_load_round_trip(self, fitted: Recommender, tmp_path: Path) -> None:
        fitted.save(tmp_path / "model")
        loaded = load_recommender(fitted.name, tmp_path / "model")
        assert type(loaded) is type(fitted)
        histories = checkerboard()
        np.testing.assert_array_equal(loaded.score(histories), fitted.score(histories))

    def test_saved_folder_holds_no_pickle(self, fitted: Recommender, tmp_path: Path) -> None:
        fitted.save(tmp_path)
        suffixes = {path.suffix for path in tmp_path.rglob("*") if path.is_file()}
        assert suffixes <= {".npy", ".npz", ".json"}
        for path in tmp_path.glob("*.np[yz]"):
            np.load(path, allow_pickle=False)  # raises if an object array was pickled

    def test_fit_does_not_modify_train(self, factory: Factory) -> None:
        train = checkerboard()
        train.data[0] = 0.0  # an explicit zero the model drops on its own copy
        before = (train.data.copy(), train.indices.copy(), train.indptr.copy())
        factory().fit(train)
        for array, saved in zip((train.data, train.indices, train.indptr), before, strict=True):
            np.testing.assert_array_equal(array, saved)

    def test_wrong_item_count_is_a_data_error(self, fitted: Recommender) -> None:
        with pytest.raises(DataError, match="item columns"):
            fitted.score(sp.csr_matrix((1, 7), dtype=np.float32))

    def test_empty_train_is_an_empty_data_error(self, factory: Factory) -> None:
        with pytest.raises(EmptyDataError, match="empty"):
            factory().fit(sp.csr_matrix((4, 5), dtype=np.float32))
        with pytest.raises(EmptyDataError, match="empty"):
            factory().fit(sp.csr_matrix((0, 0), dtype=np.float32))

    def test_negative_weights_are_a_data_error(self, factory: Factory) -> None:
        train = checkerboard()
        train.data[0] = -1.0
        with pytest.raises(DataError, match="negative"):
            factory().fit(train)

    def test_unfitted_model_is_not_ready(self, factory: Factory, tmp_path: Path) -> None:
        model = factory()
        with pytest.raises(NotReadyError, match="not fitted"):
            model.score(checkerboard())
        with pytest.raises(NotReadyError, match="not fitted"):
            model.save(tmp_path)
