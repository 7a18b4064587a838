"""Compression: smaller variants of fitted models that keep the retrieval protocol.

The inference side (`models`, `onnx_sasrec`, `quantize`, `loading`) loads in the
online role with numpy, scipy and onnxruntime: `load_recommender` loads any saved
recommender folder, exact or compressed. The stage (`stage`, `variants`, `measure`,
`onnx_export`, `faiss_index`) is batch-only and imported on use.
"""

from __future__ import annotations

from shelfwise.compress.loading import (
    COMPRESSED_RECOMMENDERS,
    compressed_class,
    load_recommender,
    recommender_names,
)
from shelfwise.compress.models import CompressedRecommender
from shelfwise.compress.quantize import (
    QuantizedMatrix,
    dequantize_int8,
    quantize_int8,
    top_k_overlap,
    truncate_factors,
)

__all__ = [
    "COMPRESSED_RECOMMENDERS",
    "CompressedRecommender",
    "QuantizedMatrix",
    "compressed_class",
    "dequantize_int8",
    "load_recommender",
    "quantize_int8",
    "recommender_names",
    "top_k_overlap",
    "truncate_factors",
]
