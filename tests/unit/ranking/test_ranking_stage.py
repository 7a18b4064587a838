"""The ranking stage end to end: report, curves, data protocol, known-rule learning."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from shelfwise._internal.artifacts import read_csr, write_csr
from shelfwise.ranking import ClickModel
from shelfwise.ranking.stage import run
from shelfwise.retrieval import load_recommender, top_k_unseen

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _report(out: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((out / "ranking.json").read_text())
    return loaded


def test_report_metrics_are_sane(stage_run: Any) -> None:
    report = _report(stage_run.out)
    assert report["status"] == "trained"
    assert report["retriever"] == "item_knn"
    assert set(report["models"]) == {"lightgbm", "mlp"}
    for entry in report["models"].values():
        for part in ("holdout", "test"):
            metrics = entry[part]
            assert 0.0 <= metrics["auc"] <= 1.0
            assert metrics["log_loss"] > 0.0
            precision, recall = metrics["precision"], metrics["recall"]
            expected = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            assert metrics["f1"] == pytest.approx(expected)
            assert 0.0 < metrics["threshold"] < 1.0
    chosen = report["selected_model"]
    holdout_aucs = {name: e["holdout"]["auc"] for name, e in report["models"].items()}
    assert holdout_aucs[chosen] == max(holdout_aucs.values())
    assert report["test"] == report["models"][chosen]["test"]
    assert report["threshold"] == report["models"][chosen]["holdout"]["threshold"]


def test_rerank_flag_follows_held_out_ndcg(stage_run: Any) -> None:
    report = _report(stage_run.out)
    holdout = report["rerank_holdout"]
    better = holdout["reranked"]["ndcg@10"] > holdout["retriever"]["ndcg@10"]
    assert report["kept"] is report["rerank"] is better
    for part in ("rerank_holdout", "rerank_test"):
        for order in ("retriever", "reranked"):
            assert 0.0 <= report[part][order]["recall@10"] <= 1.0
    assert ClickModel.load(stage_run.out / "model").rerank is better


def test_curves_and_plots_are_saved(stage_run: Any) -> None:
    saved = json.loads((stage_run.out / "curves.json").read_text())
    assert saved["selected"] == _report(stage_run.out)["selected_model"]
    for name in ("lightgbm", "mlp", "retriever"):
        roc, pr = saved["test"][name]["roc"], saved["test"][name]["pr"]
        assert len(roc["fpr"]) == len(roc["tpr"]) >= 2
        assert roc["fpr"][0] == 0.0
        assert roc["tpr"][-1] == 1.0
        assert len(pr["precision"]) == len(pr["recall"]) >= 2
    for plot in ("roc.png", "pr.png"):
        assert (stage_run.out / plot).read_bytes()[:8] == PNG_MAGIC


def test_training_uses_valid_users_and_labels_only(stage_run: Any) -> None:
    inputs = stage_run.inputs
    valid = read_csr(inputs.features / "valid_targets.npz")
    test = read_csr(inputs.features / "test_targets.npz")
    with np.load(stage_run.out / "users.npz", allow_pickle=False) as users:
        fit, holdout, tested = users["fit"], users["holdout"], users["test"]
    with_valid_targets = set(np.flatnonzero(valid.getnnz(axis=1) > 0).tolist())
    assert set(fit) | set(holdout) == with_valid_targets
    assert not set(fit) & set(holdout)
    assert holdout.size == round(0.2 * len(with_valid_targets))
    assert set(tested) == set(np.flatnonzero(test.getnnz(axis=1) > 0).tolist())

    # the positives are exactly the valid targets among the train-history candidates
    train = read_csr(inputs.features / "train.npz")
    retriever = load_recommender("item_knn", inputs.retrieval / "item_knn")
    users = np.sort(np.concatenate([fit, holdout]))
    ranked = top_k_unseen(retriever.score(train[users]), 100, seen=train[users])[0]
    hits = sum(
        int(np.isin(row[row >= 0], valid[user].indices).sum())
        for user, row in zip(users, ranked, strict=True)
    )
    data = _report(stage_run.out)["data"]
    assert data["fit_positives"] + data["holdout_positives"] == hits
    assert data["labels"] == {
        "fit": "valid_targets",
        "holdout": "valid_targets",
        "test": "test_targets",
    }
    assert data["histories"]["fit"] == "train"


def test_test_events_never_reach_training(builders: Any, tmp_path: Path) -> None:
    runs = {}
    for test_seed in (4, 5):
        inputs = builders.rule_inputs(
            tmp_path / f"seed-{test_seed}", test_seed=test_seed, **{"ranking.model": "lightgbm"}
        )
        out = tmp_path / f"out-{test_seed}"
        run(inputs.context(out))
        runs[test_seed] = out
    first, second = runs[4], runs[5]
    # other test events: other test metrics, the very same trained model
    assert _report(first)["test"] != _report(second)["test"]
    assert (first / "model" / "model.txt").read_bytes() == (
        second / "model" / "model.txt"
    ).read_bytes()
    spec_first = json.loads((first / "model" / "features.json").read_text())
    spec_second = json.loads((second / "model" / "features.json").read_text())
    for key in ("standardisation", "threshold", "rerank"):
        assert spec_first[key] == spec_second[key]
    assert (
        _report(first)["models"]["lightgbm"]["holdout"]
        == _report(second)["models"]["lightgbm"]["holdout"]
    )


def test_a_known_rule_is_learnt(rule_run: Any) -> None:
    report = _report(rule_run.out)
    # targets come from the user's favourite category: the click model must find it
    assert report["test"]["auc"] > 0.8
    assert report["kept"] is True
    holdout, test = report["rerank_holdout"], report["rerank_test"]
    assert holdout["reranked"]["ndcg@10"] > 2 * holdout["retriever"]["ndcg@10"]
    assert test["reranked"]["recall@10"] > test["retriever"]["recall@10"]
    assert report["retriever_test_auc"] < report["test"]["auc"]
    importance = report["models"]["lightgbm"]["training"]["feature_importance"]
    assert max(importance, key=importance.get) == "category_share"


def test_disabled_stage_is_skipped(ranking_inputs: Any, tmp_path: Path) -> None:
    config = ranking_inputs.config.model_copy(
        update={"ranking": ranking_inputs.config.ranking.model_copy(update={"enabled": False})}
    )
    result = run(ranking_inputs.context(tmp_path / "out", config))
    assert result.extra["status"] == "skipped"
    assert _report(tmp_path / "out") == {"status": "skipped", "reason": "ranking.enabled is false"}
    assert not (tmp_path / "out" / "model").exists()


def test_no_valid_split_is_skipped(builders: Any, tmp_path: Path) -> None:
    inputs = builders.rule_inputs(tmp_path / "in")
    shape = read_csr(inputs.features / "valid_targets.npz").shape
    write_csr(inputs.features / "valid_targets.npz", sp.csr_matrix(shape, dtype=np.float32))
    run(inputs.context(tmp_path / "out"))
    report = _report(tmp_path / "out")
    assert report["status"] == "skipped"
    assert "valid_fraction" in report["reason"]
