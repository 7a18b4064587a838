"""Precomputed per-user lists answer exactly what live scoring answers.

The oracle is the engine itself with the lists switched off: for every user, several
`k`, exclusions and filters, `recommend` must return the same items, scores and
fallbacks either way. Four bundles: ALS alone (negative scores are possible, so rows end
early and are "complete"), ALS re-ranked by a click model with hand-set weights, and
two whose repeat policy is "allow" (issue 15): ALS, and buy-again (which scores only
the user's own items), where the lists hold seen items and still equal live scoring.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
from tests.unit.conftest import hand_set_click_model

from shelfwise._internal.sequences import Sequences
from shelfwise.package.bundle import BundleSpec, write_bundle
from shelfwise.ranking import FEATURE_NAMES, ClickModel
from shelfwise.retrieval import PopularityRecommender, Recommender, UserHistories
from shelfwise.retrieval.als import ALSRecommender
from shelfwise.retrieval.buy_again import BuyAgainRecommender
from shelfwise.runtime import Engine, load_engine
from shelfwise.runtime.catalog import Filters
from shelfwise.runtime.precomputed import most_active, precompute

N_USERS, N_ITEMS = 90, 70
CATEGORIES = ("phones", "tea", "books", "home")


def _shop(seed: int = 3) -> tuple[pl.DataFrame, sp.csr_matrix]:
    rng = np.random.default_rng(seed)
    items = pl.DataFrame(
        {
            "raw_item_id": [f"i{i}" for i in range(N_ITEMS)],
            "title": [f"item {i}" for i in range(N_ITEMS)],
            "category": [CATEGORIES[i % len(CATEGORIES)] for i in range(N_ITEMS)],
            "brand": [f"b{i % 7}" for i in range(N_ITEMS)],
            "price": [float(10 + 37 * i % 900) for i in range(N_ITEMS)],
            "in_stock": [i % 5 != 0 for i in range(N_ITEMS)],
        }
    )
    rows, cols, weights = [], [], []
    for user in range(N_USERS - 2):  # the last two users have no positive history
        count = int(rng.integers(1, 12))
        chosen = rng.choice(N_ITEMS, size=count, replace=False, p=_skewed(rng))
        rows += [user] * count
        cols += chosen.tolist()
        weights += rng.choice([1.0, 3.0, 5.0], size=count).tolist()
    rows.append(N_USERS - 1)  # a search-only user: a stored zero weight
    cols.append(0)
    weights.append(0.0)
    histories = sp.csr_matrix((weights, (rows, cols)), shape=(N_USERS, N_ITEMS), dtype=np.float32)
    return items, histories


def _skewed(rng: np.random.Generator) -> np.ndarray:
    popularity = rng.pareto(1.5, N_ITEMS) + 0.1
    return popularity / popularity.sum()


def _click_model(items: pl.DataFrame, histories: sp.csr_matrix) -> ClickModel:
    """p = sigmoid(4 category_share + (log1p(price) - 5) / 2 + 0.5 score - 3), hand-set."""
    first = np.zeros((1, len(FEATURE_NAMES)), dtype=np.float32)
    first[0, FEATURE_NAMES.index("category_share")] = 4.0
    first[0, FEATURE_NAMES.index("item_log_price")] = 1.0
    first[0, FEATURE_NAMES.index("retriever_score")] = 0.5
    return hand_set_click_model(
        items, histories, first, rerank=True, candidates=12, retriever="als"
    )


def _sequences(histories: sp.csr_matrix) -> Sequences:
    """Each user's positive items as an order, the heaviest last (so most recent)."""
    rows = []
    for user in range(histories.shape[0]):
        start, end = histories.indptr[user], histories.indptr[user + 1]
        items, weights = histories.indices[start:end], histories.data[start:end]
        keep = weights > 0
        order = np.lexsort((items[keep], weights[keep]))
        rows.append(np.repeat(items[keep][order], 1 + (weights[keep][order] > 1)))
    return Sequences.from_rows(rows)


def _bundle(root: Path, *, ranked: bool, policy: str = "exclude", model: str = "als") -> Path:
    items, histories = _shop()
    models = root / "models"
    recommender: Recommender
    if model == "als":
        recommender = ALSRecommender(factors=8, iterations=5, regularization=0.1, random_state=0)
    else:
        recommender = BuyAgainRecommender(decay=0.8)
    recommender.fit(UserHistories(histories, _sequences(histories)))
    recommender.save(models / model)
    popularity = PopularityRecommender()
    popularity.fit(histories)
    popularity.save(models / "popularity")
    components = {
        "recommender": (model, models / model),
        "popular": ("popularity", models / "popularity"),
    }
    if ranked:
        _click_model(items, histories).save(models / "click_model")
        components["ranker"] = ("click_model", models / "click_model")
    spec = BundleSpec(
        items=items,
        users=pl.DataFrame({"raw_user_id": [f"u{u}" for u in range(N_USERS)]}),
        histories=histories,
        components=components,
        project="precomputed",
        sequences=_sequences(histories),
        repeat_policy=policy,
    )
    write_bundle(spec, root / "bundle")
    return root / "bundle"


