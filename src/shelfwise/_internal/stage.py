"""What the pipeline runner hands a stage, and what a stage hands back.

A stage is a function `run(ctx: StageContext) -> StageResult`. It reads completed
upstream folders from `ctx.inputs`, writes every output file into `ctx.out` (a
temporary folder the runner renames into place afterwards, with the manifest), and
reports row counts and anything worth recording in the manifest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shelfwise.config import ShelfwiseConfig


@dataclass(frozen=True)
class StageContext:
    """Inputs of one stage run."""

    config: ShelfwiseConfig
    run_dir: Path  # runs/<run_id>/
    inputs: dict[str, Path]  # upstream stage name -> its completed folder
    out: Path  # write outputs here (temporary; renamed into place on success)


@dataclass
class StageResult:
    """What a stage reports back; recorded in its manifest."""

    row_counts: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    summary: str = ""  # one line for the CLI, e.g. "100,000 events accepted, 12 quarantined"
