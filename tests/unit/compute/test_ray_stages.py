"""The stages' work on the two-node loopback cluster equals the local work (issue 13).

Evaluation's user blocks, the gate's re-scoring of a bundle, the tune stage's baseline
trials (in parallel, their fitted models sent back) and a family's Optuna study on Ray
Tune, each against the local path on the tiny shop's real split. The whole pipeline is compared in
tests/integration/test_ray_pipeline.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from tests.unit.compute.conftest import LoopbackCluster

from shelfwise._internal.artifacts import read_csr
from shelfwise.compute import open_executor
from shelfwise.config import ComputeConfig, ModelConfig, ShelfwiseConfig
from shelfwise.evaluate.recommend import EvalSplit, evaluation_users, rank_users
from shelfwise.pipeline import run_pipeline
from shelfwise.publish import rescore
from shelfwise.publish.rescore import FrozenTest
from shelfwise.retrieval import load_recommender
from shelfwise.retrieval.fitting import TrainingData
from shelfwise.runtime import Engine
from shelfwise.tune import tune_family
from shelfwise.tune.ray_tune import baseline_trials, tune_family_ray
from shelfwise.tune.study import baseline_trial

pytest.importorskip("ray.tune", reason="Ray is not installed: `pip install -e '.[cluster]'`")

Shop = tuple[TrainingData, EvalSplit]


def space(trial: optuna.Trial) -> dict[str, Any]:
    return {"neighbours": trial.suggest_int("neighbours", 2, 200, log=True)}


@pytest.fixture(scope="module")
def compute(ray_cluster: LoopbackCluster) -> ComputeConfig:
    """`compute:` of a run on the cluster, one trial at a time (see tune.ray_tune)."""
    return ComputeConfig(engine="ray", address=ray_cluster.address, tune_concurrent_trials=1)


@pytest.fixture(scope="module")
def shop(tiny_shop: Any, tmp_path_factory: pytest.TempPathFactory) -> Shop:
    """The tiny shop's train matrix and valid split (features run once)."""
    from tests.conftest import shop_config

    config: ShelfwiseConfig = shop_config(tiny_shop, tmp_path_factory.mktemp("state"))
    features = run_pipeline(config, until="features").run_dir / "features"
    data = TrainingData.load(features)
    targets = read_csr(features / "valid_targets.npz")
    users = evaluation_users(targets, max_users=None, seed=1)
    return data, EvalSplit(data.matrix, data.sequences, targets, users)


def test_user_blocks_on_ray_rank_like_local(
    compute: ComputeConfig, shop: Shop, tmp_path: Path
) -> None:
    data, valid = shop
    baseline_trial("item_knn", ModelConfig(params={"neighbours": 20}), data, valid, "ndcg@10",
                   keep=tmp_path / "knn")  # fmt: skip
    model = load_recommender("item_knn", tmp_path / "knn")
    executor = open_executor(compute)
    local = rank_users(model, valid, 10, label="local", block_users=40)
    on_ray = rank_users(model, valid, 10, label="ray", block_users=40, executor=executor)
    assert valid.users.size > 80  # several blocks, over both nodes
    np.testing.assert_array_equal(on_ray, local)


def test_baselines_run_as_parallel_tasks_and_their_fits_come_back(
    compute: ComputeConfig, shop: Shop, tmp_path: Path
) -> None:
    data, valid = shop
    families = {
        "item_knn": ModelConfig(params={"neighbours": 20}),
        "ease": ModelConfig(params={"l2": 200.0}),
    }
    on_ray = baseline_trials(families, data, dict.fromkeys(families, valid), "ndcg@10",
                             keep=tmp_path / "ray", compute=compute)  # fmt: skip
    for name, family in families.items():
        value, _ = baseline_trial(name, family, data, valid, "ndcg@10", keep=tmp_path / name)
        assert on_ray[name][0] == pytest.approx(value, rel=1e-9)
        sent_back = load_recommender(name, tmp_path / "ray" / name)
        local = load_recommender(name, tmp_path / name)
        np.testing.assert_array_equal(
            rank_users(sent_back, valid, 10, label="x"), rank_users(local, valid, 10, label="x")
        )


