"""Model tables: a registered model name -> where its class lives ("module:Class").

Classes are imported on first use, so loading a bundle imports only the models it
holds. Each package lists only its own models: `shelfwise.retrieval` its recommender
families and plain search indexes, `shelfwise.compress` the compressed kinds (and the
loader that also knows them), `shelfwise.search` the hybrid index (and the loader of
every search index).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PARAMS_FILE = "params.json"


def resolve(table: Mapping[str, str], name: str, *, kind: str) -> Any:
    """The class registered under `name` in `table` (imported now).

    Raises:
        LookupError: `name` is not in the table (the message lists the known names).
    """
    try:
        module_name, _, attribute = table[name].partition(":")
    except KeyError:
        known = ", ".join(sorted(table))
        raise LookupError(f"unknown {kind} {name!r}; known: {known}") from None
    return getattr(importlib.import_module(module_name), attribute)


def saved_name(folder: Path) -> str | None:
    """The model name a saved folder's params.json records; None when there is none.

    A compressed variant is saved under its base model's folder name but records its
    own kind here, which is how loaders tell it apart.
    """
    try:
        params = json.loads((folder / PARAMS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # the model's own loader reports what is wrong
    name = params.get("name") if isinstance(params, dict) else None
    return name if isinstance(name, str) else None


__all__ = ["PARAMS_FILE", "resolve", "saved_name"]
