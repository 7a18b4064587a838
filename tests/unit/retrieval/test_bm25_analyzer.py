"""BM25 indexes record their analyzer: old indexes keep reading queries their way (issue 16)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shelfwise.errors import ArtifactError
from shelfwise.retrieval.bm25 import BM25Search
from shelfwise.text.tokenize import ANALYZER_VERSION

TITLES: dict[str, list[str | None]] = {
    "title": ["Mueller 1/2 in. Copper Pipe", "Ryobi 12V Lithium Battery", "Garden Hose 50 ft."]
}
PIPE, BATTERY, HOSE = range(3)


def best(index: BM25Search, query: str) -> int:
    return int(index.score(query).argmax())


def test_units_written_differently_find_the_product(tmp_path: Path) -> None:
    index = BM25Search(field_weights={"title": 1.0}, typo_tolerance=False)
    index.fit(TITLES)
    assert best(index, "1/2 inch copper") == PIPE
    assert best(index, "12 volt battery") == BATTERY
    index.save(tmp_path / "bm25")
    params = json.loads((tmp_path / "bm25" / "params.json").read_text())
    assert params["analyzer"] == ANALYZER_VERSION
    loaded = BM25Search.load(tmp_path / "bm25")
    assert loaded.analyzer == ANALYZER_VERSION
    assert best(loaded, "12 volt battery") == BATTERY


def test_an_index_saved_before_analyzer_versions_reads_queries_as_it_was_built(
    tmp_path: Path,
) -> None:
    old = BM25Search(field_weights={"title": 1.0})
    old.analyzer = 1  # what every index saved before issue 16 was built with
    old.fit(TITLES)
    old.save(tmp_path / "bm25")
    params_file = tmp_path / "bm25" / "params.json"
    params = json.loads(params_file.read_text())
    del params["analyzer"]
    params_file.write_text(json.dumps(params))
    loaded = BM25Search.load(tmp_path / "bm25")
    assert loaded.analyzer == 1
    assert loaded.query_tokens("12V battery")[:2] == ["12v", "batteri"]  # version-1 tokens
    assert best(loaded, "12V battery") == BATTERY


def test_an_unknown_analyzer_is_refused(tmp_path: Path) -> None:
    index = BM25Search(field_weights={"title": 1.0}, typo_tolerance=False)
    index.fit(TITLES)
    index.save(tmp_path / "bm25")
    params_file = tmp_path / "bm25" / "params.json"
    params = json.loads(params_file.read_text())
    params_file.write_text(json.dumps({**params, "analyzer": 9}))
    with pytest.raises(ArtifactError, match="analyzer version 9.*retrain the index"):
        BM25Search.load(tmp_path / "bm25")
