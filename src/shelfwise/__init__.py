"""shelfwise: from a shop's raw data to served search and recommendation models."""

from __future__ import annotations

from shelfwise.config import ShelfwiseConfig, load_config
from shelfwise.errors import ShelfwiseError

__version__ = "0.1.0"

__all__ = ["ShelfwiseConfig", "ShelfwiseError", "__version__", "load_config"]
