"""`python -m shelfwise` runs the CLI."""

from __future__ import annotations

from shelfwise.cli.main import main

main()
