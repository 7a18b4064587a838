"""The row-count drop check: compare this run's accepted rows with the last good run.

A source whose accepted rows fall sharply against the previous complete run that read
the same path is usually a partial export or a broken upstream job, not a smaller
shop; training on it would quietly ship a worse model. Like TensorFlow Data
Validation's skew/drift checks, the run stops before training and says so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shelfwise.config import ShelfwiseConfig
from shelfwise.errors import RowDropError

_COMPLETE = "complete"


def previous_counts(config: ShelfwiseConfig, run_dir: Path) -> dict[str, tuple[str, int]]:
    """Per source: (run id, accepted rows) of the latest complete earlier run whose
    config read the same path; sources without one are left out."""
    current = config.model_dump(mode="json")["data"]
    found: dict[str, tuple[str, int]] = {}
    runs = sorted((p for p in run_dir.parent.iterdir() if p.is_dir()), reverse=True)
    for other in runs:
        if other == run_dir or other.name >= run_dir.name:
            continue
        record = _read(other / "run.json")
        if record.get("status") != _COMPLETE:
            continue
        counts = _read(other / "validate" / "manifest.json").get("row_counts", {})
        data = (record.get("config") or {}).get("data") or {}
        for kind in ("catalog", "events", "queries"):
            mine, theirs = current.get(kind), data.get(kind)
            if kind in found or not mine or not theirs or mine["path"] != theirs["path"]:
                continue
            accepted = counts.get(f"{kind}_accepted")
            if isinstance(accepted, int):
                found[kind] = (other.name, accepted)
    return found


def check_row_drop(config: ShelfwiseConfig, run_dir: Path, report: dict[str, Any]) -> None:
    """Raise RowDropError when a source's accepted rows fell by more than
    `data.max_row_drop_share` against the last complete run on the same path.

    The comparison is recorded in `report["row_drop"]` either way.
    """
    share = config.data.max_row_drop_share
    if share >= 1.0 or not run_dir.parent.is_dir():
        return
    compared: dict[str, Any] = {}
    for kind, (run_id, before) in previous_counts(config, run_dir).items():
        now = int(report["sources"].get(kind, {}).get("accepted", 0))
        if kind not in report["sources"] or before <= 0:
            continue
        drop = 1.0 - now / before
        compared[kind] = {"previous_run": run_id, "previous": before, "now": now, "drop": drop}
        if drop > share:
            path = getattr(getattr(config.data, kind), "path", "?")
            raise RowDropError(
                f"{kind}: {now:,} rows accepted now against {before:,} in run {run_id}, the "
                f"last complete run on {path}: a drop of {drop:.1%}, more than "
                f"data.max_row_drop_share {share:.0%}. A partial export or a broken upstream "
                f"job? Check the source; if the drop is expected, accept it with "
                f"`--set data.max_row_drop_share=1` (or SHELFWISE_DATA__MAX_ROW_DROP_SHARE=1)"
            )
    report["row_drop"] = compared


def _read(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}
