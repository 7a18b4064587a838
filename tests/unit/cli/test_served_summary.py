"""The run's final `served` summary reads the search stage's one record (issue 16)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from rich.console import Console

from shelfwise.cli.pipeline import search_variants_table, served_lines
from shelfwise.search.selection import served_record

REPORT = {
    "status": "evaluated",
    "labels": "labelled_queries",
    "groups": 40,
    "select_metric": "full/ndcg@10",
    "served": "bm25",
    "selection_reason": "within 1% of hybrid on full/ndcg@10 and faster",
    "latency_p50_ms": {"bm25": 1.9, "hybrid": 19.0},
    "variants": {
        "bm25": {"rerank": {"ndcg@10": 0.901}, "full": {"ndcg@10": 0.382, "recall@10": 0.4}},
        "hybrid": {"rerank": {"ndcg@10": 0.905}, "full": {"ndcg@10": 0.384, "recall@10": 0.4}},
    },
}


def _render(renderable: object) -> str:
    console = Console(width=200, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_summary_and_table_name_the_variant_the_search_stage_served(tmp_path: Path) -> None:
    (tmp_path / "search.json").write_text(json.dumps(REPORT))
    record = served_record(tmp_path)
    assert record is not None
    package = SimpleNamespace(extra={"components": {"recommender": "ease", "search": "hybrid"}})
    lines = served_lines({"selected": {"recommender": "ease"}}, {"package": package}, record)
    text = "\n".join(lines)
    assert "recommendations: ease" in text
    # the record's pick, not the bundle folder's name ("hybrid")
    assert "search: bm25 (full/ndcg@10 0.3820 on 40 held-out queries;" in text
    table = search_variants_table(tmp_path)
    assert table is not None
    rendered = _render(table)
    starred = [line for line in rendered.splitlines() if "★" in line]
    assert len(starred) == 1
    assert "bm25" in starred[0]
    assert "1.9" in starred[0]


def test_a_shop_without_events_or_search_says_so(tmp_path: Path) -> None:
    assert search_variants_table(tmp_path) is None
    lines = served_lines({}, {}, None)
    assert lines[1].strip() == "recommendations: none (no events to learn from)"
    assert len(lines) == 2


def test_a_session_split_run_names_its_session_model() -> None:
    package = SimpleNamespace(extra={"components": {"recommender": "ease", "session": "stan"}})
    metrics = {"sessions": {"chosen": "stan(l1=4,l3=4,f=1)"}}
    lines = served_lines(metrics, {"package": package}, None)
    assert "  visits (history, session_id): stan(l1=4,l3=4,f=1)" in lines
