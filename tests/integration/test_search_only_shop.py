"""A shop with a catalog and labelled queries but no events (like CrowdFlower)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from fastapi.testclient import TestClient

from shelfwise.config import load_config
from shelfwise.pipeline import run_pipeline
from shelfwise.serve import ServeSettings, create_app

ROWS = [
    ("red dress", "Red Summer Dress 红色连衣裙", "light cotton dress", 4),
    ("red dress", "Blue Denim Jacket", "", 1),
    ("red dress", "Red Evening Gown", "long red dress", 3),
    ("laptop", "联想 轻薄笔记本电脑 银色 Lenovo Laptop", "14 inch", 4),
    ("laptop", "Laptop Sleeve 电脑包", "fits 14 inch laptops", 2),
    ("laptop", "Red Summer Dress 红色连衣裙", "light cotton dress", 1),
    ("laptop", "Laptop Sleeve 电脑包", "fits 14 inch laptops", 2),  # duplicate label
]


def test_search_only_pipeline_and_service(tmp_path: Path) -> None:
    path = tmp_path / "judged.csv.gz"
    lines = ["query,product_title,product_description,median_relevance"]
    lines += [",".join(json.dumps(str(v), ensure_ascii=False) for v in row) for row in ROWS]
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    source = {"path": str(path), "id_from": ["product_title", "product_description"]}
    config = load_config(
        None,
        environ={},
        overrides={
            "home": str(tmp_path / "state"),
            "data.catalog": {
                **source,
                "mapping": {"product_title": "title", "product_description": "description"},
            },
            "data.queries": {**source, "mapping": {"median_relevance": "relevance"}},
            "data.max_rejected_share": 0.2,
            "evaluate.relevance_offset": 1,
            "models.dense.cache_dir": str(tmp_path.parent / "shelfwise-test-embeddings"),
        },
    )
    outcome = run_pipeline(config)
    metrics = json.loads((outcome.run_dir / "evaluate" / "metrics.json").read_text())
    assert metrics["recommendation"]["test"] == {}
    assert metrics["search"]["bm25"]["queries"] == 2
    assert metrics["search"]["bm25"]["rerank"]["ndcg@10"] > 0.8
    report = json.loads((outcome.run_dir / "validate" / "report.json").read_text())
    queries = report["sources"]["queries"] if "sources" in report else report["queries"]
    assert queries["quarantined"] == 1  # the duplicate (query, item) label

    assert outcome.bundle_path is not None
    settings = ServeSettings(bundle_path=outcome.bundle_path, omp_threads=0, freeze_heap=False)
    with TestClient(create_app(settings)) as client:
        found = client.post("/v1/search", json={"query": "笔记本电脑", "k": 2}).json()
        assert found["items"][0]["title"].startswith("联想")
        answer = client.post("/v1/recommend", json={"user_id": "someone", "k": 2})
        assert answer.status_code == 200
        assert answer.json()["fallback"] == "popular"
