"""Helpers shared by the retrieval models (functions, not a base class): input checks
and the `params.json` every saved model folder holds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from shelfwise._internal.artifacts import atomic_write_json, read_csr
from shelfwise._internal.sequences import Sequences
from shelfwise.errors import ArtifactError, DataError, EmptyDataError
from shelfwise.retrieval.base import Histories, as_user_histories, history_rows

PARAMS_FILE = "params.json"
FORMAT_VERSION = 1


def check_train(train: Histories, *, model: str) -> sp.csr_matrix:
    """Validate the (n_users, n_items) training rows; return them as float32 CSR.

    `train` is `UserHistories` or a bare CSR matrix; matrix models read its rows.

    Raises:
        EmptyDataError: no users, no items or no stored interactions.
        DataError: not a 2-D sparse matrix, or negative / non-finite weights.
    """
    rows = history_rows(train)
    if not sp.issparse(rows) or rows.ndim != 2:
        raise DataError(
            f"{model}: train must be a 2-D scipy CSR matrix (users x items), "
            f"got {type(rows).__name__}"
        )
    # A copy: eliminating zeros must not touch the caller's matrix.
    csr = sp.csr_matrix(rows).astype(np.float32, copy=True)
    csr.sum_duplicates()
    csr.eliminate_zeros()
    n_users, n_items = csr.shape
    if n_users == 0 or n_items == 0 or csr.nnz == 0:
        raise EmptyDataError(
            f"{model}: the train matrix is empty (shape {n_users}x{n_items}, "
            f"{csr.nnz} interactions); check the split and the event weights"
        )
    n_bad = int((~np.isfinite(csr.data)).sum())
    n_negative = int((csr.data < 0).sum())
    if n_bad or n_negative:
        raise DataError(
            f"{model}: interaction weights must be finite and >= 0; found {n_negative} "
            f"negative and {n_bad} non-finite value(s): check the event weights"
        )
    return csr


def check_histories(histories: Histories, n_items: int, *, model: str) -> sp.csr_matrix:
    """Validate a batch's (batch, n_items) history rows; return them as float32 CSR.

    `histories` is `UserHistories` or a bare CSR matrix; matrix models read its rows.

    Raises:
        DataError: not a 2-D sparse matrix, or a column count other than `n_items`.
    """
    rows = history_rows(histories)
    if not sp.issparse(rows) or rows.ndim != 2:
        raise DataError(
            f"{model}: histories must be a 2-D scipy CSR matrix (batch x items), "
            f"got {type(rows).__name__}"
        )
    if rows.shape[1] != n_items:
        raise DataError(
            f"{model}: histories have {rows.shape[1]} item columns but the model "
            f"was fitted on {n_items} items; build histories with the model's item map"
        )
    return sp.csr_matrix(rows, dtype=np.float32)


def check_ordered(histories: Histories, n_items: int, *, model: str) -> Sequences:
    """The ordered items of a batch, for a sequential model (the rows are not copied).

    Raises:
        DataError: the batch has no sequences, or its rows have another item count or
            another number of users than its sequences.
    """
    batch = as_user_histories(histories)
    sequences = batch.ordered(model=model)
    if batch.n_items != n_items:
        raise DataError(
            f"{model}: histories have {batch.n_items} item columns but the model "
            f"was fitted on {n_items} items; build histories with the model's item map"
        )
    if sequences.n_users != batch.n_users:
        raise DataError(
            f"{model}: histories have {batch.n_users} rows but {sequences.n_users} "
            "sequences; pass one sequence per user"
        )
    return sequences


def write_params(folder: Path, name: str, params: dict[str, Any]) -> None:
    """Write `params.json`: the model name, the file-format version and `params`."""
    atomic_write_json(
        folder / PARAMS_FILE,
        {"name": name, "format_version": FORMAT_VERSION, **params},
    )


def read_params(folder: Path, name: str) -> dict[str, Any]:
    """Read `params.json` written by `write_params`, checking the model name.

    Raises:
        ArtifactError: missing or unreadable file, another model's folder, or a
            file-format version this code does not know.
    """
    path = folder / PARAMS_FILE
    try:
        params = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{path} is missing: {folder} holds no saved {name} model") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path} is unreadable ({exc}); retrain the model") from None
    if not isinstance(params, dict) or params.get("name") != name:
        found = params.get("name") if isinstance(params, dict) else None
        raise ArtifactError(f"{folder} holds a {found!r} model, not {name!r}")
    if params.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{path} has format_version {params.get('format_version')!r}; this shelfwise "
            f"reads version {FORMAT_VERSION}: retrain the model with this version"
        )
    return params


def read_item_matrix(path: Path, n_items: object) -> sp.csr_matrix:
    """A saved (n_items, n_items) item-item CSR matrix, checked against params.json.

    Raises:
        ArtifactError: the file is missing or its shape disagrees with `n_items`.
    """
    try:
        matrix = read_csr(path)
    except FileNotFoundError:
        raise ArtifactError(f"{path} is missing; retrain the model") from None
    if matrix.shape != (n_items, n_items):
        raise ArtifactError(
            f"{path} has shape {matrix.shape}, expected ({n_items}, {n_items}): "
            "the folder is damaged, retrain the model"
        )
    return matrix
