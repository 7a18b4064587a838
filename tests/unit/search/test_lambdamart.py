"""LambdaMART re-ranker: learns a graded order, saves as text, cross-validates by query."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import ArrayLike

from shelfwise.errors import ArtifactError, ConfigError, DataError, NotReadyError
from shelfwise.search.lambdamart import (
    SINGLE_THREAD_ROWS,
    SearchReranker,
    cross_validated_scores,
    default_label_gain,
    query_folds,
)

NAMES = ("relevance_signal", "noise", "query_id")
SMALL = {"min_data_in_leaf": 2, "num_leaves": 7}


def make_queries(n_queries: int, per_query: int, seed: int) -> tuple[np.ndarray, ...]:
    """Rows whose grade (0..3) is a noisy step function of the first feature."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_queries), per_query)
    signal = rng.random(groups.size)
    noise = rng.random(groups.size)
    grades = np.clip(np.floor(signal * 4 + rng.normal(0, 0.3, groups.size)), 0, 3)
    features = np.column_stack([signal, noise, groups.astype(np.float64)]).astype(np.float32)
    return features, grades.astype(np.int64), groups


def ndcg(scores: np.ndarray, grades: np.ndarray, groups: np.ndarray, k: int = 5) -> float:
    values = []
    for query in np.unique(groups):
        rows = groups == query
        gains = 2.0 ** grades[rows] - 1
        order = np.lexsort((np.arange(rows.sum()), -scores[rows]))
        discounts = 1 / np.log2(np.arange(2, k + 2))
        dcg = float((gains[order][:k] * discounts[: min(k, rows.sum())]).sum())
        ideal = float((np.sort(gains)[::-1][:k] * discounts[: min(k, rows.sum())]).sum())
        if ideal > 0:
            values.append(dcg / ideal)
    return float(np.mean(values))


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, ...]:
    return make_queries(60, 12, seed=0)


@pytest.fixture(scope="module")
def fitted(data: tuple[np.ndarray, ...]) -> SearchReranker:
    features, grades, groups = data
    return SearchReranker(feature_names=NAMES, num_boost_round=40, params=SMALL).fit(
        features, grades, groups
    )


def test_learns_the_graded_order(data: tuple[np.ndarray, ...], fitted: SearchReranker) -> None:
    features, grades, groups = data
    test_features, test_grades, test_groups = make_queries(30, 12, seed=1)
    scores = fitted.predict(test_features)
    assert scores.shape == (test_features.shape[0],)
    assert scores.dtype == np.float64
    random_order = np.random.default_rng(2).random(scores.size)
    assert ndcg(scores, test_grades, test_groups) > ndcg(random_order, test_grades, test_groups)
    assert ndcg(scores, test_grades, test_groups) > 0.9
    assert next(iter(fitted.feature_importance())) == "relevance_signal"


def test_rows_of_a_query_need_not_be_contiguous(data: tuple[np.ndarray, ...]) -> None:
    features, grades, groups = data
    shuffled = np.random.default_rng(3).permutation(groups.size)
    mixed = SearchReranker(feature_names=NAMES, num_boost_round=40, params=SMALL).fit(
        features[shuffled], grades[shuffled], groups[shuffled]
    )
    # the same rows with each query's rows made contiguous (order within a query kept)
    contiguous = shuffled[np.argsort(groups[shuffled], kind="stable")]
    grouped = SearchReranker(feature_names=NAMES, num_boost_round=40, params=SMALL).fit(
        features[contiguous], grades[contiguous], groups[contiguous]
    )
    assert mixed.booster.model_to_string() == grouped.booster.model_to_string()


def test_training_is_deterministic(data: tuple[np.ndarray, ...], fitted: SearchReranker) -> None:
    features, grades, groups = data
    twin = SearchReranker(feature_names=NAMES, num_boost_round=40, params=SMALL)
    twin.fit(features, grades, groups)
    assert twin.booster.model_to_string() == fitted.booster.model_to_string()


def test_small_inputs_run_on_one_thread() -> None:
    model = SearchReranker(num_threads=4)
    assert model.threads(SINGLE_THREAD_ROWS - 1) == 1
    assert model.threads(SINGLE_THREAD_ROWS) == 4
    assert model.lightgbm_params(10)["num_threads"] == 1
    assert model.lightgbm_params()["num_threads"] == 4


