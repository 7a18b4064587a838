"""Compression: smaller variants of fitted models that keep the retrieval protocol.

The inference side (`models`, `onnx_sasrec`, `quantize`) loads in the online role
with numpy, scipy and onnxruntime; the stage (`stage`, `variants`, `measure`,
`onnx_export`, `faiss_index`) is batch-only and imported on use.
"""

from __future__ import annotations

from shelfwise.compress.models import CompressedRecommender
from shelfwise.compress.quantize import (
    QuantizedMatrix,
    dequantize_int8,
    quantize_int8,
    top_k_overlap,
    truncate_factors,
)

__all__ = [
    "CompressedRecommender",
    "QuantizedMatrix",
    "dequantize_int8",
    "quantize_int8",
    "top_k_overlap",
    "truncate_factors",
]
