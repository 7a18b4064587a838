"""Array encodings of model weights: float16, symmetric int8 and truncated SVD.

Symmetric int8 with one scale per row (or per column) maps x to
q = round(x / s) with s = max|x| / 127 over that row, so |x − q·s| ≤ s / 2 for every
entry and zero stays exactly zero. Per-row scales suit item-factor matrices (each
item's vector has its own norm); per-column scales suit matrices whose columns have
different ranges. Sparse (CSR) matrices are encoded by their stored values only.

This module belongs to the online role too (decoding): numpy and scipy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import scipy.sparse as sp

from shelfwise.contracts import FloatArray
from shelfwise.errors import ConfigError

Encoding = Literal["float32", "float16", "int8_row", "int8_column"]
ENCODINGS: Final[tuple[str, ...]] = ("float32", "float16", "int8_row", "int8_column")
INT8_MAX: Final = 127

Int8Array = np.ndarray[Any, np.dtype[np.int8]]


@dataclass(frozen=True)
class QuantizedMatrix:
    """An int8 matrix and its float32 scales (one per row or per column).

    Attributes:
        values: int8 (rows, columns), each entry round(x / scale) in [-127, 127].
        scales: float32 (rows,) for axis "row", (columns,) for axis "column".
        axis: which axis owns a scale.
    """

    values: Int8Array
    scales: FloatArray
    axis: Literal["row", "column"]

    @property
    def nbytes(self) -> int:
        """Bytes of the codes plus the scales."""
        return int(self.values.nbytes + self.scales.nbytes)


def quantize_int8(matrix: np.ndarray[Any, Any], axis: Literal["row", "column"]) -> QuantizedMatrix:
    """Symmetric int8 quantization of a 2-D float matrix, one scale per row or column.

    scale = max|x| / 127 over the row (column); an all-zero row gets scale 1 (its codes
    are 0). Reconstruction error per entry is at most scale / 2.

    Raises:
        ConfigError: not a 2-D matrix, an unknown axis, or non-finite values.
    """
    array = np.asarray(matrix, dtype=np.float32)
    if array.ndim != 2:
        raise ConfigError(f"int8 quantization needs a 2-D matrix, got shape {array.shape}")
    if axis not in ("row", "column"):
        raise ConfigError(f"quantization axis must be 'row' or 'column', got {axis!r}")
    if not np.isfinite(array).all():
        raise ConfigError("cannot quantize a matrix holding NaN or infinite values")
    reduce_over = 1 if axis == "row" else 0
    peak = np.abs(array).max(axis=reduce_over) if array.size else np.zeros(0, np.float32)
    scales = np.where(peak > 0, peak / INT8_MAX, 1.0).astype(np.float32)
    shaped = scales[:, None] if axis == "row" else scales[None, :]
    values = np.clip(np.rint(array / shaped), -INT8_MAX, INT8_MAX).astype(np.int8)
    return QuantizedMatrix(values=values, scales=scales, axis=axis)


def dequantize_int8(quantized: QuantizedMatrix) -> FloatArray:
    """The float32 matrix q · scale (the inverse of `quantize_int8` up to rounding)."""
    values = quantized.values.astype(np.float32)
    if quantized.axis == "row":
        return values * quantized.scales[:, None]
    return values * quantized.scales[None, :]


def quantize_sparse_values(
    matrix: sp.csr_matrix, axis: Literal["row", "column"]
) -> tuple[Int8Array, FloatArray]:
    """int8 codes of a CSR matrix's stored values, one scale per row or per column.

    Returns:
        (codes aligned with `matrix.data`, float32 scales of length rows or columns).
    """
    csr = sp.csr_matrix(matrix, dtype=np.float32)
    data = np.asarray(csr.data, dtype=np.float32)
    if not np.isfinite(data).all():
        raise ConfigError("cannot quantize a sparse matrix holding NaN or infinite values")
    n_owners = csr.shape[0] if axis == "row" else csr.shape[1]
    owner = _owners(csr, axis)
    peak = np.zeros(n_owners, dtype=np.float32)
    np.maximum.at(peak, owner, np.abs(data))
    scales = np.where(peak > 0, peak / INT8_MAX, 1.0).astype(np.float32)
    codes = np.clip(np.rint(data / scales[owner]), -INT8_MAX, INT8_MAX).astype(np.int8)
    return codes, scales


def dequantize_sparse_values(
    matrix: sp.csr_matrix, codes: Int8Array, scales: FloatArray, axis: Literal["row", "column"]
) -> FloatArray:
    """float32 values of the CSR `matrix`'s stored entries from their int8 codes."""
    owner = _owners(matrix, axis)
    values: FloatArray = (codes.astype(np.float32) * scales[owner]).astype(np.float32)
    return values


def _owners(matrix: sp.csr_matrix, axis: Literal["row", "column"]) -> np.ndarray[Any, Any]:
    if axis == "column":
        return np.asarray(matrix.indices, dtype=np.int64)
    return np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))


def truncate_factors(item_factors: np.ndarray[Any, Any], keep: int) -> FloatArray:
    """Item factors projected onto their `keep` leading right singular vectors.

    With Y = U Σ Vᵀ, returns Y V_k (n_items, keep): dot products between rows change
    by the discarded singular values only (Y V_k V_kᵀ Yᵀ is the best rank-k
    approximation of Y Yᵀ).

    Raises:
        ConfigError: `keep` outside [1, factors].
    """
    factors = np.asarray(item_factors, dtype=np.float64)
    if not 1 <= keep <= factors.shape[1]:
        raise ConfigError(f"keep must be in [1, {factors.shape[1]}] factors, got {keep}")
    _, _, right = np.linalg.svd(factors, full_matrices=False)
    return np.ascontiguousarray(factors @ right[:keep].T, dtype=np.float32)


def top_k_overlap(
    reference: np.ndarray[Any, Any], approximate: np.ndarray[Any, Any], k: int
) -> float:
    """Mean share of each row's top-`k` columns of `reference` found in `approximate`'s.

    Both are (rows, columns) score matrices; 1.0 means identical top-k sets.
    """
    k = min(k, reference.shape[1])
    if reference.shape[0] == 0 or k == 0:
        return 1.0
    exact = np.argpartition(-reference, k - 1, axis=1)[:, :k]
    approx = np.argpartition(-approximate, k - 1, axis=1)[:, :k]
    shared = [np.intersect1d(a, b).size for a, b in zip(exact, approx, strict=True)]
    return float(np.mean(shared) / k)


__all__ = [
    "ENCODINGS",
    "Encoding",
    "QuantizedMatrix",
    "dequantize_int8",
    "dequantize_sparse_values",
    "quantize_int8",
    "quantize_sparse_values",
    "top_k_overlap",
    "truncate_factors",
]
