"""Compressed recommenders: a fitted model's weights stored as float16 / int8, maybe
with fewer factors and without the weights of pruned items.

A `CompressedRecommender` wraps a model of a known family (ALS, BPR, EASE, GF-CF,
item-kNN, RP3beta). It keeps the family's scoring code: at load the stored codes are
decoded into the family's own attributes, so scores differ from the original model's
only by the encoding error. Pruned items score −inf (never recommended; `top_k`
drops them) and are never listed as similar.

Folder layout (no pickle)::

    params.json               name "compressed", base family, encoding, base params,
                              one entry per weight array (how it was stored)
    arrays/<attr>.npy         dense values (float32 / float16 / int8 codes)
    arrays/<attr>.scales.npy  int8 scales (one per row or column)
    arrays/<attr>.{indptr,indices,data}.npy    a sparse (CSR) weight matrix; one dense
                              enough that its codes alone take fewer bytes than codes +
                              column indices is stored as arrays/<attr>.npy (layout
                              "dense") and turned back into CSR at load
    kept_items.npy            item indices that keep weights (pruned variants only)

`shelfwise.compress.load_recommender(<base name>, folder)` loads such a folder
(it reads the kind from params.json), so a bundle keeps the base model's name.

This module belongs to the online role: numpy and scipy only.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, Self

import numpy as np
import scipy.sparse as sp

from shelfwise._internal.artifacts import read_array, write_array
from shelfwise.compress.quantize import (
    ENCODINGS,
    QuantizedMatrix,
    dequantize_int8,
    dequantize_sparse_values,
    quantize_int8,
    quantize_sparse_values,
    truncate_factors,
)
from shelfwise.contracts import FloatArray, IntArray
from shelfwise.errors import ArtifactError, ConfigError, NotReadyError
from shelfwise.retrieval.base import Histories, Recommender, SimilarItems
from shelfwise.retrieval.shared import read_params, write_params

KIND: Final = "compressed"
_ARRAYS_DIR: Final = "arrays"
_KEPT_FILE: Final = "kept_items.npy"
Arrays = dict[str, np.ndarray[Any, Any]]


@dataclass(frozen=True)
class Family:
    """Where a model family keeps its weights.

    Attributes:
        arrays: attributes holding fitted arrays (dense, CSR, or small vectors).
        factor_array: the attribute truncated by SVD variants (None: not reducible).
        factors_param: the constructor parameter that holds the factor count.
        item_axes: attribute -> its axes indexed by item_index (dropped by pruning).
        extra: attribute -> base params.json key, set after construction.
        embeddings: attribute -> the base model's file, for the item embedding
            matrices (factor vectors) the size report counts on their own.
    """

    arrays: tuple[str, ...]
    factor_array: str | None = None
    factors_param: str | None = None
    item_axes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)
    embeddings: dict[str, str] = field(default_factory=dict)


_SQUARE: Final = (0, 1)
_FACTORS: Final = {"item_factors": "item_factors.npy"}
FAMILIES: Final[dict[str, Family]] = {
    "als": Family(
        ("item_factors",), "item_factors", "factors", {"item_factors": (0,)}, embeddings=_FACTORS
    ),
    "bpr": Family(
        ("item_factors", "item_biases"),
        "item_factors",
        "factors",
        {"item_factors": (0,)},
        embeddings=_FACTORS,
    ),
    "ease": Family(
        ("weights", "items"), item_axes={"weights": _SQUARE}, extra={"n_items_total": "n_items"}
    ),
    "gfcf": Family(
        ("linear_filter", "vectors", "item_degrees"),
        item_axes={"linear_filter": _SQUARE, "vectors": (0,)},
        embeddings={"vectors": "singular_vectors.npy"},
    ),
    "item_knn": Family(("similarity",), item_axes={"similarity": _SQUARE}),
    "rp3beta": Family(("similarity",), item_axes={"similarity": _SQUARE}),
}


def _base_class(base: str) -> type[Recommender]:
    from shelfwise.retrieval import recommender_class

    if base not in FAMILIES:
        raise ConfigError(
            f"{base!r} cannot be compressed by weight encoding; families: {sorted(FAMILIES)}"
        )
    return recommender_class(base)


def _encode(
    value: Any, axes: tuple[int, ...], encoding: str, n_items: int, kept: IntArray | None
) -> tuple[dict[str, Any], Arrays]:
    """(params entry, files) of one weight array."""
    entry: dict[str, Any]
    if sp.issparse(value):
        csr = sp.csr_matrix(value, dtype=np.float32)
        if kept is not None and axes == (0, 1):
            mask = np.zeros(n_items, dtype=np.float32)
            mask[kept] = 1.0
            csr = sp.csr_matrix(sp.diags(mask) @ csr @ sp.diags(mask), dtype=np.float32)
            csr.eliminate_zeros()
        entry = {"kind": "csr", "shape": list(csr.shape)}
        if _dense_is_smaller(csr, encoding):
            # a dense-ish matrix (GF-CF's item-item filter) costs less as a plain array of
            # codes than as codes plus an index per stored entry; it is CSR again at load
            entry["layout"] = "dense"
            return entry, _encode_dense(csr.toarray(), encoding)
        index_dtype = np.uint16 if max(csr.shape) <= np.iinfo(np.uint16).max else np.int32
        indptr_dtype = np.int32 if csr.nnz <= np.iinfo(np.int32).max else np.int64
        files: Arrays = {
            "indptr": csr.indptr.astype(indptr_dtype),
            "indices": csr.indices.astype(index_dtype),
        }
        if encoding.startswith("int8"):
            axis: Literal["row", "column"] = "row" if encoding == "int8_row" else "column"
            files["data"], files["scales"] = quantize_sparse_values(csr, axis)
        else:
            files["data"] = csr.data.astype(_float_dtype(encoding))
        return entry, files
    array = np.asarray(value)
    entry = {"kind": "raw", "shape": list(array.shape), "dtype": str(array.dtype)}
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.floating):
        return entry, {"values": array}  # small vectors and index arrays stay exact
    # pruning drops the item axes of arrays indexed by item_index (not EASE's subset)
    item_axes = [axis for axis in axes if array.shape[axis] == n_items] if kept is not None else []
    if kept is not None and item_axes == [0, 1]:
        array = array[np.ix_(kept, kept)]
    elif kept is not None and item_axes == [0]:
        array = array[kept]
    entry.update(kind="dense", item_axes=item_axes)
    return entry, _encode_dense(array, encoding)


def _float_dtype(encoding: str) -> type[np.floating[Any]]:
    return np.float16 if encoding == "float16" else np.float32


def _encode_dense(array: np.ndarray[Any, Any], encoding: str) -> Arrays:
    """Files of a dense float matrix: codes and scales (int8) or the cast values."""
    if encoding.startswith("int8"):
        quantized = quantize_int8(array, "row" if encoding == "int8_row" else "column")
        return {"values": quantized.values, "scales": quantized.scales}
    return {"values": array.astype(_float_dtype(encoding))}


def _dense_is_smaller(csr: sp.csr_matrix, encoding: str) -> bool:
    """True when the dense array of codes takes fewer bytes than the CSR arrays."""
    value_bytes = 1 if encoding.startswith("int8") else np.dtype(_float_dtype(encoding)).itemsize
    index_bytes = 2 if max(csr.shape) <= np.iinfo(np.uint16).max else 4
    rows, columns = csr.shape
    sparse_bytes = csr.nnz * (value_bytes + index_bytes) + 4 * (rows + 1)
    return bool(rows * columns * value_bytes < sparse_bytes)


def _decode(entry: dict[str, Any], files: Arrays, encoding: str, kept: IntArray | None) -> Any:
    shape = tuple(int(size) for size in entry["shape"])
    if entry["kind"] == "csr" and entry.get("layout") == "dense":
        dense = _decode_dense(files, encoding)
        return sp.csr_matrix(dense.reshape(shape), dtype=np.float32)  # zeros are not stored
    if entry["kind"] == "csr":
        indices = files["indices"].astype(np.int32)
        skeleton = sp.csr_matrix(
            (np.ones(indices.size, np.float32), indices, files["indptr"]), shape=shape
        )
        if encoding.startswith("int8"):
            axis: Literal["row", "column"] = "row" if encoding == "int8_row" else "column"
            data = dequantize_sparse_values(skeleton, files["data"], files["scales"], axis)
        else:
            data = files["data"].astype(np.float32)
        skeleton.data = data
        return skeleton
    if entry["kind"] == "raw":
        return files["values"].astype(entry["dtype"], copy=False)
    stored = _decode_dense(files, encoding)
    item_axes = list(entry.get("item_axes", []))
    if kept is None or not item_axes:
        return stored
    full = np.zeros(shape, dtype=np.float32)
    if item_axes == [0, 1]:
        full[np.ix_(kept, kept)] = stored
    else:
        full[kept] = stored
    return full


def _decode_dense(files: Arrays, encoding: str) -> np.ndarray[Any, np.dtype[np.float32]]:
    if encoding.startswith("int8"):
        axis: Literal["row", "column"] = "row" if encoding == "int8_row" else "column"
        return dequantize_int8(QuantizedMatrix(files["values"], files["scales"], axis))
    return files["values"].astype(np.float32)


class CompressedRecommender:
    """A fitted recommender with encoded weights; scores through the family's code.

    Inputs:
        histories: CSR (batch, n_items), as the base model reads them.

    Relations:
        Implements the `Recommender` protocol (and `similar` when the base lists
        similar items), so evaluation and serving treat it like the base model.
        `SASRecOnnxRecommender` is the sequential counterpart.

    Example:
        >>> import scipy.sparse as sp
        >>> from shelfwise.retrieval.als import ALSRecommender
        >>> base = ALSRecommender(factors=2, iterations=2)
        >>> base.fit(sp.csr_matrix([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]]))
        >>> small = CompressedRecommender.from_model(base, {"factors": 2, "n_items": 3}, "int8_row")
        >>> small.score(sp.csr_matrix([[1.0, 0.0, 0.0]])).shape
        (1, 3)
    """

    name: str = KIND

    def __init__(
        self,
        base: str,
        base_params: dict[str, Any],
        encoding: str,
        entries: dict[str, dict[str, Any]],
        files: dict[str, Arrays],
        kept_items: IntArray | None = None,
    ) -> None:
        """Wrap encoded arrays; use `from_model` or `load` rather than this.

        Raises:
            ConfigError: an unknown family or encoding.
        """
        if encoding not in ENCODINGS:
            raise ConfigError(f"unknown encoding {encoding!r}; known: {list(ENCODINGS)}")
        base_class = _base_class(base)
        self.base = base
        self.name = base  # serves under the base model's name
        self.base_params = dict(base_params)
        self.encoding = encoding
        self.entries = entries
        self.files = files
        self.n_items = int(base_params["n_items"])
        self.kept_items = kept_items
        self.pruned: np.ndarray[Any, np.dtype[np.bool_]] | None = None
        if kept_items is not None:
            self.pruned = np.ones(self.n_items, dtype=np.bool_)
            self.pruned[kept_items] = False
        accepted = inspect.signature(base_class.__init__).parameters
        model = base_class(**{k: v for k, v in base_params.items() if k in accepted})
        for attribute, entry in entries.items():
            setattr(model, attribute, _decode(entry, files[attribute], encoding, kept_items))
        for attribute, key in FAMILIES[base].extra.items():
            setattr(model, attribute, base_params[key])
        self.model = model

    @classmethod
    def from_model(
        cls,
        model: Recommender,
        base_params: dict[str, Any],
        encoding: str,
        *,
        keep_factors: int | None = None,
        kept_items: IntArray | None = None,
    ) -> Self:
        """Encode a fitted model of a known family.

        Args:
            model: the fitted base model (its `name` picks the family).
            base_params: the base folder's params.json (constructor values, n_items).
            encoding: "float32", "float16", "int8_row" or "int8_column".
            keep_factors: project the factor matrix onto this many leading singular
                vectors first (factor families only).
            kept_items: item indices that keep their weights; the rest are pruned.

        Raises:
            ConfigError: an unknown family, or `keep_factors` for a family without factors.
        """
        family = FAMILIES.get(model.name)
        if family is None:
            _base_class(model.name)  # raises with the list of families
            raise AssertionError  # pragma: no cover
        params = dict(base_params)
        n_items = int(params["n_items"])
        kept = None if kept_items is None else np.sort(np.asarray(kept_items, dtype=np.int64))
        entries: dict[str, dict[str, Any]] = {}
        files: dict[str, Arrays] = {}
        for attribute in family.arrays:
            value = getattr(model, attribute)
            if value is None:
                raise NotReadyError(f"{model.name} is not fitted: {attribute} is missing")
            if keep_factors is not None and attribute == family.factor_array:
                value = truncate_factors(value, keep_factors)
            axes = family.item_axes.get(attribute, ())
            entries[attribute], files[attribute] = _encode(value, axes, encoding, n_items, kept)
        if keep_factors is not None:
            if family.factors_param is None:
                raise ConfigError(f"{model.name} has no factor matrix to truncate")
            params[family.factors_param] = keep_factors
        return cls(model.name, params, encoding, entries, files, kept)

    def fit(self, train: Histories) -> None:
        """Not supported: compress a fitted model instead.

        Raises:
            NotReadyError: always.
        """
        raise NotReadyError(
            f"a compressed {self.base} model is not trained; fit {self.base} and compress it"
        )

    def score(self, histories: Histories) -> FloatArray:
        """Dense (batch, n_items) float32 scores; pruned items score −inf."""
        scores = np.asarray(self.model.score(histories), dtype=np.float32)
        if self.pruned is not None:
            scores[:, self.pruned] = -np.inf
        return scores

    def similar(self, item_index: int, k: int) -> tuple[IntArray, FloatArray]:
        """The base model's similar items, pruned items left out.

        Raises:
            ArtifactError: the base family cannot list similar items.
        """
        if not isinstance(self.model, SimilarItems):
            raise ArtifactError(f"{self.base} cannot list similar items")
        items, scores = self.model.similar(item_index, k)
        if self.pruned is None:
            return items, scores
        keep = ~self.pruned[items]
        return items[keep], scores[keep]

    def save(self, folder: Path) -> None:
        """Write params.json, the encoded arrays and (pruned) kept_items.npy."""
        folder.mkdir(parents=True, exist_ok=True)
        for attribute, parts in self.files.items():
            for part, array in parts.items():
                suffix = "" if part == "values" else f".{part}"
                write_array(folder / _ARRAYS_DIR / f"{attribute}{suffix}.npy", array)
        if self.kept_items is not None:
            write_array(folder / _KEPT_FILE, self.kept_items)
        write_params(
            folder,
            KIND,
            {
                "base": self.base,
                "encoding": self.encoding,
                "n_items": self.n_items,
                "base_params": self.base_params,
                "arrays": self.entries,
                "pruned": self.kept_items is not None,
            },
        )

    @classmethod
    def load(cls, folder: Path) -> Self:
        """Read a folder written by `save`.

        Raises:
            ArtifactError: missing files or an unreadable params.json.
        """
        params = read_params(folder, KIND)
        encoding = str(params["encoding"])
        entries: dict[str, dict[str, Any]] = params["arrays"]
        files: dict[str, Arrays] = {}
        try:
            for attribute, entry in entries.items():
                sparse = entry["kind"] == "csr" and entry.get("layout") != "dense"
                parts = ("indptr", "indices", "data") if sparse else ("values",)
                if entry["kind"] != "raw" and encoding.startswith("int8"):
                    parts = (*parts, "scales")
                files[attribute] = {
                    part: read_array(
                        folder
                        / _ARRAYS_DIR
                        / f"{attribute}{'' if part == 'values' else '.' + part}.npy"
                    )
                    for part in parts
                }
            kept = read_array(folder / _KEPT_FILE) if params.get("pruned") else None
        except FileNotFoundError as exc:
            raise ArtifactError(f"{exc.filename} is missing; re-run the compress stage") from None
        return cls(params["base"], params["base_params"], encoding, entries, files, kept)


__all__ = ["FAMILIES", "KIND", "CompressedRecommender", "Family"]
