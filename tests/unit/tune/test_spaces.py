"""Every search space draws constructor arguments its model accepts."""

from __future__ import annotations

import optuna
import pytest

from shelfwise.retrieval import RECOMMENDERS, recommender_class
from shelfwise.tune.spaces import SPACES


def test_spaces_cover_the_classic_families() -> None:
    classic = {"item_knn", "user_knn", "ease", "gfcf", "rp3beta", "als", "bpr"}
    assert set(SPACES) == classic | {"buy_again", "tifu_knn"}  # + the repeat models
    assert set(SPACES) <= set(RECOMMENDERS)


@pytest.mark.parametrize("name", sorted(SPACES))
def test_drawn_parameters_build_the_model(name: str) -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask()
        params = SPACES[name](trial)
        assert params  # every family has something to tune
        assert set(params) == set(trial.params)  # names are constructor arguments
        recommender_class(name)(**params)  # raises ConfigError or TypeError if not
        study.tell(trial, 0.0)
