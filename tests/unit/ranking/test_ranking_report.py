"""Classifier metrics and the F1 threshold on examples worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from shelfwise.evaluate.classifier import best_f1_threshold, classifier_metrics, curves


def test_metrics_by_hand() -> None:
    labels = np.array([1, 1, 0, 0, 0, 1], dtype=np.int8)
    probabilities = np.array([0.9, 0.6, 0.7, 0.2, 0.1, 0.3], dtype=np.float32)
    metrics = classifier_metrics(labels, probabilities, 0.5)
    # predicted positive: 0.9 (tp), 0.6 (tp), 0.7 (fp) -> P = 2/3, R = 2/3
    assert metrics["precision"] == pytest.approx(2 / 3)
    assert metrics["recall"] == pytest.approx(2 / 3)
    assert metrics["f1"] == pytest.approx(2 / 3)
    # 9 positive-negative pairs, 7 ordered correctly
    assert metrics["auc"] == pytest.approx(7 / 9)
    expected_loss = -np.mean(np.log([0.9, 0.6, 1 - 0.7, 1 - 0.2, 1 - 0.1, 0.3]).astype(np.float64))
    assert metrics["log_loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert metrics["positives"] == 3


def test_one_class_has_no_auc() -> None:
    metrics = classifier_metrics(np.zeros(4, np.int8), np.full(4, 0.2, np.float32), 0.5)
    assert metrics["auc"] is None
    assert metrics["f1"] == 0.0
    assert curves(np.zeros(4, np.int8), np.full(4, 0.2, np.float32)) == {}


def test_best_f1_threshold_separates_a_separable_set() -> None:
    labels = np.array([0, 0, 1, 1], dtype=np.int8)
    probabilities = np.array([0.1, 0.2, 0.6, 0.8], dtype=np.float32)
    threshold = best_f1_threshold(labels, probabilities)
    assert threshold == pytest.approx(0.6)
    assert classifier_metrics(labels, probabilities, threshold)["f1"] == 1.0


def test_curves_are_thinned_and_span_the_unit_square() -> None:
    rng = np.random.default_rng(0)
    labels = (rng.random(5000) < 0.3).astype(np.int8)
    probabilities = np.clip(labels * 0.3 + rng.random(5000) * 0.7, 0, 1).astype(np.float32)
    points = curves(labels, probabilities)
    assert len(points["roc"]["fpr"]) <= 201
    assert points["roc"]["fpr"][0] == 0.0
    assert points["roc"]["fpr"][-1] == 1.0
    assert points["roc"]["tpr"][-1] == 1.0
    assert len(points["pr"]["precision"]) == len(points["pr"]["recall"]) <= 201
