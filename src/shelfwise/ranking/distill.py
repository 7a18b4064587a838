"""What distilling the click model needs from the ranking stage (batch role).

The compress stage trains smaller students on the served click model's probabilities.
They must see the rows the teacher saw: `ranking_pairs` rebuilds the ranking stage's
training and held-out pairs from its outputs (`users.npz` names the users; candidates
come from the retriever fitted on train, features from train-only tables, labels from
`valid_targets.npz`, or `valid_targets_all.npz` with seen items as candidates when the
stage trained under the repeat policy `allow`), exactly as `shelfwise.ranking.stage`
built them; their feature rows hold the columns the teacher reads (`ranking.json`'s
`features`).
`rerank_metrics` is the stage's re-ranking comparison, `fit_lightgbm_student` the
student's training.

Relations:
    `shelfwise.compress.distill` measures and selects the students; the served
    teacher is `ranking/model/` (`ClickModel.load`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from shelfwise._internal.artifacts import read_csr
from shelfwise.contracts import SPLIT, FloatArray, SplitName
from shelfwise.ranking._candidates import PairSet, labelled_pairs, ordered_histories, retrieve
from shelfwise.ranking._train import fit_lightgbm_student
from shelfwise.ranking.features import FEATURE_NAMES, build_tables
from shelfwise.ranking.stage import REPORT_FILE, USERS_FILE, _order_metrics, _targets
from shelfwise.retrieval import load_recommender
from shelfwise.retrieval.stage import train_only_folder


@dataclass(frozen=True)
class RankingPairs:
    """The ranking stage's labelled pairs, split as it split them.

    Attributes:
        fit: pairs of the users the click model was trained on.
        holdout: pairs of the held-out valid users (early stopping, threshold, decision).
        targets: CSR valid targets (the labels; re-ranking metrics read them).
        report: the stage's `ranking.json`.
    """

    fit: PairSet
    holdout: PairSet
    targets: sp.csr_matrix
    report: dict[str, Any]


def ranking_pairs(
    *, features: Path, retrieval: Path, evaluate: Path, ranking: Path
) -> RankingPairs | None:
    """Rebuild the ranking stage's fit and held-out pairs; None when it did not train.

    Args:
        features, retrieval, evaluate, ranking: the stages' output folders.
    """
    report: dict[str, Any] = json.loads((ranking / REPORT_FILE).read_text(encoding="utf-8"))
    if report.get("status") != "trained" or not (ranking / USERS_FILE).is_file():
        return None
    name = str(report["retriever"])
    # as `_stage._model_folders`: a kept blend lives in evaluate's folder
    stage = evaluate if (evaluate / name).is_dir() else retrieval
    retriever = load_recommender(name, train_only_folder(stage, name))
    with np.load(ranking / USERS_FILE, allow_pickle=False) as users_file:
        fit_users, holdout_users = users_file["fit"], users_file["holdout"]
    users = np.sort(np.concatenate([fit_users, holdout_users]).astype(np.int64))
    targets, _, repeats = _targets(features, str(report.get("repeat_policy")))
    candidates = retrieve(
        retriever,
        read_csr(features / "train.npz").astype(np.float32),
        users,
        int(report["candidates"]),
        sequences=ordered_histories(features, "train"),
        label=f"{name} candidates for distillation ({users.size:,} users)",
        exclude_seen=not repeats,
    )
    interactions = pl.read_parquet(features / "interactions.parquet")
    items_table, users_table = build_tables(
        pl.read_parquet(features / "items.parquet"),
        interactions.filter(pl.col(SPLIT) == SplitName.TRAIN.value),
        n_users=pl.read_parquet(features / "users.parquet").height,
    )
    pairs = labelled_pairs(candidates, targets, items_table, users_table)
    names = [str(feature) for feature in report.get("features", FEATURE_NAMES)]
    if tuple(names) != FEATURE_NAMES:  # a teacher trained on fewer columns
        columns = [FEATURE_NAMES.index(feature) for feature in names]
        pairs = replace(pairs, features=np.ascontiguousarray(pairs.features[:, columns]))
    in_holdout = np.isin(candidates.users, holdout_users)
    return RankingPairs(
        fit=pairs.subset(~in_holdout),
        holdout=pairs.subset(in_holdout),
        targets=targets,
        report=report,
    )


def rerank_metrics(
    pairs: PairSet, probabilities: FloatArray, targets: sp.csr_matrix, k_values: list[int]
) -> dict[str, dict[str, float]]:
    """Ranking metrics of the candidates in the retriever's order ("retriever") and
    re-ordered by `probabilities` ("reranked"), as the ranking stage computes them."""
    return _order_metrics(pairs, probabilities, targets, k_values)


__all__ = ["RankingPairs", "fit_lightgbm_student", "ranking_pairs", "rerank_metrics"]
