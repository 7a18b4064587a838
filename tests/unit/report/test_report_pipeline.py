"""The report of a real pipeline run on the tiny generated shop (slow: trains models)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import shop_config

from shelfwise.pipeline import run_pipeline
from shelfwise.report import SECTION_TITLES, write_report


@pytest.mark.slow
def test_report_of_a_real_run(tiny_shop: Any, tmp_path: Path) -> None:
    config = shop_config(tiny_shop, tmp_path / "state", **{"search.folds": 3})
    outcome = run_pipeline(config, use_cache=False, until="search")
    page = write_report(outcome.run_dir).read_text(encoding="utf-8")
    sections = dict(re.findall(r"<section id=\"[^\"]+\"><h2>(.*?)</h2>(.*?)</section>", page, re.S))
    assert list(sections) == list(SECTION_TITLES)
    for title in (
        "Data summary",
        "Validation",
        "Recommendation metrics",
        "AutoML trials",
        "Click model",
        "Search relevance",
    ):
        assert "not run" not in sections[title], title
        assert "could not render" not in sections[title], title
    assert "Relevance by query bucket" in sections["Search relevance"]
    assert "data:image/png;base64," in sections["Click model"]
    assert not re.search(r"https?://", page)
