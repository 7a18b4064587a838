"""`shelfwise.settings`: the one table of environment variables agrees with the code."""

from __future__ import annotations

from shelfwise.config import PROCESS_VARIABLES, ServeSettings, config_key_of
from shelfwise.settings import SKIPPED, environment_table, serve_variables


def test_serve_part_of_the_table_is_exactly_the_model_fields() -> None:
    rows = serve_variables()
    names = [row.name for row in rows]
    assert names == [f"SHELFWISE_SERVE_{field.upper()}" for field in ServeSettings.model_fields]
    for row, field in zip(rows, ServeSettings.model_fields, strict=True):
        assert config_key_of(row.name) == f"serve.{field}"  # the loader reads that name
        assert row.meaning, f"{field} has no description"


def test_skipped_names_are_the_loaders() -> None:
    assert set(SKIPPED) == PROCESS_VARIABLES
    for name in SKIPPED:
        assert config_key_of(name) is None


def test_table_lists_every_serve_variable_with_its_default() -> None:
    table = environment_table()
    assert "| `SHELFWISE_SERVE_PORT` | int | 8000 | TCP port. |" in table
    assert "| `SHELFWISE_SERVE_ADMIN_TOKEN` | secret | (none) |" in table
    assert table.count("`SHELFWISE_SERVE_") == len(ServeSettings.model_fields)
