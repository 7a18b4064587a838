"""Render the commented `shelfwise.yaml` that `shelfwise init` writes.

The template is generated from the config models, so it lists every key with its
default and description and can never drift from the code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from shelfwise.config.data import DataConfig, EventsConfig, SourceConfig
from shelfwise.config.privacy import PrivacyConfig
from shelfwise.config.root import ShelfwiseConfig

# Example sources for the sample shop written by `shelfwise generate --out data`.
_EXAMPLE_SOURCES: dict[str, SourceConfig] = {
    "catalog": SourceConfig(path=Path("data/catalog.parquet")),
    "events": EventsConfig(path=Path("data/events.parquet")),
    "queries": SourceConfig(path=Path("data/queries.parquet")),
}


def render_template(config: ShelfwiseConfig | None = None) -> str:
    """The full commented YAML config.

    Args:
        config: the values to write; default every key's default (with example data
            sources for the sample shop where `data.*` is unset).
    """
    listed = "its default" if config is None else "its value"
    lines = [
        f"# shelfwise configuration. Every key is listed with {listed}.",
        "# Precedence: defaults < this file < environment variables (SHELFWISE_SERVE_<KEY>",
        "# for serve.*, SHELFWISE_<SECTION>__<KEY> for the rest) < command-line flags.",
        "# Unknown keys are errors. Relative paths are relative to this file's folder.",
        "",
    ]
    # A new deployment starts private: user ids pseudonymised (privacy.pseudonymize_users
    # defaults to false only so that configs written before it keep their ids).
    fresh = ShelfwiseConfig(privacy=PrivacyConfig(pseudonymize_users=True))
    _render_model(config if config is not None else fresh, lines, indent=0)
    return "\n".join(lines) + "\n"


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False) if value == "" or ":" in value else value
    return json.dumps(value, ensure_ascii=False, default=str)


def _render_model(model: BaseModel, lines: list[str], indent: int) -> None:
    pad = "  " * indent
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        if info.description:
            lines.append(f"{pad}# {info.description}")
        if isinstance(model, DataConfig) and name in _EXAMPLE_SOURCES and value is None:
            value = _EXAMPLE_SOURCES[name]
        if isinstance(value, BaseModel):
            lines.append(f"{pad}{name}:")
            _render_model(value, lines, indent + 1)
        elif isinstance(value, dict):
            if not value:
                lines.append(f"{pad}{name}: {{}}")
                continue
            lines.append(f"{pad}{name}:")
            for key, item in value.items():
                if isinstance(item, BaseModel):  # e.g. gate rules: a flow mapping per key
                    item = item.model_dump(exclude_none=True)
                lines.append(f"{pad}  {_scalar(getattr(key, 'value', key))}: {_scalar(item)}")
        elif isinstance(value, list):
            items = ", ".join(_scalar(v) for v in value)
            lines.append(f"{pad}{name}: [{items}]")
        else:
            lines.append(f"{pad}{name}: {_scalar(getattr(value, 'value', value))}")
        if indent == 0:
            lines.append("")
