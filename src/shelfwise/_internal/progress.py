"""Progress bars for long steps: rich when a terminal user is watching, silent otherwise.

The CLI turns bars on with `enable(True)`; library calls and tests stay quiet.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")
_enabled = False


def enable(on: bool) -> None:
    """Turn progress bars on or off for this process."""
    global _enabled
    _enabled = on


def enabled() -> bool:
    """Whether progress bars are shown."""
    return _enabled


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate over `items`, showing a progress bar when enabled."""
    if not _enabled:
        yield from items
        return
    columns = (
        TextColumn("  {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=True) as progress:
        yield from progress.track(items, total=total, description=description)
