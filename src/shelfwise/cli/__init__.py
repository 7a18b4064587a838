"""Command-line interface (Typer). Thin: parsing, printing, and calls into the package."""
