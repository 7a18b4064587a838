"""Distilling the LightGBM click model into smaller boosters (batch role).

Students (fewer, smaller trees) are trained on the served click model's probabilities
of the ranking stage's own training rows (`shelfwise.ranking.distill`), then measured
on its held-out valid users like the other variants:

* quality: re-rank NDCG@10 of the candidates ordered by the student (the ranking
  stage's decision metric) — the selection metric — and AUC against the click labels;
  a student is within budget when both lose at most the budget;
* size: bytes of the saved click-model folder (the item and user tables included,
  which no student shrinks) and, in `details`, of the booster file alone;
* latency: median milliseconds to score one user's candidate list, timed in turn
  with the teacher on the same users; a student over the latency budget
  (`shelfwise.compress.select.LatencyBudget`) is not chosen.

The chosen student is saved as a complete click model (`ClickModel.load` reads it):
the teacher's tables, its own decision threshold (best F1 on the held-out users) and
re-rank flag (re-ranking beats the retriever's order there), as the ranking stage
decides them. An MLP click model is measured but not distilled (noted in the report):
its weights are a few kB next to the item and user tables a student would keep.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import numpy as np

from shelfwise.compress.measure import folder_bytes, paired_median_ms
from shelfwise.compress.select import (
    BASELINE,
    LatencyBudget,
    VariantResult,
    choose_with_reason,
    reject,
    relative_loss,
    result,
)
from shelfwise.ranking.model import LIGHTGBM_FILE, MLP_FILE, ClickModel, LightGBMScorer

COMPONENT: Final = "click_model"
METRIC: Final = "ndcg@10"
METRIC_NAME: Final = "re-rank ndcg@10 (held-out valid users)"


@dataclass(frozen=True)
class StudentSpec:
    """One student's shape: leaves per tree and its share of the teacher's trees."""

    num_leaves: int
    tree_share: float

    def max_trees(self, teacher_trees: int) -> int:
        """Tree budget: `tree_share` of the teacher's trees, at least 10."""
        return max(10, round(teacher_trees * self.tree_share))


STUDENTS: Final = (StudentSpec(15, 0.5), StudentSpec(7, 0.5), StudentSpec(4, 0.25))


@dataclass(frozen=True)
class _Scored:
    size_bytes: int
    model_file_bytes: int
    ndcg: float
    retriever_ndcg: float
    auc: float
    latency_ms: float


def distill_click_model(
    *,
    features: Path,
    retrieval: Path,
    evaluate: Path,
    ranking: Path,
    out: Path,
    budget: float,
    seed: int,
    latency_users: int,
    students: tuple[StudentSpec, ...] = STUDENTS,
    latency_budget: LatencyBudget | None = None,
) -> dict[str, Any] | None:
    """Train, measure and choose students of the click model; None without one.

    The chosen student (if any is within the quality and latency budgets and
    smaller) is saved to `out`.
    """
    from shelfwise.ranking.distill import fit_lightgbm_student, ranking_pairs

    teacher_folder = ranking / "model"
    if not (teacher_folder / "features.json").is_file():
        return None
    teacher = ClickModel.load(teacher_folder)
    pairs = ranking_pairs(
        features=features, retrieval=retrieval, evaluate=evaluate, ranking=ranking
    )
    if pairs is None:
        return None
    fit_teacher = teacher.probabilities(pairs.fit.features)
    holdout_teacher = teacher.probabilities(pairs.holdout.features)
    base = _score(teacher, pairs, holdout_teacher, latency_users)
    if not isinstance(teacher.scorer, LightGBMScorer):
        weights = (teacher_folder / MLP_FILE).stat().st_size
        return _component(
            teacher_folder,
            base,
            [],
            BASELINE,
            note=f"the click model is the MLP: not distilled (its weights are {weights:,} of "
            f"the folder's {base.size_bytes:,} bytes; the item and user tables are the rest)",
        )
    teacher_trees = int(teacher.scorer.booster.num_trees())
    results: list[VariantResult] = []
    built: dict[str, ClickModel] = {}
    for spec in students:
        fitted = fit_lightgbm_student(
            pairs.fit.features,
            fit_teacher,
            pairs.holdout.features,
            holdout_teacher,
            seed=seed,
            num_leaves=spec.num_leaves,
            max_trees=spec.max_trees(teacher_trees),
        )
        scorer = fitted.scorer
        if not isinstance(scorer, LightGBMScorer):  # pragma: no cover - always LightGBM
            continue
        student = _as_served(teacher, scorer, pairs)
        probabilities = student.probabilities(pairs.holdout.features)
        scored = _score(student, pairs, probabilities, latency_users)
        teacher_ms, student_ms = _paired_latency_ms(teacher, student, pairs.holdout, latency_users)
        trees = int(scorer.booster.num_trees())
        name = f"distill_{spec.num_leaves}leaves_{trees}trees"
        auc_loss = relative_loss(base.auc, scored.auc)
        variant = result(
            name,
            "distill",
            size_bytes=scored.size_bytes,
            metric=scored.ndcg,
            latency_ms=student_ms,
            baseline_size=base.size_bytes,
            baseline_metric=base.ndcg,
            budget=budget,
            baseline_latency_ms=teacher_ms,
            latency_budget=latency_budget,
            notes=f"LightGBM student on the teacher's P(click), {trees} trees of "
            f"<= {spec.num_leaves} leaves (teacher {teacher_trees} trees)",
            details={
                "auc": round(scored.auc, 6),
                "auc_relative_loss": round(auc_loss, 6),
                "teacher_correlation": round(
                    float(np.corrcoef(probabilities, holdout_teacher)[0, 1]), 4
                ),
                "model_file_bytes": scored.model_file_bytes,
                "model_file_ratio": round(base.model_file_bytes / scored.model_file_bytes, 3),
                "trees": trees,
                "leaves": spec.num_leaves,
                "rerank": scored.ndcg > scored.retriever_ndcg,
            },
        )
        # AUC must hold too: the click model is also served as a probability
        if auc_loss > budget:
            variant = reject(
                variant, f"auc loses {auc_loss:.2%} (compress.budget_relative {budget:.2%})"
            )
        results.append(variant)
        built[name] = student
    chosen, reason = choose_with_reason(results, base.size_bytes)
    if chosen != BASELINE:
        built[chosen].save(out)
        ClickModel.load(out)  # it must load as served
    return _component(teacher_folder, base, results, chosen, reason=reason)


