"""What every config section shares: frozen, unknown keys refused; the canonical hash."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """Base of every config section: immutable, and an unknown key is an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def hash_jsonable(value: Any) -> str:
    """sha256 hex digest of a JSON-serialisable value in canonical form."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()
