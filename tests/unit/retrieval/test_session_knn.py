"""SKNN, V-SKNN and STAN against scores worked out by hand on three tiny sessions.

Training sessions, in start order: s0 = [0, 1], s1 = [1, 2], s2 = [2, 3, 1]; 5 items
(item 4 never occurs).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from shelfwise._internal.sequences import Sequences
from shelfwise.errors import ConfigError
from shelfwise.evaluate.sessions import as_histories
from shelfwise.retrieval import load_recommender
from shelfwise.retrieval.session_knn import SKNNRecommender, STANRecommender, VSKNNRecommender

N_ITEMS = 5
TRAIN = as_histories(Sequences.from_rows([[0, 1], [1, 2], [2, 3, 1]]), N_ITEMS)
E = math.exp(-1.0)


def scores(model: SKNNRecommender | VSKNNRecommender | STANRecommender, session: list[int]):
    model.fit(TRAIN)
    return model.score(as_histories(Sequences.from_rows([session]), N_ITEMS))[0]


def test_sknn_cosine_over_distinct_items() -> None:
    # session [1] shares item 1 with every session: sim = 1 / sqrt(1 * |n|)
    r2, r3 = 1 / math.sqrt(2), 1 / math.sqrt(3)
    expected = [r2, 2 * r2 + r3, r2 + r3, r3, 0.0]
    np.testing.assert_allclose(scores(SKNNRecommender(reminders=0), [1]), expected, rtol=1e-5)


def test_sknn_samples_the_most_recent_candidate_sessions() -> None:
    r3 = 1 / math.sqrt(3)  # only s2, the most recent session holding item 1, votes
    found = scores(SKNNRecommender(sample_size=1, reminders=0), [1])
    np.testing.assert_allclose(found, [0.0, r3, r3, r3, 0.0], rtol=1e-5)


def test_vsknn_weighs_positions_p_over_l() -> None:
    # session [0, 1]: w(0) = 1/2, w(1) = 2/2; sim = overlap / |s|:
    # s0 (0.5 + 1) / 2 = 0.75, s1 1 / 2 = 0.5, s2 0.5
    expected = [0.75, 0.75 + 0.5 + 0.5, 0.5 + 0.5, 0.5, 0.0]
    np.testing.assert_allclose(scores(VSKNNRecommender(reminders=0), [0, 1]), expected, rtol=1e-5)


def test_stan_decays_positions_and_neighbour_distance() -> None:
    # session [2, 1], λ1 = λ3 = 1: w1(2) = e^-1, w1(1) = 1
    # sim = overlap / sqrt(2 |n|): s0 1 / 2, s1 (1 + e^-1) / 2, s2 (1 + e^-1) / sqrt(6)
    # anchor (s's most recent shared item) is item 1 in every neighbour:
    # s0: item 0 one step away (e^-1); s1: item 2 one step (e^-1);
    # s2 = [2, 3, 1]: item 2 two steps (e^-2), item 3 one step (e^-1)
    s0, s1, s2 = 0.5, (1 + E) / 2, (1 + E) / math.sqrt(6)
    expected = [s0 * E, s0 + s1 + s2, s1 * E + s2 * E**2, s2 * E, 0.0]
    model = STANRecommender(lambda_position=1.0, lambda_neighbour=1.0, reminders=0)
    np.testing.assert_allclose(scores(model, [2, 1]), expected, rtol=1e-5)
    # two neighbours: s0, the least similar, no longer votes
    model = STANRecommender(neighbours=2, lambda_position=1.0, lambda_neighbour=1.0, reminders=0)
    expected = [0.0, s1 + s2, s1 * E + s2 * E**2, s2 * E, 0.0]
    np.testing.assert_allclose(scores(model, [2, 1]), expected, rtol=1e-5)


def test_stan_recency_decay_prefers_recent_neighbours() -> None:
    # λ2 = 1 (a share of the 3 sessions): s2 weighs 1, s1 e^(-1/3), s0 e^(-2/3)
    model = STANRecommender(
        lambda_position=1.0, lambda_neighbour=1.0, lambda_recency=1.0, reminders=0
    )
    s0 = 0.5 * math.exp(-2 / 3)
    found = scores(model, [2, 1])
    assert found[0] == pytest.approx(s0 * E, rel=1e-5)


def test_reminders_put_the_session_items_back_recent_first() -> None:
    # SKNN on [1]: votes scaled by their maximum (2/√2 + 1/√3), item 1 gets +1
    r2, r3 = 1 / math.sqrt(2), 1 / math.sqrt(3)
    top = 2 * r2 + r3
    found = scores(SKNNRecommender(reminders=1.0), [1])
    np.testing.assert_allclose(found[:2], [r2 / top, 1.0 + 1.0], rtol=1e-5)
    # an item no training session holds: no neighbour, the session's item is still
    # listed; V-SKNN's reminders weigh position p / L (the later occurrence counts)
    found = scores(VSKNNRecommender(reminders=2.0), [4, 1, 4])
    assert found[4] == pytest.approx(2.0 * 3 / 3 + 0.0)
    assert found[1] == pytest.approx(2.0 * 2 / 3 + 1.0)  # votes scaled to 1 at most
    assert found[4] < found[1]


def test_followers_of_the_last_item_are_added() -> None:
    # session [0]: s0 is its only neighbour (sim 1 for V-SKNN), votes [1, 1, 0, 0, 0];
    # in training, 0 was followed by 1 once: item 1 gets + followers x 1/1
    found = scores(VSKNNRecommender(reminders=0, followers=1.0), [0])
    np.testing.assert_allclose(found, [1.0, 2.0, 0.0, 0.0, 0.0], rtol=1e-6)
    # the last item counts, not earlier ones: after [0, 3], 3 -> 1 (s2) adds to item 1
    found = scores(STANRecommender(reminders=0, followers=0.5), [0, 3])
    without = scores(STANRecommender(reminders=0), [0, 3])
    top = without.max()
    np.testing.assert_allclose(found - without / top, [0, 0.5, 0, 0, 0], atol=1e-6)


def test_bad_parameters_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="neighbours must be >= 1, got 0"):
        SKNNRecommender(neighbours=0)
    with pytest.raises(ConfigError, match="lambda_position must be > 0, got 0.0"):
        STANRecommender(lambda_position=0.0)
    with pytest.raises(ConfigError, match="reminders must be >= 0"):
        VSKNNRecommender(reminders=-1.0)


def test_saved_model_scores_the_same(tmp_path: Path) -> None:
    model = STANRecommender(lambda_recency=0.5)
    model.fit(TRAIN)
    model.save(tmp_path / "stan")
    loaded = load_recommender("stan", tmp_path / "stan")
    batch = as_histories(Sequences.from_rows([[2, 1], [0]]), N_ITEMS)
    np.testing.assert_array_equal(loaded.score(batch), model.score(batch))