def test_weights_change_the_model(data: tuple[np.ndarray, ...], fitted: SearchReranker) -> None:
    features, grades, groups = data
    weights = np.where(grades == 3, 10.0, 1.0)
    weighted = SearchReranker(feature_names=NAMES, num_boost_round=40, params=SMALL)
    weighted.fit(features, grades, groups, weights=weights)
    assert not np.allclose(weighted.predict(features), fitted.predict(features))


def test_label_gain_sets_the_grade_scale(data: tuple[np.ndarray, ...]) -> None:
    features, grades, groups = data
    assert default_label_gain() == (0.0, 1.0, 3.0, 7.0)
    assert default_label_gain(4) == (0.0, 1.0, 3.0, 7.0, 15.0)
    binary = SearchReranker(feature_names=NAMES, label_gain=[0, 1], params=SMALL)
    with pytest.raises(DataError, match=r"integer grades 0\.\.1"):
        binary.fit(features, grades, groups)
    binary.fit(features, (grades >= 2).astype(int), groups)
    assert binary.lightgbm_params()["label_gain"] == [0.0, 1.0]
    with pytest.raises(ConfigError, match="label_gain"):
        SearchReranker(label_gain=[1.0, 2.0])
    with pytest.raises(ConfigError, match="label_gain"):
        SearchReranker(label_gain=[0.0, 3.0, 1.0])


def test_explain_gives_the_largest_contributions(
    data: tuple[np.ndarray, ...], fitted: SearchReranker
) -> None:
    features = data[0][:5]
    explained = fitted.explain(features, top=2)
    assert len(explained) == 5
    raw = fitted.booster.predict(features, pred_contrib=True)
    for row, pairs in enumerate(explained):
        assert len(pairs) == 2
        assert all(name in NAMES for name, _ in pairs)
        magnitudes = [abs(value) for _, value in pairs]
        assert magnitudes == sorted(magnitudes, reverse=True)
        top_name, top_value = pairs[0]
        assert top_value == pytest.approx(raw[row, NAMES.index(top_name)])
        assert abs(top_value) == pytest.approx(np.abs(raw[row, :3]).max())
    # contributions plus the expected value add up to the score (TreeSHAP)
    np.testing.assert_allclose(raw.sum(axis=1), fitted.predict(features), rtol=1e-6, atol=1e-9)
    assert fitted.explain(features[:0]) == []


def test_save_load_round_trip(
    data: tuple[np.ndarray, ...], fitted: SearchReranker, tmp_path: Path
) -> None:
    features = data[0]
    fitted.save(tmp_path / "reranker", info={"ndcg@10": 0.5})
    assert {p.name for p in (tmp_path / "reranker").iterdir()} == {"model.txt", "reranker.json"}
    loaded = SearchReranker.load(tmp_path / "reranker", feature_names=NAMES)
    np.testing.assert_array_equal(loaded.predict(features), fitted.predict(features))
    assert loaded.label_gain == fitted.label_gain
    assert loaded.params == fitted.params
    with pytest.raises(ArtifactError, match="does not compute"):
        SearchReranker.load(tmp_path / "reranker")  # the default: SEARCH_FEATURE_NAMES
    (tmp_path / "reranker" / "model.txt").unlink()
    with pytest.raises(ArtifactError, match="missing"):
        SearchReranker.load(tmp_path / "reranker", feature_names=NAMES)
    with pytest.raises(ArtifactError, match="missing or unreadable"):
        SearchReranker.load(tmp_path / "elsewhere")


def test_a_model_trained_before_features_were_added_still_loads(
    data: tuple[np.ndarray, ...], fitted: SearchReranker, tmp_path: Path
) -> None:
    # a registry's older version (rollback) holds a re-ranker of fewer columns: the
    # caller passes today's columns and the model picks its own by name
    features = data[0]
    fitted.save(tmp_path / "reranker")
    today = ("new_first", NAMES[2], NAMES[0], "new_last", NAMES[1])
    first, second, third = features.T
    wider = np.column_stack([np.full(len(features), 9.0), third, first, -first, second])
    loaded = SearchReranker.load(tmp_path / "reranker", feature_names=today)
    assert loaded.feature_names == NAMES
    assert loaded.input_names == today
    np.testing.assert_array_equal(loaded.predict(wider), fitted.predict(features))
    assert [name for pairs in loaded.explain(wider) for name, _ in pairs] == [
        name for pairs in fitted.explain(features) for name, _ in pairs
    ]
    with pytest.raises(DataError, match="features must be"):
        loaded.predict(features)  # the model's own three columns are not what it takes now


