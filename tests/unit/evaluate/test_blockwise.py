"""Evaluation scores users a block at a time: any block size gives the same lists."""

from __future__ import annotations

import numpy as np
import pytest

from shelfwise._internal.artifacts import read_csr
from shelfwise.config import ShelfwiseConfig
from shelfwise.evaluate.recommend import EvalSplit, block_size, evaluation_users, rank_users
from shelfwise.pipeline import run_pipeline
from shelfwise.retrieval.fitting import TrainingData, build_model, fit_model


@pytest.mark.parametrize(
    ("name", "params"),
    [("popularity", {}), ("item_knn", {"neighbours": 20}), ("ease", {"l2": 50.0})],
)
def test_blocks_of_seven_users_rank_as_one_block(
    tiny_config: ShelfwiseConfig, name: str, params: dict[str, float]
) -> None:
    features = run_pipeline(tiny_config, until="features").run_dir / "features"
    data = TrainingData.load(features)
    targets = read_csr(features / "valid_targets.npz")
    users = evaluation_users(targets, max_users=None, seed=0)
    split = EvalSplit(data.matrix, data.sequences, targets, users)
    model = build_model(name, params)
    fit_model(model, data)
    whole = rank_users(model, split, 10, label=name, block_users=users.size)
    blocks = rank_users(model, split, 10, label=name, block_users=7)
    np.testing.assert_array_equal(whole, blocks)


def test_the_default_block_keeps_a_score_block_near_100_mb() -> None:
    assert block_size(200_000) == 125  # 125 x 200k float32 = 100 MB
    assert block_size(100) == 4096  # small catalogs: capped