def _as_served(teacher: ClickModel, scorer: LightGBMScorer, pairs: Any) -> ClickModel:
    """The student with the teacher's tables, its own threshold and re-rank flag."""
    from shelfwise.evaluate.classifier import best_f1_threshold
    from shelfwise.ranking.distill import rerank_metrics

    probabilities = scorer.probabilities(pairs.holdout.features)
    metrics = rerank_metrics(pairs.holdout, probabilities, pairs.targets, [10])
    return replace(
        teacher,
        scorer=scorer,
        threshold=best_f1_threshold(pairs.holdout.labels, probabilities),
        rerank=bool(metrics["reranked"][METRIC] > metrics["retriever"][METRIC]),
        info={**teacher.info, "distilled_from": "lightgbm click model", "kind": "distill"},
    )


def _score(
    model: ClickModel,
    pairs: Any,
    probabilities: np.ndarray[Any, Any],
    latency_users: int,
) -> _Scored:
    from shelfwise.evaluate.classifier import classifier_metrics
    from shelfwise.ranking.distill import rerank_metrics

    metrics = rerank_metrics(pairs.holdout, probabilities, pairs.targets, [10])
    auc = classifier_metrics(pairs.holdout.labels, probabilities, 0.5)["auc"] or 0.0
    with tempfile.TemporaryDirectory(prefix="shelfwise-distill-") as tmp:
        folder = Path(tmp) / "model"
        model.save(folder)
        model_path = folder / (LIGHTGBM_FILE if model.kind == "lightgbm" else MLP_FILE)
        size, model_file = folder_bytes(folder), model_path.stat().st_size
    return _Scored(
        size_bytes=size,
        model_file_bytes=model_file,
        ndcg=float(metrics["reranked"][METRIC]),
        retriever_ndcg=float(metrics["retriever"][METRIC]),
        auc=float(auc),
        latency_ms=_latency_ms(model, pairs.holdout, latency_users),
    )


def _paired_latency_ms(
    teacher: ClickModel, student: ClickModel, holdout: Any, users: int
) -> tuple[float, float]:
    """(teacher, student) median milliseconds per user's candidate rows, timed in turn."""
    rows = [
        holdout.features[holdout.rows == row]
        for row in range(min(users, holdout.candidates.users.size))
    ]
    return paired_median_ms(
        lambda i: teacher.probabilities(rows[i]),
        lambda i: student.probabilities(rows[i]),
        len(rows),
    )


def _latency_ms(model: ClickModel, holdout: Any, users: int) -> float:
    """Median milliseconds to score one user's candidate rows (features precomputed)."""
    times: list[float] = []
    for row in range(min(users, holdout.candidates.users.size)):
        features = holdout.features[holdout.rows == row]
        started = time.perf_counter()
        model.probabilities(features)
        times.append((time.perf_counter() - started) * 1000.0)
    return round(statistics.median(times), 4) if times else 0.0


def _component(
    teacher_folder: Path,
    base: _Scored,
    results: list[VariantResult],
    chosen: str,
    *,
    note: str = "",
    reason: str = "",
) -> dict[str, Any]:
    baseline: dict[str, Any] = {
        "size_bytes": folder_bytes(teacher_folder),
        "metric": round(base.ndcg, 6),
        "latency_ms": base.latency_ms,
        "auc": round(base.auc, 6),
        "retriever_metric": round(base.retriever_ndcg, 6),
        "model_file_bytes": base.model_file_bytes,
    }
    component: dict[str, Any] = {
        "metric_name": METRIC_NAME,
        "baseline": baseline,
        "chosen": chosen,
        "variants": [vars(v) for v in results],
    }
    if reason:
        component["reason"] = reason
    if note:
        component["note"] = note
    return component


__all__ = ["COMPONENT", "STUDENTS", "StudentSpec", "distill_click_model"]