def test_invalid_use(data: tuple[np.ndarray, ...]) -> None:
    features, grades, groups = data
    model = SearchReranker(feature_names=NAMES)
    with pytest.raises(NotReadyError, match="not fitted"):
        model.predict(features)
    with pytest.raises(DataError, match="features must be"):
        model.fit(features[:, :2], grades, groups)
    with pytest.raises(DataError, match="one label and one group"):
        model.fit(features, grades[:-1], groups)
    with pytest.raises(DataError, match="weights"):
        model.fit(features, grades, groups, weights=-np.ones(grades.size))
    with pytest.raises(ConfigError, match="constructor"):
        SearchReranker(params={"objective": "binary"})
    with pytest.raises(ConfigError, match="distinct"):
        SearchReranker(feature_names=("a", "a"))


# --- cross-validation by query --------------------------------------------------------


class SpyReranker:
    """Records the queries it trains on; scores rows by their query id column.

    Column 2 of the features holds the query id, so `score_candidates` knows which queries it
    is asked to score.
    """

    log: list[tuple[set[int], set[int]]] = []

    def __init__(self) -> None:
        self.trained_on: set[int] = set()

    def fit(
        self,
        features: ArrayLike,
        labels: ArrayLike,
        groups: ArrayLike,
        weights: ArrayLike | None = None,
    ) -> SpyReranker:
        matrix = np.asarray(features)
        assert set(np.asarray(groups).tolist()) == set(matrix[:, 2].astype(int).tolist())
        self.trained_on = set(np.asarray(groups).tolist())
        return self

    def score_candidates(self, features: ArrayLike) -> np.ndarray:
        scored = set(np.asarray(features)[:, 2].astype(int).tolist())
        SpyReranker.log.append((self.trained_on, scored))
        return np.full(np.asarray(features).shape[0], float(len(SpyReranker.log)))


def test_a_query_is_never_scored_by_a_model_trained_on_it(
    data: tuple[np.ndarray, ...],
) -> None:
    features, grades, groups = data
    SpyReranker.log = []
    scores = cross_validated_scores(
        features, grades, groups, folds=4, seed=5, make_reranker=SpyReranker
    )
    assert len(SpyReranker.log) == 4
    all_queries = set(groups.tolist())
    scored_anywhere: set[int] = set()
    for trained_on, scored in SpyReranker.log:
        assert not trained_on & scored  # the fold's queries were not in its training rows
        assert trained_on | scored == all_queries  # every other query was
        assert not scored_anywhere & scored  # each query is scored by one model only
        scored_anywhere |= scored
    assert scored_anywhere == all_queries
    # every row of a query got the score of the one model that scored that query
    for query in np.unique(groups):
        assert len(set(scores[groups == query].tolist())) == 1
    assert not np.isnan(scores).any()


def test_query_folds_are_balanced_seeded_and_whole() -> None:
    groups = np.repeat(np.array(["q3", "q1", "q2", "q5", "q4", "q6", "q7"]), [1, 2, 3, 1, 2, 3, 1])
    folds = query_folds(groups, 3, seed=0)
    for query in np.unique(groups):
        assert len(set(folds[groups == query].tolist())) == 1
    per_fold = [len(set(groups[folds == f].tolist())) for f in range(3)]
    assert sorted(per_fold) == [2, 2, 3]
    np.testing.assert_array_equal(folds, query_folds(groups, 3, seed=0))
    assert any(not np.array_equal(folds, query_folds(groups, 3, seed=s)) for s in range(1, 5))
    with pytest.raises(DataError, match="at least 3 queries"):
        query_folds(["a", "b"], 3, seed=0)


def test_cross_validated_scores_rank_unseen_queries_well(
    data: tuple[np.ndarray, ...],
) -> None:
    features, grades, groups = data
    scores = cross_validated_scores(
        features,
        grades,
        groups,
        folds=3,
        seed=0,
        make_reranker=lambda: SearchReranker(feature_names=NAMES, num_boost_round=30, params=SMALL),
    )
    assert ndcg(scores, grades, groups) > 0.9
    with pytest.raises(DataError, match="one label, group"):
        cross_validated_scores(features, grades[:-1], groups)
