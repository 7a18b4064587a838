"""Classifier metrics, curves and plots of the click model (batch role)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from shelfwise.contracts import FloatArray

LabelArray = np.ndarray[Any, np.dtype[np.int8]]
MAX_CURVE_POINTS: Final = 201
_EPSILON: Final = 1e-7


def best_f1_threshold(labels: LabelArray, probabilities: FloatArray) -> float:
    """The probability threshold that maximises F1 (predict 1 when p >= threshold).

    Raises:
        ValueError: no positive label (F1 is undefined).
    """
    from sklearn.metrics import precision_recall_curve

    if not labels.any():
        raise ValueError("no positive label: cannot choose a threshold")
    precision, recall, thresholds = precision_recall_curve(labels, probabilities)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    best = int(np.argmax(f1[:-1])) if thresholds.size else 0
    return float(thresholds[best]) if thresholds.size else 0.5


def classifier_metrics(
    labels: LabelArray, probabilities: FloatArray, threshold: float
) -> dict[str, float | int | None]:
    """AUC, log loss, and precision / recall / F1 at `threshold`.

        precision = TP / (TP + FP), recall = TP / (TP + FN),
        F1 = 2 · precision · recall / (precision + recall)   (0 when both are 0)

    AUC is None when only one class is present.
    """
    from sklearn.metrics import log_loss, roc_auc_score

    y = np.asarray(labels, dtype=np.int8)
    raw = np.asarray(probabilities, dtype=np.float64)
    predicted = raw >= threshold
    p = np.clip(raw, _EPSILON, 1 - _EPSILON)
    true_positive = int(np.sum(predicted & (y == 1)))
    false_positive = int(np.sum(predicted & (y == 0)))
    false_negative = int(np.sum(~predicted & (y == 1)))
    precision = true_positive / (true_positive + false_positive) if predicted.any() else 0.0
    recall = true_positive / (true_positive + false_negative) if y.any() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    both_classes = 0 < int(y.sum()) < y.size
    return {
        "auc": float(roc_auc_score(y, p)) if both_classes else None,
        "log_loss": float(log_loss(y, p, labels=[0, 1])) if y.size else None,
        "threshold": float(threshold),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "rows": int(y.size),
        "positives": int(y.sum()),
        "positive_rate": float(y.mean()) if y.size else 0.0,
        "true_positives": true_positive,
        "false_positives": false_positive,
    }


def curves(labels: LabelArray, probabilities: FloatArray) -> dict[str, dict[str, list[float]]]:
    """ROC (fpr, tpr) and precision-recall points, at most `MAX_CURVE_POINTS` each."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    y = np.asarray(labels, dtype=np.int8)
    if not (0 < int(y.sum()) < y.size):
        return {}
    fpr, tpr, _ = roc_curve(y, probabilities)
    precision, recall, _ = precision_recall_curve(y, probabilities)
    roc_points = _thin(len(fpr))
    pr_points = _thin(len(precision))
    return {
        "roc": {
            "fpr": [round(float(v), 5) for v in fpr[roc_points]],
            "tpr": [round(float(v), 5) for v in tpr[roc_points]],
        },
        "pr": {
            "precision": [round(float(v), 5) for v in precision[pr_points]],
            "recall": [round(float(v), 5) for v in recall[pr_points]],
        },
    }


def _thin(size: int) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Indices of at most MAX_CURVE_POINTS evenly spread points, ends included."""
    if size <= MAX_CURVE_POINTS:
        return np.arange(size, dtype=np.int64)
    return np.unique(np.linspace(0, size - 1, MAX_CURVE_POINTS).round().astype(np.int64))


def draw_curves(
    axes: Any,
    kind: str,
    all_curves: Mapping[str, Mapping[str, Mapping[str, Sequence[float]]]],
    aucs: Mapping[str, float | None],
    base_rate: float | None,
    *,
    colour: Callable[[int], str] | None = None,
    label: Callable[[str], str] = str,
    fontsize: int = 8,
) -> None:
    """One ROC (`kind` "roc") or precision-recall ("pr") panel, one line per model, with
    the chance line or the base rate; shared by the ranking stage and the run report."""
    x_key, y_key = {"roc": ("fpr", "tpr"), "pr": ("recall", "precision")}[kind]
    for index, (name, curve) in enumerate(all_curves.items()):
        if kind not in curve:
            continue
        auc = aucs.get(name)
        text = f"{name} (AUC {auc:.3f})" if auc is not None and kind == "roc" else name
        style = {} if colour is None else {"color": colour(index)}
        axes.plot(curve[kind][x_key], curve[kind][y_key], label=label(text), **style)
    if kind == "roc":
        axes.plot([0, 1], [0, 1], linestyle=":", color="grey", label="chance")
    elif base_rate is not None:
        axes.axhline(base_rate, linestyle=":", color="grey", label="base rate")
    axes.set_xlabel(x_key)
    axes.set_ylabel(y_key)
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.legend(loc="lower right" if kind == "roc" else "upper right", fontsize=fontsize)


def plot_curves(
    all_curves: dict[str, dict[str, dict[str, list[float]]]],
    aucs: dict[str, float | None],
    base_rate: float,
    out: Path,
) -> list[str]:
    """Write `roc.png` and `pr.png` (one line per model); return the file names."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    written: list[str] = []
    for kind, title in (("roc", "ROC on test users"), ("pr", "Precision-recall on test users")):
        figure = Figure(figsize=(5, 4.5), dpi=100)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        draw_curves(axes, kind, all_curves, aucs, base_rate)
        axes.set_title(title)
        figure.tight_layout()
        figure.savefig(out / f"{kind}.png")
        written.append(f"{kind}.png")
    return written
