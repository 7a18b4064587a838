"""The console's readers, on hand-made inputs whose answers are known."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shelfwise.serve.console.audit import MAX_ROWS, catalog_changes
from shelfwise.serve.console.live import histogram_quantile, version_kpis
from shelfwise.serve.console.versions import gate_of, metrics_chart
from shelfwise.serve.metrics import ServeMetrics


def _write_changes(path: Path, versions: range, torn: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps({"op": "upsert", "raw_item_id": f"sku-{v}", "fields": {"price": v},
                    "version": v, "origin": "a"})
        for v in versions
    ]  # fmt: skip
    path.write_text("\n".join(lines) + ('\n{"op": "ups' if torn else "\n"))


def test_the_newest_catalog_changes_come_from_the_newest_partitions(tmp_path: Path) -> None:
    _write_changes(tmp_path / "date=2026-01-01/hour=00/catalog-a.jsonl", range(1, 61))
    _write_changes(tmp_path / "date=2026-01-01/hour=01/catalog-b.jsonl", range(100, 130))
    _write_changes(tmp_path / "date=2026-12-06/hour=13/catalog-c.jsonl", range(1000, 1040))
    _write_changes(
        tmp_path / "date=2026-12-06/hour=13/catalog-d.jsonl", range(2000, 2100), torn=True
    )
    rows = catalog_changes(tmp_path)
    assert len(rows) == MAX_ROWS
    # the newest 50 of 2000..2099, newest first; the torn line and older hours unread
    assert [row.raw_item_id for row in rows] == [f"sku-{v}" for v in range(2099, 2049, -1)]
    assert rows[0].fields == "price=2099"
    assert catalog_changes(tmp_path / "missing") == []


def test_histogram_quantile_interpolates_within_a_bucket() -> None:
    cumulative = {0.01: 50.0, 0.1: 100.0, float("inf"): 100.0}
    assert histogram_quantile(cumulative, 0.5) == pytest.approx(0.01)
    assert histogram_quantile(cumulative, 0.99) == pytest.approx(0.01 + 0.09 * 49 / 50)
    assert histogram_quantile({float("inf"): 0.0}, 0.5) is None


def test_kpis_per_version_are_per_served_list() -> None:
    metrics = ServeMetrics()
    metrics.set_model("7", "shop", "f" * 12, role="champion")
    for _ in range(4):
        metrics.observe_served("recommend", "7", 10)
        metrics.observe_model("recommend", "7", "champion", 0.004)
    metrics.observe_attributed("click", "7")
    metrics.observe_attributed("click", "7")  # a second click on the same list
    metrics.observe_attributed_list("click", "7")
    metrics.observe_attributed("purchase", "7")
    (row,) = version_kpis(metrics.registry)
    assert (row.version, row.role, row.lists, row.impressions) == ("7", "champion", 4, 40)
    assert row.ctr == pytest.approx(0.5)
    assert row.clicked_share == pytest.approx(0.25)  # what canary judge tests
    assert row.purchased_share == 0.0
    assert row.conversion == pytest.approx(0.25)
    assert row.error_rate == 0.0
    assert row.p50_ms == pytest.approx(2.5 + 2.5 * 2 / 4)  # rank 2 of 4 in the (2.5, 5] ms bucket


def test_a_gate_document_belongs_to_the_version_it_judged(tmp_path: Path) -> None:
    gate = tmp_path / "runs" / "run-9" / "gate" / "gate.json"
    gate.parent.mkdir(parents=True)
    gate.write_text(json.dumps({"decision": "promoted", "challenger": {"version": "3"}}))
    assert gate_of(tmp_path, "3", ["run-9"])["decision"] == "promoted"  # type: ignore[index]
    assert gate_of(tmp_path, "4", ["run-9"]) is None
    assert gate_of(tmp_path, "3", ["../run-9", "nothing"]) is None


def test_the_chart_draws_quality_metrics_first_with_gaps() -> None:
    chart = metrics_chart([("1", {"ndcg@10": 0.3, "size_mb": 9.0}), ("2", {"size_mb": 8.0})])
    assert chart["labels"] == ["1", "2"]
    assert chart["series"][0] == {"name": "ndcg@10", "values": [0.3, None]}
