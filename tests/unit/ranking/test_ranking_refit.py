"""With a retriever refitted on train + valid, the click model still trains on the
candidates of its train-only fit (the refit has seen the valid targets)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from shelfwise._internal.artifacts import read_csr
from shelfwise.ranking.stage import run
from shelfwise.retrieval import ItemKNNRecommender, top_k_unseen


def _hits(
    model: ItemKNNRecommender, history: sp.csr_matrix, targets: sp.csr_matrix, users: np.ndarray
) -> int:
    ranked = top_k_unseen(model.score(history[users]), 100, seen=history[users])[0]
    return sum(
        int(np.isin(row[row >= 0], targets[user].indices).sum())
        for user, row in zip(users, ranked, strict=True)
    )


def _fit_and_save(matrix: sp.csr_matrix, folder: Path) -> ItemKNNRecommender:
    model = ItemKNNRecommender(neighbours=50, num_threads=1)
    model.fit(matrix)
    model.save(folder)
    return model


def test_valid_candidates_come_from_the_train_only_fit(ranking_inputs: Any, tmp_path: Path) -> None:
    features = ranking_inputs.features
    train, train_valid = read_csr(features / "train.npz"), read_csr(features / "train_valid.npz")
    # a retrieval folder as the stage writes it with evaluate.refit_on_train_valid
    retrieval = tmp_path / "retrieval"
    train_only = _fit_and_save(train, retrieval / "train_fit" / "item_knn")
    refitted = _fit_and_save(train_valid, retrieval / "item_knn")
    shutil.copy(ranking_inputs.retrieval / "models.json", retrieval / "models.json")
    inputs = type(ranking_inputs)(
        ranking_inputs.config, ranking_inputs.run_dir, features, retrieval, ranking_inputs.evaluate
    )
    config = inputs.config.model_copy(
        update={"ranking": inputs.config.ranking.model_copy(update={"model": "lightgbm"})}
    )
    out = tmp_path / "out"
    run(inputs.context(out, config))

    data = json.loads((out / "ranking.json").read_text())["data"]
    with np.load(out / "users.npz", allow_pickle=False) as users:
        valid_users = np.sort(np.concatenate([users["fit"], users["holdout"]]))
        test_users = users["test"]
    valid = read_csr(features / "valid_targets.npz")
    positives = data["fit_positives"] + data["holdout_positives"]
    assert positives == _hits(train_only, train, valid, valid_users)
    assert positives != _hits(refitted, train, valid, valid_users)  # the test can tell
    # test users: the served (refitted) retriever on train + valid histories
    test = read_csr(features / "test_targets.npz")
    assert data["test_positives"] == _hits(refitted, train_valid, test, test_users)
