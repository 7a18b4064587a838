"""Which search variant is served: full-catalog metric first, latency within a tolerance."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from shelfwise.search.selection import select_variant, served_record


def _reports(**values: tuple[float, float]) -> dict[str, dict[str, Any]]:
    """variant -> (rerank ndcg@10, full ndcg@10)."""
    return {
        name.replace("_", "+"): {"rerank": {"ndcg@10": rerank}, "full": {"ndcg@10": full}}
        for name, (rerank, full) in values.items()
    }


FAST = {"bm25": 2.0, "dense": 15.0, "hybrid": 19.0, "hybrid+lambdamart": 25.0}


def test_auto_picks_by_the_full_catalog_metric_where_rerank_disagrees() -> None:
    # rerank puts hybrid first (every variant within 0.004), the full catalog BM25
    reports = _reports(bm25=(0.901, 0.382), dense=(0.903, 0.300), hybrid=(0.905, 0.371))
    auto = select_variant(reports, FAST)
    assert auto.metric == "full/ndcg@10"
    assert auto.served == "bm25"
    assert auto.value == pytest.approx(0.382)
    rerank = select_variant(reports, FAST, select_metric="rerank/ndcg@10", tolerance=0.0)
    assert rerank.served == "hybrid"


def test_within_the_tolerance_the_faster_variant_is_served() -> None:
    reports = _reports(bm25=(0.8, 0.800), hybrid=(0.8, 0.806))
    chosen = select_variant(reports, FAST, tolerance=0.01)
    assert chosen.best == "hybrid"
    assert chosen.served == "bm25"
    assert set(chosen.tied) == {"bm25", "hybrid"}
    assert "faster" in chosen.reason
    # outside the tolerance quality wins, however slow
    assert select_variant(_reports(bm25=(0.8, 0.80), hybrid=(0.8, 0.85)), FAST).served == "hybrid"
    # no tolerance: the best
    assert select_variant(reports, FAST, tolerance=0.0).served == "hybrid"


def test_the_learned_ranker_is_not_served_when_it_loses_or_only_ties() -> None:
    loses = _reports(bm25=(0.80, 0.38), hybrid=(0.81, 0.37), hybrid_lambdamart=(0.90, 0.28))
    assert select_variant(loses, FAST).served == "bm25"
    ties = _reports(bm25=(0.80, 0.80), hybrid_lambdamart=(0.90, 0.805))
    assert select_variant(ties, FAST).served == "bm25"
    # slower but clearly better on held-out queries: served
    wins = _reports(bm25=(0.80, 0.73), hybrid=(0.8, 0.77), hybrid_lambdamart=(0.86, 0.81))
    chosen = select_variant(wins, FAST)
    assert chosen.served == "hybrid+lambdamart"
    assert "beats every unlearned variant" in chosen.reason


def test_served_record_reads_the_stage_report_for_every_console_line(tmp_path: Path) -> None:
    report = {
        "status": "evaluated",
        "labels": "labelled_queries",
        "groups": 261,
        "select_metric": "full/ndcg@10",
        "served": "hybrid+lambdamart",
        "selection_reason": "it wins",
        "variants": _reports(bm25=(0.80, 0.73), hybrid_lambdamart=(0.86, 0.8123)),
    }
    (tmp_path / "search.json").write_text(json.dumps(report))
    record = served_record(tmp_path)
    assert record is not None
    assert record.served == "hybrid+lambdamart"
    assert record.value == pytest.approx(0.8123)
    assert record.line() == (
        "hybrid+lambdamart (full/ndcg@10 0.8123 on 261 held-out queries; it wins)"
    )
    (tmp_path / "search.json").write_text(
        json.dumps({"status": "unevaluated", "served": "hybrid", "reason": "no labels"})
    )
    unevaluated = served_record(tmp_path)
    assert unevaluated is not None
    assert unevaluated.line() == "hybrid (no labels)"
    assert served_record(tmp_path / "missing") is None


class _FakeHybrid:
    """What `_rows` reads of a hybrid model: candidates, feature names and features."""

    candidates = 3
    feature_names = ("item",)

    def features(self, view: Any, items: Any, history: Any) -> Any:
        return np.asarray(items, dtype=np.float32).reshape(-1, 1)


def test_unjudged_retrieved_candidates_enter_training_lists_as_weak_negatives() -> None:
    from shelfwise.search.stage import _Group, _rows

    group = _Group(
        query="copper pipe",
        user=None,
        items=np.array([7, 2], dtype=np.int64),
        grades=np.array([3, 1], dtype=np.int64),
        weights=np.ones(2),
    )
    view = SimpleNamespace(fused=np.array([2, 5, 9, 4, 8], dtype=np.int64))
    rows = _rows(_FakeHybrid(), [group], [view], None, depth=4, weak=(0, 0.5))  # type: ignore[arg-type]
    assert rows.items.tolist() == [7, 2, 5, 9, 4]
    assert rows.judged.tolist() == [True, True, False, False, False]
    assert rows.grades.tolist() == [3, 1, 0, 0, 0]
    assert rows.weights.tolist() == [1.0, 1.0, 0.5, 0.5, 0.5]
    # what served re-ranking sees (the top `candidates` fused) is what full mode orders
    assert rows.in_fused.tolist() == [False, True, True, True, False]
    # a training depth under the served candidates: the rest are scored, not trained on
    shallow = _rows(_FakeHybrid(), [group], [view], None, depth=2, weak=(0, 0.5))  # type: ignore[arg-type]
    assert shallow.items.tolist() == [7, 2, 5, 9]
    assert shallow.weights.tolist() == [1.0, 1.0, 0.5, 0.0]
    judged_only = _rows(_FakeHybrid(), [group], [view], None, depth=4, weak=(0, 0.0))  # type: ignore[arg-type]
    assert (judged_only.weights > 0).tolist() == [True, True, False, False, False]
