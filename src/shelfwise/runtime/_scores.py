"""Score-vector helpers shared by the engine's jobs."""

from __future__ import annotations

from typing import Any

import numpy as np

from shelfwise.contracts import FloatArray


def first_row(scores: Any) -> FloatArray:
    """The first row of a (1, n) score matrix, or a (n,) vector, as float32."""
    array = np.asarray(scores, dtype=np.float32)
    return array[0] if array.ndim == 2 else array
