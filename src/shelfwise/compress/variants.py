"""Which variants to try and how to build each from a fitted model (batch role).

Matrix families (ALS, BPR, EASE, GF-CF, item-kNN, RP3beta) get weight encodings
(float16, int8 per row or per column), fewer factors + int8 (ALS, BPR) and pruning of
inactive items + int8; a blend gets the same variant on each component it can
compress (pruned items score −inf, which the blend's min-max normalisation skips).
SASRec gets ONNX graphs, float and dynamic int8.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import polars as pl

from shelfwise.compress.models import FAMILIES, CompressedRecommender
from shelfwise.config import CompressConfig
from shelfwise.contracts import ITEM_INDEX, SPLIT, TIMESTAMP, IntArray
from shelfwise.retrieval.base import Recommender
from shelfwise.retrieval.blend import BlendRecommender
from shelfwise.retrieval.shared import PARAMS_FILE

SECONDS_PER_DAY: Final = 86_400


@dataclass(frozen=True)
class VariantSpec:
    """One way to compress a model.

    Attributes:
        name: the variant's name in `compression.json` (e.g. "int8", "svd25_int8").
        kind: "quantize", "svd", "prune" or "onnx".
        encoding: weight encoding of matrix families ("float16", "int8_row", ...).
        keep_fraction: share of factor dimensions kept (kind "svd").
        quantize_onnx: dynamic int8 weights in the ONNX graph (kind "onnx").
    """

    name: str
    kind: str
    encoding: str = "float32"
    keep_fraction: float | None = None
    quantize_onnx: bool = False


def matrix_specs(config: CompressConfig) -> list[VariantSpec]:
    """The weight-encoding variants the config asks for, in a fixed order."""
    wanted = set(config.variants)
    specs: list[VariantSpec] = []
    if "float16" in wanted:
        specs.append(VariantSpec("float16", "quantize", "float16"))
    if "int8" in wanted:
        specs.append(VariantSpec("int8", "quantize", "int8_row"))
    if "int8_column" in wanted:
        specs.append(VariantSpec("int8_column", "quantize", "int8_column"))
    if "svd_int8" in wanted:
        for fraction in config.svd_fractions:
            name = f"svd{round(fraction * 100)}_int8"
            specs.append(VariantSpec(name, "svd", "int8_row", keep_fraction=fraction))
    if "prune" in wanted and config.inactive_days is not None:
        name = f"prune{config.inactive_days:g}d_int8"
        specs.append(VariantSpec(name, "prune", "int8_row"))
    return specs


def onnx_specs(config: CompressConfig) -> list[VariantSpec]:
    """SASRec's ONNX variants (float graph, dynamic int8 graph) when asked for."""
    if "onnx" not in config.variants:
        return []
    return [
        VariantSpec("onnx_float32", "onnx"),
        VariantSpec("onnx_int8", "onnx", quantize_onnx=True),
    ]


def active_items(
    interactions: pl.DataFrame, splits: tuple[str, ...], inactive_days: float, n_items: int
) -> IntArray:
    """Item indices with an event within `inactive_days` of the latest event of `splits`."""
    rows = interactions.filter(pl.col(SPLIT).is_in(list(splits)))
    if rows.height == 0:
        return np.arange(n_items, dtype=np.int64)
    cutoff = int(rows[TIMESTAMP].max())  # type: ignore[arg-type]
    horizon = cutoff - inactive_days * SECONDS_PER_DAY
    recent = rows.filter(pl.col(TIMESTAMP) >= horizon)[ITEM_INDEX].unique().to_numpy()
    return np.sort(recent.astype(np.int64))


def build_matrix_variant(
    model: Recommender, folder: Path, spec: VariantSpec, kept_items: IntArray | None
) -> Recommender | None:
    """The `spec` variant of a fitted matrix model saved in `folder`; None when the
    variant does not apply to it (another family, no factors, nothing to prune)."""
    if isinstance(model, BlendRecommender):
        components: dict[str, Recommender] = {}
        changed = False
        # components without factors get the plain encoding of an svd variant; pruning
        # prunes every component it can (the blend's normalisation skips −inf scores,
        # and one pruned component keeps the item out of the blend's lists)
        plain = VariantSpec(spec.name, "quantize", spec.encoding)
        for name, component in model.components.items():
            built = build_matrix_variant(component, folder / "components" / name, spec, kept_items)
            changed = changed or built is not None
            if built is None and spec.kind == "svd":
                built = build_matrix_variant(component, folder / "components" / name, plain, None)
            components[name] = built if built is not None else component
        return BlendRecommender(model.weights, components) if changed else None
    if model.name not in FAMILIES:
        return None
    family = FAMILIES[model.name]
    params: dict[str, Any] = json.loads((folder / PARAMS_FILE).read_text(encoding="utf-8"))
    keep_factors = None
    if spec.kind == "svd":
        if family.factor_array is None or family.factors_param is None:
            return None
        total = int(params[family.factors_param])
        keep_factors = max(1, round(total * (spec.keep_fraction or 1.0)))
        if keep_factors >= total:
            return None
    kept = None
    if spec.kind == "prune":
        if kept_items is None or kept_items.size >= int(params["n_items"]):
            return None
        kept = kept_items
    return CompressedRecommender.from_model(
        model, params, spec.encoding, keep_factors=keep_factors, kept_items=kept
    )


__all__ = [
    "VariantSpec",
    "active_items",
    "build_matrix_variant",
    "matrix_specs",
    "onnx_specs",
]
