"""The contract every registered recommender and compressed variant passes.

Each model plugs in through a `Case` in `CASES`: a trainable family through an
unfitted model, a compressed kind through a fitted base it is derived from.
`test_every_registered_kind_has_a_case` fails when a name registered in the model
tables (`shelfwise.retrieval.RECOMMENDERS`, `shelfwise.compress.COMPRESSED_RECOMMENDERS`)
or a family the weight encoding supports (`shelfwise.compress.models.FAMILIES`) has no
case here: add one when you register a model.

The data is the checkerboard (user u has item i when u + i is even), 8 users x 6 items,
with each user's items in index order as their time order; models are tiny (few
factors, epochs, neighbours) so the whole suite runs in seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from shelfwise._internal.sequences import Sequences
from shelfwise.compress import (
    COMPRESSED_RECOMMENDERS,
    compressed_class,
    load_recommender,
    recommender_names,
)
from shelfwise.compress.models import FAMILIES
from shelfwise.compress.variants import VariantSpec, build_matrix_variant
from shelfwise.errors import DataError, EmptyDataError, NotReadyError
from shelfwise.retrieval import (
    RECOMMENDERS,
    Recommender,
    SequentialRecommender,
    UserHistories,
    recommend_top_k,
    recommender_class,
)
from shelfwise.retrieval import load_recommender as load_family
from shelfwise.retrieval.als import ALSRecommender
from shelfwise.retrieval.blend import BlendRecommender
from shelfwise.retrieval.bpr import BPRRecommender
from shelfwise.retrieval.buy_again import BuyAgainRecommender
from shelfwise.retrieval.content import ContentRecommender
from shelfwise.retrieval.ease import EASERecommender
from shelfwise.retrieval.gfcf import GFCFRecommender
from shelfwise.retrieval.item_knn import ItemKNNRecommender
from shelfwise.retrieval.popularity import PopularityRecommender
from shelfwise.retrieval.rp3beta import RP3betaRecommender
from shelfwise.retrieval.session_knn import (
    SKNNRecommender,
    STANRecommender,
    VSKNNRecommender,
)
from shelfwise.retrieval.tifu_knn import TIFUKNNRecommender
from shelfwise.retrieval.user_knn import UserKNNRecommender

N_USERS, N_ITEMS = 8, 6


def checkerboard(n_users: int = N_USERS, n_items: int = N_ITEMS) -> sp.csr_matrix:
    """User u interacted with item i when u + i is even, weights 1..3 (implicit's fixture)."""
    users, items = np.indices((n_users, n_items))
    mask = (users + items) % 2 == 0
    weights = 1.0 + (users + 2 * items) % 3
    return sp.csr_matrix(np.where(mask, weights, 0.0).astype(np.float32))


def histories(rows: sp.csr_matrix | None = None) -> UserHistories:
    """`rows` (default the checkerboard) with each user's items in index order."""
    rows = checkerboard() if rows is None else rows
    csr = sp.csr_matrix(rows)
    csr.sort_indices()
    order = Sequences.from_rows(
        [csr.indices[csr.indptr[u] : csr.indptr[u + 1]] for u in range(csr.shape[0])]
    )
    return UserHistories(rows, order)


@dataclass(frozen=True)
class Case:
    """How one registered kind is built for the contract.

    Attributes:
        id: the test id.
        kind: the name the model tables register it under (a family or a compressed kind).
        new: an unfitted model (trainable kinds); None for derived ones.
        base: the case a derived kind is built from (compressed kinds).
        derive: builds the derived model from the fitted base and the folder it is
            saved in.
        pruned: items the model never lists (they score -inf).
        batch_atol: how far a row's scores may move with the batch it is scored in
            (dynamic int8 ONNX quantises activations per call, over the whole batch).
    """

    id: str
    kind: str
    new: Callable[[], Recommender] | None = None
    base: Case | None = None
    derive: Callable[[Recommender, Path], Recommender] | None = None
    pruned: tuple[int, ...] = ()
    batch_atol: float = 1e-7

    @property
    def trainable(self) -> bool:
        return self.new is not None

    def build(self, folder: Path) -> Recommender:
        """A fitted model (`folder`: room for a derived kind's base)."""
        if self.new is not None:
            model = self.new()
            model.fit(histories())
            return model
        assert self.base is not None
        assert self.derive is not None
        base = self.base.build(folder / "base_of_base")
        base.save(folder / "base")
        return self.derive(base, folder / "base")


def _sasrec() -> Recommender:
    from shelfwise.retrieval.sasrec import SASRecRecommender

    return SASRecRecommender(
        max_len=4, hidden=8, heads=1, blocks=1, epochs=2, negatives=2, batch_size=4, num_threads=1
    )


def _onnx(quantize: bool) -> Callable[[Recommender, Path], Recommender]:
    def derive(base: Recommender, folder: Path) -> Recommender:
        from shelfwise.compress.onnx_export import export_sasrec
        from shelfwise.retrieval.sasrec import SASRecRecommender

        assert isinstance(base, SASRecRecommender)
        return export_sasrec(base, folder, quantize=quantize)

    return derive


def _variant(
    spec: VariantSpec, kept: list[int] | None = None
) -> Callable[[Recommender, Path], Recommender]:
    def derive(base: Recommender, folder: Path) -> Recommender:
        kept_items = None if kept is None else np.array(kept, dtype=np.int64)
        built = build_matrix_variant(base, folder, spec, kept_items)
        assert built is not None, f"{spec.name} does not apply to {base.name}"
        return built

    return derive


INT8 = VariantSpec("int8", "quantize", "int8_row")
FAMILY_CASES: list[Case] = [
    Case("popularity", "popularity", PopularityRecommender),
    Case("item_knn", "item_knn", lambda: ItemKNNRecommender(neighbours=3)),
    Case("item_knn_bm25", "item_knn", lambda: ItemKNNRecommender(neighbours=3, weighting="bm25")),
    Case("user_knn", "user_knn", lambda: UserKNNRecommender(neighbours=3)),
    Case("ease", "ease", lambda: EASERecommender(l2=1.0)),
    Case("ease_top_items", "ease", lambda: EASERecommender(l2=1.0, max_dense_items=4)),
    Case("gfcf", "gfcf", lambda: GFCFRecommender(factors=2, alpha=0.5)),  # ARPACK path
    Case("gfcf_dense", "gfcf", lambda: GFCFRecommender(factors=3, alpha=0.5)),  # exact eigh
    Case("rp3beta", "rp3beta", lambda: RP3betaRecommender(neighbours=3)),
    Case("als", "als", lambda: ALSRecommender(factors=4, iterations=3, num_threads=1)),
    Case("bpr", "bpr", lambda: BPRRecommender(factors=4, iterations=5)),
    Case(
        "content",
        "content",
        lambda: ContentRecommender.from_texts(
            {"title": [f"tile {i % 2}" for i in range(N_ITEMS)]}, neighbours=3
        ),
    ),
    Case(
        "blend",
        "blend",
        lambda: BlendRecommender(
            {"popularity": 0.3, "item_knn": 1.0},
            {"popularity": PopularityRecommender(), "item_knn": ItemKNNRecommender(neighbours=3)},
        ),
    ),
    Case("sasrec", "sasrec", _sasrec),
    Case("buy_again", "buy_again", lambda: BuyAgainRecommender(decay=0.9)),
    Case("tifu_knn", "tifu_knn", lambda: TIFUKNNRecommender(group_size=2, neighbours=3)),
    Case("sknn", "sknn", lambda: SKNNRecommender(neighbours=3)),
    Case("vsknn", "vsknn", lambda: VSKNNRecommender(neighbours=3, sample_size=4)),
    Case(
        "stan",
        "stan",
        lambda: STANRecommender(neighbours=3, lambda_recency=0.5, followers=0.5),
    ),
]
_BY_ID = {case.id: case for case in FAMILY_CASES}
DERIVED_CASES: list[Case] = [
    *(
        Case(f"compressed_{family}", "compressed", base=_BY_ID[family], derive=_variant(INT8))
        for family in ("als", "bpr", "ease", "gfcf", "item_knn", "rp3beta")
    ),
    Case(
        "compressed_ease_top_items_float16",
        "compressed",
        base=_BY_ID["ease_top_items"],
        derive=_variant(VariantSpec("float16", "quantize", "float16")),
    ),
    Case(
        "compressed_als_svd",
        "compressed",
        base=_BY_ID["als"],
        derive=_variant(VariantSpec("svd50_int8", "svd", "int8_row", keep_fraction=0.5)),
    ),
    Case(
        "compressed_item_knn_pruned",
        "compressed",
        base=_BY_ID["item_knn"],
        derive=_variant(VariantSpec("prune", "prune", "int8_row"), kept=[0, 1, 2, 3, 4]),
        pruned=(5,),
    ),
    # a blend whose components are compressed: loads through compress's loader
    Case("blend_compressed", "blend", base=_BY_ID["blend"], derive=_variant(INT8)),
    Case("sasrec_onnx", "sasrec_onnx", base=_BY_ID["sasrec"], derive=_onnx(quantize=False)),
    Case(
        "sasrec_onnx_int8",
        "sasrec_onnx",
        base=_BY_ID["sasrec"],
        derive=_onnx(quantize=True),
        batch_atol=2e-3,
    ),
]
CASES = FAMILY_CASES + DERIVED_CASES
TRAINABLE = [case for case in CASES if case.trainable]
DERIVED = [case for case in CASES if not case.trainable]


def registered_class(kind: str) -> type[Recommender]:
    return recommender_class(kind) if kind in RECOMMENDERS else compressed_class(kind)


def test_every_registered_kind_has_a_case() -> None:
    covered = {case.kind for case in CASES}
    missing = sorted(set(recommender_names()) - covered)
    assert not missing, f"registered recommenders without a contract case: {missing}"
    compressed_bases = {case.base.kind for case in CASES if case.kind == "compressed" and case.base}
    assert sorted(set(FAMILIES) - compressed_bases) == []
    assert {case.base.kind for case in CASES if case.kind == "sasrec_onnx" and case.base} == {
        "sasrec"
    }
    assert set(recommender_names()) == set(RECOMMENDERS) | set(COMPRESSED_RECOMMENDERS)


_FITTED: dict[str, Recommender] = {}


@pytest.fixture(params=CASES, ids=[case.id for case in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    return request.param  # type: ignore[no-any-return]


def _built(case: Case, tmp_path_factory: pytest.TempPathFactory) -> Recommender:
    """The case's fitted model, built once per session (tests only read it)."""
    if case.id not in _FITTED:
        _FITTED[case.id] = case.build(tmp_path_factory.mktemp(case.id))
    return _FITTED[case.id]


@pytest.fixture
def fitted(case: Case, tmp_path_factory: pytest.TempPathFactory) -> Recommender:
    return _built(case, tmp_path_factory)


@pytest.fixture(params=TRAINABLE, ids=[case.id for case in TRAINABLE])
def trainable(request: pytest.FixtureRequest) -> Case:
    return request.param  # type: ignore[no-any-return]


def _allowed(case: Case) -> np.ndarray:
    allowed = np.ones(N_ITEMS, dtype=bool)
    allowed[list(case.pruned)] = False
    return allowed


class TestRecommenderContract:
    def test_is_a_registered_recommender(self, case: Case, fitted: Recommender) -> None:
        assert isinstance(fitted, Recommender)
        assert registered_class(case.kind) is type(fitted)
        base = case.base.kind if case.base is not None else case.kind
        assert fitted.name == base  # a variant serves under its base model's name

    def test_score_shape_dtype_finite(self, case: Case, fitted: Recommender) -> None:
        scores = fitted.score(histories(checkerboard()[:3]))
        assert scores.shape == (3, N_ITEMS)
        assert scores.dtype == np.float32
        assert np.isfinite(scores[:, _allowed(case)]).all()
        assert np.isneginf(scores[:, ~_allowed(case)]).all()

    def test_batch_equals_rows_one_by_one(self, case: Case, fitted: Recommender) -> None:
        rows = checkerboard()
        batch = fitted.score(histories(rows))
        one_by_one = np.vstack([fitted.score(histories(rows[[u]])) for u in range(N_USERS)])
        np.testing.assert_allclose(batch, one_by_one, rtol=1e-6, atol=case.batch_atol)

    def test_empty_history_scores_finite(self, case: Case, fitted: Recommender) -> None:
        scores = fitted.score(histories(sp.csr_matrix((2, N_ITEMS), dtype=np.float32)))
        assert scores.shape == (2, N_ITEMS)
        assert np.isfinite(scores[:, _allowed(case)]).all()

    def test_empty_batch(self, fitted: Recommender) -> None:
        empty = histories(sp.csr_matrix((0, N_ITEMS), dtype=np.float32))
        assert fitted.score(empty).shape == (0, N_ITEMS)

    def test_matrix_models_read_a_bare_matrix_and_sequential_ones_need_the_order(
        self, fitted: Recommender
    ) -> None:
        rows = checkerboard()
        if isinstance(fitted, SequentialRecommender):
            with pytest.raises(DataError, match="ordered histories"):
                fitted.score(rows)
        else:
            np.testing.assert_array_equal(fitted.score(rows), fitted.score(histories(rows)))

    def test_top_k_leaves_out_seen_and_excluded_items(
        self, case: Case, fitted: Recommender
    ) -> None:
        batch = histories()
        items, values = recommend_top_k(fitted, batch, N_ITEMS)
        assert items.shape == values.shape == (N_USERS, N_ITEMS)
        dense = checkerboard().toarray() > 0
        for user in range(N_USERS):
            listed = items[user][items[user] >= 0]
            unseen = set(np.flatnonzero(~dense[user] & _allowed(case)).tolist())
            assert set(listed.tolist()) == unseen  # every allowed unseen item, nothing else
            assert np.all(np.diff(values[user][: listed.size]) <= 0)  # best first
            assert np.isneginf(values[user][listed.size :]).all()
        blocked = np.zeros(N_ITEMS, dtype=bool)
        blocked[[1, 4]] = True
        items, _ = recommend_top_k(fitted, batch, N_ITEMS, exclude=blocked)
        assert not np.isin(items, [1, 4]).any()
        items, _ = recommend_top_k(fitted, batch, N_ITEMS, exclude_seen=False)
        assert (items[:, : int(_allowed(case).sum())] >= 0).all()

    def test_save_load_round_trip(self, fitted: Recommender, tmp_path: Path) -> None:
        fitted.save(tmp_path / "model")
        loaded = load_recommender(fitted.name, tmp_path / "model")  # the served name
        assert type(loaded) is type(fitted)
        batch = histories()
        np.testing.assert_array_equal(loaded.score(batch), fitted.score(batch))

    def test_saved_folder_holds_no_pickle(self, fitted: Recommender, tmp_path: Path) -> None:
        fitted.save(tmp_path)
        suffixes = {path.suffix for path in tmp_path.rglob("*") if path.is_file()}
        assert suffixes <= {".npy", ".npz", ".json", ".onnx"}
        for path in tmp_path.rglob("*.np[yz]"):
            np.load(path, allow_pickle=False)  # raises if an object array was pickled

    def test_wrong_item_count_is_a_data_error(self, fitted: Recommender) -> None:
        wrong = UserHistories(
            sp.csr_matrix((1, N_ITEMS + 1), dtype=np.float32), Sequences.from_rows([[0]])
        )
        with pytest.raises(DataError, match="item columns"):
            fitted.score(wrong)

    @pytest.mark.parametrize("derived", DERIVED, ids=[case.id for case in DERIVED])
    def test_derived_kinds_are_not_trained(
        self, derived: Case, tmp_path_factory: pytest.TempPathFactory
    ) -> None:
        with pytest.raises(NotReadyError, match="not trained"):
            _built(derived, tmp_path_factory).fit(histories())


class TestTraining:
    def test_same_seed_same_scores(self, trainable: Case, tmp_path: Path) -> None:
        batch = histories()
        first = trainable.build(tmp_path / "first").score(batch)
        second = trainable.build(tmp_path / "second").score(batch)
        np.testing.assert_array_equal(first, second)

    def test_fit_does_not_modify_train(self, trainable: Case) -> None:
        train = checkerboard()
        train.data[0] = 0.0  # an explicit zero the model drops on its own copy
        before = (train.data.copy(), train.indices.copy(), train.indptr.copy())
        assert trainable.new is not None
        trainable.new().fit(histories(train))
        for array, saved in zip((train.data, train.indices, train.indptr), before, strict=True):
            np.testing.assert_array_equal(array, saved)

    def test_empty_train_is_an_empty_data_error(self, trainable: Case) -> None:
        assert trainable.new is not None
        for shape in ((4, 5), (0, 0)):
            with pytest.raises(EmptyDataError, match="empty"):
                trainable.new().fit(histories(sp.csr_matrix(shape, dtype=np.float32)))

    def test_negative_weights_are_a_data_error(self, trainable: Case) -> None:
        train = checkerboard()
        train.data[0] = -1.0
        assert trainable.new is not None
        with pytest.raises(DataError, match="negative"):
            trainable.new().fit(histories(train))

    def test_unfitted_model_is_not_ready(self, trainable: Case, tmp_path: Path) -> None:
        assert trainable.new is not None
        model = trainable.new()
        with pytest.raises(NotReadyError, match="not fitted"):
            model.score(histories())
        with pytest.raises(NotReadyError, match="not fitted"):
            model.save(tmp_path)


def test_popularity_top_k_by_hand() -> None:
    """Item weights summed over the checkerboard's users (u + i even, 1 + (u + 2i) % 3):

    item 0: users 0, 2, 4, 6 -> 1 + 3 + 2 + 1 = 7     item 1: users 1, 3, 5, 7 -> 1 + 3 + 2 + 1 = 7
    item 2: 2 + 1 + 3 + 2 = 8                         item 3: 2 + 1 + 3 + 2 = 8
    item 4: 3 + 2 + 1 + 3 = 9                         item 5: 3 + 2 + 1 + 3 = 9

    User 0 has the even items, so its unseen items by popularity are 5, 3, 1; user 1 has
    the odd ones: 4, 2, 0. With item 5 blocked, user 0 gets 3, 1 and a -1 pad.
    """
    model = PopularityRecommender()
    model.fit(histories())
    np.testing.assert_array_equal(model.score(histories())[0], [7, 7, 8, 8, 9, 9])
    items, values = recommend_top_k(model, histories(checkerboard()[:2]), 3)
    np.testing.assert_array_equal(items, [[5, 3, 1], [4, 2, 0]])
    np.testing.assert_array_equal(values, [[9, 8, 7], [9, 8, 7]])
    blocked = np.zeros(N_ITEMS, dtype=bool)
    blocked[5] = True
    items, values = recommend_top_k(model, histories(checkerboard()[:1]), 3, exclude=blocked)
    np.testing.assert_array_equal(items, [[3, 1, -1]])
    assert values[0, 2] == -np.inf


def test_retrieval_loader_still_loads_its_own_families(tmp_path: Path) -> None:
    model = ItemKNNRecommender(neighbours=3)
    model.fit(histories())
    model.save(tmp_path / "item_knn")
    loaded = load_family("item_knn", tmp_path / "item_knn")
    np.testing.assert_array_equal(loaded.score(histories()), model.score(histories()))
