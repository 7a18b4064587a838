"""Sparse-matrix helpers shared by the neighbourhood models (rp3beta, user_knn)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def keep_top_per_row(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Each row's `k` largest positive entries, as a new CSR matrix with sorted indices.

    Works on the stored entries only: a row's k-th largest value is found by
    partitioning a (long rows x longest row) table, not a dense n_columns row, so a
    sparse similarity block costs about what it stores. Among entries equal to the
    k-th value, lower column indices are kept first, so the result is deterministic.
    """
    result = sp.csr_matrix(matrix, copy=True)
    result.data[result.data < 0] = 0
    result.eliminate_zeros()
    result.sort_indices()
    n_rows = result.shape[0]
    counts = np.diff(result.indptr)
    if n_rows == 0 or counts.max() <= k:
        return result
    rows = np.repeat(np.arange(n_rows), counts)
    long_rows = np.flatnonzero(counts > k)
    slot = np.full(n_rows, -1)
    slot[long_rows] = np.arange(long_rows.size)
    in_long = slot[rows] >= 0
    table = np.full((long_rows.size, int(counts.max())), -np.inf, dtype=result.data.dtype)
    position = np.arange(result.nnz) - result.indptr[rows]
    table[slot[rows[in_long]], position[in_long]] = result.data[in_long]
    threshold = np.full(n_rows, -np.inf)
    threshold[long_rows] = -np.partition(-table, k - 1, axis=1)[:, k - 1]
    above = result.data > threshold[rows]
    tied = result.data == threshold[rows]
    room = k - np.bincount(rows[above], minlength=n_rows)
    tied_so_far = np.cumsum(tied)
    tied_before_row = np.concatenate(([0], tied_so_far))[result.indptr[:-1]]
    keep = above | (tied & (tied_so_far - tied_before_row[rows] <= room[rows]))
    indptr = np.concatenate(([0], np.cumsum(np.bincount(rows[keep], minlength=n_rows))))
    return sp.csr_matrix((result.data[keep], result.indices[keep], indptr), shape=result.shape)