@pytest.fixture(scope="module", params=[False, True], ids=["als", "als+click-model"])
def bundle(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _bundle(tmp_path_factory.mktemp("precomputed"), ranked=request.param)


@pytest.fixture(scope="module", params=["als", "buy_again"], ids=["als+allow", "buy_again+allow"])
def repeat_bundle(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle whose repeat policy is "allow": its lists hold seen items (issue 15)."""
    folder = tmp_path_factory.mktemp("precomputed-repeats")
    return _bundle(folder, ranked=False, policy="allow", model=request.param)


REQUESTS = [
    (1, (), None),
    (5, (), None),
    (10, ("i1", "i2", "i3", "i5", "i8"), None),
    (20, (), Filters(in_stock=True)),
    (10, (), Filters(category=["tea"])),
    (40, (), None),
]


@pytest.mark.parametrize("depth", [None, 14, 3])
def test_precomputed_answers_equal_live_scoring(bundle: Path, depth: int | None) -> None:
    _check_against_live_scoring(bundle, depth)


@pytest.mark.parametrize("depth", [None, 3])
def test_precomputed_lists_with_repeats_equal_live_scoring(
    repeat_bundle: Path, depth: int | None
) -> None:
    _check_against_live_scoring(repeat_bundle, depth)
    _check_exclude_seen_both_ways(repeat_bundle)


def _check_against_live_scoring(bundle: Path, depth: int | None) -> None:
    live = load_engine(bundle)
    fast = load_engine(bundle)
    lists = fast.precompute(1000, max_k=40, depth=depth)
    assert lists is not None
    assert lists.n_precomputed == N_USERS - 2  # not the users without a positive history
    served = 0
    for raw in [*live.user_index, "stranger", None]:
        for k, exclude, filters in REQUESTS:
            expected = live.recommend(raw, k, exclude=exclude, filters=filters)
            got = fast.recommend(raw, k, exclude=exclude, filters=filters)
            assert [i.raw_item_id for i in got.items] == [i.raw_item_id for i in expected.items]
            assert [i.score for i in got.items] == pytest.approx(
                [i.score for i in expected.items], rel=1e-5, abs=1e-6
            )
            assert (got.fallback, got.fallback_reason) == (
                expected.fallback,
                expected.fallback_reason,
            )
            served += 1
    assert served == (N_USERS + 2) * len(REQUESTS)
    # both paths ran: lists answered some requests, live scoring others
    nothing = np.zeros(N_ITEMS, dtype=np.bool_)
    answered = [lists.lookup(u, nothing, 5) is not None for u in range(N_USERS)]
    if depth is None or depth >= max(5, lists.pool):
        assert any(answered)
    else:  # only rows holding every allowed item (buy-again's short ones) answer k > depth
        assert all(lists.complete[u] for u in range(N_USERS) if answered[u])
    assert not all(answered)  # users without a history at least
    if depth is None:  # max_k 40 + 50 covers the whole catalog: every row is complete
        assert lists.complete[lists.length >= 0].all()


def test_lookup_declines_when_blocked_items_leave_too_few(bundle: Path) -> None:
    engine = load_engine(bundle)
    lists = engine.precompute(1000, depth=4)
    assert lists is not None
    user = next(u for u in range(N_USERS) if lists.length[u] == 4 and not lists.complete[u])
    nothing = np.zeros(N_ITEMS, dtype=np.bool_)
    if lists.pool:  # a re-ranking pool larger than the rows: always live
        assert lists.lookup(user, nothing, 1) is None
        return
    found = lists.lookup(user, nothing, 4)
    assert found is not None
    assert found[0].tolist() == lists.items[user, :4].tolist()
    blocked = nothing.copy()
    blocked[lists.items[user, 0]] = True
    assert lists.lookup(user, blocked, 3) is not None  # three of four left
    assert lists.lookup(user, blocked, 4) is None  # needs a fifth the row does not hold
    assert lists.lookup(user, nothing, 5) is None  # k beyond the depth


def test_exclude_seen_off_is_scored_live(bundle: Path) -> None:
    _check_exclude_seen_both_ways(bundle)


def _check_exclude_seen_both_ways(bundle: Path) -> None:
    live, fast = load_engine(bundle), load_engine(bundle)
    fast.precompute(1000)
    for raw in list(live.user_index)[:20]:
        assert fast.recommend(raw, 10, exclude_seen=False) == live.recommend(
            raw, 10, exclude_seen=False
        )
        # a per-request policy other than the bundle's scores live, and agrees too
        assert fast.recommend(raw, 10, exclude_seen=True) == live.recommend(
            raw, 10, exclude_seen=True
        )


def test_allow_bundle_lists_hold_seen_items_and_answer_without_live_scoring() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        engine = load_engine(_bundle(Path(folder), ranked=False, policy="allow", model="buy_again"))
    assert (engine.repeat_policy, engine.exclude_seen) == ("allow", False)
    lists = engine.precompute(1000, max_k=10)
    assert lists is not None
    assert not lists.exclude_seen
    _, histories = _shop()
    user = int(np.argmax(np.diff(histories.indptr)))  # the longest history
    found = lists.lookup(user, np.zeros(N_ITEMS, dtype=np.bool_), 3)
    assert found is not None  # answered from the lists: no latency cliff
    own = set(histories[user].indices[histories[user].data > 0].tolist())
    assert set(found[0].tolist()) <= own  # buy-again lists the user's own items

    def no_live_scoring(*args: object, **kwargs: object) -> None:
        raise AssertionError("scored live")

    engine._recommending._personalised = no_live_scoring  # type: ignore[method-assign]
    result = engine.recommend(f"u{user}", 3)
    assert [item.raw_item_id for item in result.items] == [f"i{i}" for i in found[0]]


def test_most_active_picks_the_longest_histories() -> None:
    histories = sp.csr_matrix(np.array([[1, 0, 0], [1, 1, 1], [0, 1, 0], [1, 1, 0]], np.float32))
    assert most_active(histories, 2).tolist() == [1, 3]
    assert most_active(histories, 3).tolist() == [0, 1, 3]  # ties: lower index
    assert most_active(histories, 10).tolist() == [0, 1, 2, 3]


def test_precompute_marks_short_rows_complete() -> None:
    histories = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 0]], np.float32))
    scores = np.array([[0.0, 0.5, -1.0, 0.5]], dtype=np.float32)
    lists = precompute(histories, np.arange(2), lambda users, _: scores[: users.size], depth=3)
    assert lists.length.tolist() == [2, -1]  # user 1 has no history: live path
    assert lists.complete.tolist() == [True, False]
    assert lists.items[0].tolist() == [1, 3, -1]  # ties by lower index, 0 seen, 2 below 0
    found = lists.lookup(0, np.zeros(4, dtype=np.bool_), 3)
    assert found is not None
    assert found[0].tolist() == [1, 3]  # complete: fewer than k is the whole answer


def test_engine_without_recommender_or_limit_has_no_lists(bundle: Path) -> None:
    engine: Engine = load_engine(bundle)
    assert engine.precompute(0) is None
    assert engine.precomputed is None


def test_the_server_loads_as_configured(bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from shelfwise.serve import ServeSettings
    from shelfwise.serve.lifecycle import load_for_serving

    monkeypatch.setenv("OMP_NUM_THREADS", "7")  # restored after the test
    settings = ServeSettings(precompute_users=10, precompute_depth=6, omp_threads=3)
    served = load_for_serving(bundle, settings)
    assert served.precomputed is not None
    assert served.precomputed.n_precomputed == 10
    assert served.precomputed.depth == 6
    assert os.environ["OMP_NUM_THREADS"] == "3"  # before the encoder's runtime loads
    kept = ServeSettings(precompute_users=0, omp_threads=0)
    assert load_for_serving(bundle, kept).precomputed is None
    assert os.environ["OMP_NUM_THREADS"] == "3"  # 0: left as it was


def test_query_cache_setting_needs_a_query_encoder(bundle: Path) -> None:
    from shelfwise.serve import ServeSettings
    from shelfwise.serve.lifecycle import load_for_serving

    settings = ServeSettings(query_cache_size=0, precompute_users=0, omp_threads=0)
    engine = load_for_serving(bundle, settings)
    assert engine.set_query_cache(0) is False  # no search in this bundle: nothing to size


def test_freeze_heap_moves_the_loaded_objects_out_of_collections() -> None:
    import gc

    from shelfwise.serve.lifecycle import freeze_heap

    try:
        freeze_heap()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
