"""Assemble the sections and write `runs/<run_id>/report.html`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Final

from shelfwise._internal.artifacts import atomic_write_text
from shelfwise.errors import ArtifactError, ShelfwiseError
from shelfwise.report import _collect, _release, _training
from shelfwise.report._bundle import collect_bundle
from shelfwise.report._html import Markup, Section, not_run, page, paragraph
from shelfwise.report._plan import render_plan
from shelfwise.report._search import collect_search

REPORT_FILE: Final = "report.html"

# (anchor, title, body builder); every builder reads its own inputs, so one missing or
# damaged file costs only its own section.
_SECTIONS: Final[tuple[tuple[str, str, Callable[[Path], Markup]], ...]] = (
    ("run", "Run", lambda d: _training.render_run(_collect.collect_run(d))),
    ("data", "Data summary", lambda d: _training.render_data(_collect.collect_data(d))),
    ("validation", "Validation", lambda d: _training.render_validation(_collect.collect_data(d))),
    ("plan", "Plan: what ran, where and why", render_plan),
    (
        "metrics",
        "Recommendation metrics",
        lambda d: _training.render_metrics(_collect.collect_metrics(d)),
    ),
    ("trials", "AutoML trials", lambda d: _training.render_trials(_collect.collect_tuning(d))),
    ("gate", "Champion vs challenger", lambda d: _release.render_gate(_collect.collect_gate(d))),
    (
        "click-model",
        "Click model",
        lambda d: _training.render_click_model(_collect.collect_click_model(d)),
    ),
    ("search", "Search relevance", lambda d: _release.render_search(collect_search(d))),
    ("latency", "Latency", lambda d: _release.render_latency(_collect.collect_gate(d))),
    ("bundle", "Bundle size", lambda d: _release.render_bundle(collect_bundle(d))),
    (
        "compression",
        "Compression",
        lambda d: _release.render_compression(_collect.collect_compression(d)),
    ),
)
SECTION_TITLES: Final = tuple(title for _, title, _ in _SECTIONS)


def _section(run_dir: Path, anchor: str, title: str, build: Callable[[Path], Markup]) -> Section:
    try:
        body = build(run_dir)
    except _collect.NotRun as missing:
        body = not_run(missing.reason)
    except (ShelfwiseError, OSError, ValueError, KeyError, TypeError) as exc:
        # A damaged input must not cost the whole report: say what failed, here.
        body = paragraph(f"could not render this section: {type(exc).__name__}: {exc}", "bad")
    return Section(anchor=anchor, title=title, body=body)


def write_report(run_dir: Path) -> Path:
    """Write `run_dir / "report.html"`, a single static page, and return its path.

    The page holds every section of the run report (data, validation, model metrics,
    AutoML trials, champion vs challenger, click model curves, search buckets,
    latency, bundle size, compression); a section whose input is missing says
    "not run". Plots are embedded PNGs, the CSS is inline and nothing is fetched,
    so the file opens offline and can be mailed or attached to CI as it is.

    Args:
        run_dir: the run folder, `<home>/runs/<run_id>/`.

    Returns:
        The path of the written report.

    Raises:
        ArtifactError: `run_dir` is not a folder.

    Example:
        >>> from shelfwise.report import write_report
        >>> path = write_report(home / "runs" / run_id)  # doctest: +SKIP
    """
    if not run_dir.is_dir():
        raise ArtifactError(
            f"run folder {run_dir} does not exist: pass runs/<run_id>/ of a finished or "
            "stopped run (see `shelfwise run`)"
        )
    sections = [_section(run_dir, anchor, title, build) for anchor, title, build in _SECTIONS]
    info = None
    try:
        info = _collect.collect_run(run_dir)
    except (ShelfwiseError, OSError, ValueError):
        info = None
    run_id = info.run_id if info is not None else run_dir.name
    subtitle = f"status {info.status if info is not None else 'unknown'} · model version " + (
        str(info.bundle_version) if info is not None and info.bundle_version is not None else "–"
    )
    target = run_dir / REPORT_FILE
    atomic_write_text(target, page(f"shelfwise run {run_id}", subtitle, sections))
    return target


__all__ = ["REPORT_FILE", "SECTION_TITLES", "write_report"]