@pytest.mark.slow  # a Ray Tune experiment: 19-54 s measured on 2 shared cores (load 20-30)
@pytest.mark.timeout(900)
def test_a_study_on_ray_tune_equals_the_local_study(compute: ComputeConfig, shop: Shop) -> None:
    data, valid = shop
    family = ModelConfig(params={"neighbours": 5})
    kwargs: dict[str, Any] = {"metric": "ndcg@10", "n_trials": 4, "budget_seconds": 600.0,
                              "seed": 3}  # fmt: skip
    baseline = baseline_trial("item_knn", family, data, valid, "ndcg@10")
    local = tune_family("item_knn", family, space, data, valid, baseline=baseline, **kwargs)
    on_ray = tune_family_ray(
        "item_knn", family, space, data, valid, baseline=baseline, compute=compute, **kwargs
    )

    def rows(trials: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [(t["number"], t["params"], t["state"], t["value"]) for t in trials]

    # the baseline and four trials (the median pruner starts after 3 complete trials)
    assert len(local.trials) == 5
    assert "PRUNED" in {t["state"] for t in local.trials}  # pruning is compared too
    assert rows(on_ray.trials) == rows(local.trials)
    assert (on_ray.best_params, on_ray.best_value) == (local.best_params, local.best_value)


def test_the_gate_rescores_user_blocks_on_ray_like_local(
    compute: ComputeConfig,
    bundle_path: Path,
    engine: Engine,
    facts: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # each test user's history but their last item, which is the target
    users = sorted(facts.history)
    lists = [list(facts.history[user]) for user in users]
    test = FrozenTest(
        users=users,
        histories=[items[:-1] for items in lists],
        weights=[[facts.history[user][item] for item in items[:-1]] for user, items in
                 zip(users, lists, strict=True)],
        targets=[items[-1:] for items in lists],
    )  # fmt: skip
    monkeypatch.setattr(rescore, "BLOCK_USERS", 2)  # three blocks of users
    kwargs: dict[str, Any] = {"bundle_bytes": 1}
    local = rescore.score_bundle(engine, test, [5, 10], **kwargs)
    on_ray = rescore.score_bundle(
        engine, test, [5, 10], executor=open_executor(compute), bundle_path=bundle_path, **kwargs
    )

    def quality(score: rescore.BundleScore) -> dict[str, float]:
        return {k: v for k, v in score.metrics.items() if "latency" not in k}

    assert quality(local)["recall@10"] > 0  # something was found
    assert quality(on_ray) == quality(local)
    assert len(on_ray.latencies_ms) == len(users)  # each request timed, in the workers


# Ray Train copies Ray Data's settings, deprecated ones included, as it starts (Ray 2.60)
@pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")
@pytest.mark.slow  # a Ray Train run of two workers: 140 s measured on 2 shared cores
@pytest.mark.timeout(900)
def test_sasrec_trains_on_two_ray_train_workers_into_a_loadable_model(
    compute: ComputeConfig, shop: Shop, tmp_path: Path
) -> None:
    # Not compared with one worker: another batch order and twice the batch (see
    # shelfwise.retrieval._sasrec_ray); it must train, stop by its epochs, save and load.
    from shelfwise.retrieval.sasrec import SASRecRecommender

    open_executor(compute)  # joined to the cluster, as a run with engine ray is
    data, valid = shop
    model = SASRecRecommender(hidden=16, epochs=2, batch_size=64, negatives=32,
                              num_threads=1, train_workers=2)  # fmt: skip
    model.fit_sequences(data.sequences, data.n_items)
    assert model.summary is not None
    assert model.summary.epochs_run == 2
    model.save(tmp_path / "sasrec")
    loaded = SASRecRecommender.load(tmp_path / "sasrec")
    ranked = rank_users(loaded, valid, 10, label="sasrec")
    assert (ranked >= 0).all()
    np.testing.assert_array_equal(ranked, rank_users(model, valid, 10, label="sasrec"))
