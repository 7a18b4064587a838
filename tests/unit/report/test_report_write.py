"""The run report on a fake run folder: sections, "not run", escaping, offline images."""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import pytest
from tests.unit.report.conftest import HOSTILE_MODEL, HOSTILE_QUERY, MATHTEXT_MODEL

import shelfwise.report
from shelfwise.errors import ArtifactError
from shelfwise.report import REPORT_FILE, SECTION_TITLES, write_report

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_IMAGE = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def _sections(page: str) -> dict[str, str]:
    """Section title -> its HTML (between its <h2> and the next section)."""
    found = re.findall(r"<section id=\"[^\"]+\"><h2>(.*?)</h2>(.*?)</section>", page, re.S)
    return dict(found)


def test_writes_report_html_in_the_run_folder(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    path = write_report(run)
    assert path == run / REPORT_FILE
    assert path.is_file()


def test_writes_every_section_of_a_complete_run(fake_report: str) -> None:
    page = fake_report
    sections = _sections(page)
    assert list(sections) == list(SECTION_TITLES)
    for title, body in sections.items():
        assert "not run" not in body, title
        assert "could not render" not in body, title
    assert page.startswith("<!DOCTYPE html>")


def test_section_contents(fake_report: str) -> None:
    sections = _sections(fake_report)
    assert "unknown-item" in sections["Validation"]
    assert "8,007" in sections["Validation"]
    assert "★ blend" in sections["Recommendation metrics"]
    assert "ndcg@5" in sections["Recommendation metrics"]
    assert "All 6 trials" in sections["AutoML trials"]
    gate = sections["Champion vs challenger"]
    assert "refused" in gate
    assert "FAIL" in gate
    assert "ndcg@10 fell by 0.0200" in gate
    assert "-0.0200" in gate  # side-by-side delta of ndcg@10
    assert "p99" in sections["Latency"]
    plan = sections["Plan: what ran, where and why"]
    assert "747,768 users × 200,000 items" in plan
    assert "more than max_users=50,000" in plan  # user_knn left out, with the reason
    assert "★ hybrid+lambdamart" in sections["Search relevance"]
    # the search stage's record: why it was served and what each variant costs
    assert "beats every unlearned variant" in sections["Search relevance"]
    assert "ms/query" in sections["Search relevance"]
    assert "23.25" in sections["Search relevance"]
    for bucket in ("zh", "en", "mixed", "head", "tail", "unseen", "3+ terms"):
        assert f"<td>{bucket}</td>" in sections["Search relevance"], bucket
    bundle = sections["Bundle size"]
    assert "hybrid" in bundle
    assert "shared tables" in bundle
    assert "recommender" in bundle
    compression = sections["Compression"]
    assert "int8" in compression
    assert "★ kept" in compression
    assert "13.60%" in compression


def test_missing_optional_inputs_say_not_run(fake_run: Path) -> None:
    for folder in ("gate", "compress", "package", "ranking"):
        shutil.rmtree(fake_run / folder)
    sections = _sections(write_report(fake_run).read_text(encoding="utf-8"))
    for title in ("Champion vs challenger", "Latency", "Bundle size", "Compression", "Click model"):
        assert "not run" in sections[title], title
    for title in (
        "Run",
        "Data summary",
        "Validation",
        "Recommendation metrics",
        "Search relevance",
    ):
        assert "not run" not in sections[title], title


def test_an_empty_run_folder_still_renders(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "empty"
    run.mkdir(parents=True)
    sections = _sections(write_report(run).read_text(encoding="utf-8"))
    assert list(sections) == list(SECTION_TITLES)
    for title, body in sections.items():
        if title != "Run":
            assert "not run" in body, title


def test_a_damaged_input_costs_only_its_own_section(fake_run: Path) -> None:
    (fake_run / "gate" / "gate.json").write_text(json.dumps({"decision": "promoted", "rules": 3}))
    (fake_run / "compress" / "compression.json").write_text("{not json")
    sections = _sections(write_report(fake_run).read_text(encoding="utf-8"))
    assert "does not match its schema" in sections["Champion vs challenger"]
    assert "cannot read compress/compression.json" in sections["Compression"]
    assert "★ blend" in sections["Recommendation metrics"]


def test_hostile_names_are_escaped(fake_report: str) -> None:
    page = fake_report
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&#x27;model&#x27;)&lt;/script&gt;" in page
    assert "&lt;script&gt;alert(&#x27;query&#x27;)&lt;/script&gt;" in page
    assert "&lt;b&gt;bad-timestamp&lt;/b&gt;" in page
    assert HOSTILE_MODEL not in page
    assert HOSTILE_QUERY not in page


def test_dollar_signs_in_names_do_not_break_plots(fake_report: str) -> None:
    # a model name with "$" would start matplotlib mathtext and fail to draw
    sections = _sections(fake_report)
    assert MATHTEXT_MODEL in sections["Recommendation metrics"]
    assert "could not render" not in sections["Recommendation metrics"]


def test_images_are_embedded_pngs(fake_report: str) -> None:
    page = fake_report
    images = _IMAGE.findall(page)
    # curves, trials, click model ROC/PR, gate curves, buckets, latency, bundle, trade-off
    assert len(images) == 8
    for encoded in images:
        assert base64.b64decode(encoded).startswith(_PNG_MAGIC)


def test_report_references_nothing_outside_the_file(fake_report: str) -> None:
    page = fake_report
    assert not re.search(r"https?://", page)
    assert not re.search(r"(?<![\w-])//[\w.-]+\.[a-z]{2,}", page)  # protocol-relative URLs
    assert "<script" not in page.lower()
    assert "<link" not in page.lower()
    assert "@import" not in page
    assert "url(" not in page
    for value in re.findall(r'\bsrc="([^"]*)"', page):
        assert value.startswith("data:image/png;base64,")
    for value in re.findall(r'\bhref="([^"]*)"', page):
        assert value.startswith("#")


def test_missing_run_folder_is_an_artifact_error(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="does not exist"):
        write_report(tmp_path / "runs" / "nope")


def test_public_api() -> None:
    assert shelfwise.report.__all__ == sorted(shelfwise.report.__all__)
    public = {name for name in vars(shelfwise.report) if not name.startswith("_")}
    public -= {"annotations"}
    assert public == set(shelfwise.report.__all__)
