"""Command-line interface (Typer). Thin: parsing, printing, and calls into the package.

The entry point is `shelfwise.cli.main:main`; one module per command group.
"""

from __future__ import annotations

__all__: list[str] = []
