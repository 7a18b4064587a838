"""Compression: smaller variants of fitted models that keep the retrieval protocol.

The inference side (`models`, `onnx_sasrec`, `quantize`) loads in the online role
with numpy, scipy and onnxruntime; the stage (`stage`, `variants`, `measure`,
`onnx_export`, `faiss_index`) is batch-only and imported on use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shelfwise.compress.models import CompressedRecommender
from shelfwise.compress.quantize import (
    QuantizedMatrix,
    dequantize_int8,
    quantize_int8,
    top_k_overlap,
    truncate_factors,
)

if TYPE_CHECKING:
    from shelfwise._internal.stage import StageContext, StageResult


def run(ctx: StageContext) -> StageResult:
    """The compress stage (imports its training-side modules on call)."""
    from shelfwise.compress.stage import run as run_stage

    return run_stage(ctx)


__all__ = [
    "CompressedRecommender",
    "QuantizedMatrix",
    "dequantize_int8",
    "quantize_int8",
    "run",
    "top_k_overlap",
    "truncate_factors",
]
