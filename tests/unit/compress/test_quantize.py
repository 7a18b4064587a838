"""int8 / float16 encodings: error bounds, top-k agreement with the float matrix."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from shelfwise.compress.quantize import (
    dequantize_int8,
    dequantize_sparse_values,
    quantize_int8,
    quantize_sparse_values,
    top_k_overlap,
    truncate_factors,
)
from shelfwise.errors import ConfigError


@pytest.mark.parametrize("axis", ["row", "column"])
def test_int8_error_is_at_most_half_a_step(axis: str) -> None:
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(50, 16)).astype(np.float32) * rng.uniform(0.1, 10, size=(50, 1))
    quantized = quantize_int8(matrix, axis)  # type: ignore[arg-type]
    assert quantized.values.dtype == np.int8
    restored = dequantize_int8(quantized)
    step = quantized.scales[:, None] if axis == "row" else quantized.scales[None, :]
    assert np.all(np.abs(restored - matrix) <= step / 2 + 1e-6)
    assert quantized.nbytes < matrix.nbytes / 3


def test_zero_rows_stay_zero_and_peaks_are_exact() -> None:
    matrix = np.array([[0.0, 0.0], [2.0, -1.0]], dtype=np.float32)
    restored = dequantize_int8(quantize_int8(matrix, "row"))
    assert np.array_equal(restored[0], [0.0, 0.0])
    assert restored[1, 0] == pytest.approx(2.0)


def test_int8_scores_keep_the_float_top_k() -> None:
    rng = np.random.default_rng(1)
    items = rng.normal(size=(500, 32)).astype(np.float32)
    users = rng.normal(size=(40, 32)).astype(np.float32)
    exact = users @ items.T
    approx = users @ dequantize_int8(quantize_int8(items, "row")).T
    assert top_k_overlap(exact, approx, 10) >= 0.95
    assert top_k_overlap(exact, exact, 10) == 1.0


def test_sparse_values_round_trip_within_half_a_step() -> None:
    matrix = sp.random(30, 30, density=0.2, random_state=2, format="csr", dtype=np.float32)
    codes, scales = quantize_sparse_values(matrix, "row")
    restored = dequantize_sparse_values(matrix, codes, scales, "row")
    owner = np.repeat(np.arange(30), np.diff(matrix.indptr))
    assert np.all(np.abs(restored - matrix.data) <= scales[owner] / 2 + 1e-7)


def test_truncated_factors_keep_the_leading_structure() -> None:
    rng = np.random.default_rng(3)
    low_rank = rng.normal(size=(100, 4)) @ rng.normal(size=(4, 16))
    reduced = truncate_factors(low_rank, 4)
    assert reduced.shape == (100, 4)
    np.testing.assert_allclose(reduced @ reduced.T, low_rank @ low_rank.T, atol=1e-3)


def test_bad_inputs_raise_config_errors() -> None:
    with pytest.raises(ConfigError, match="2-D"):
        quantize_int8(np.zeros(3), "row")
    with pytest.raises(ConfigError, match="NaN"):
        quantize_int8(np.array([[np.nan]]), "row")
    with pytest.raises(ConfigError, match="keep must be"):
        truncate_factors(np.ones((3, 2)), 3)
