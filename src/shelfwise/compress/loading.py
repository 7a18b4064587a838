"""Loading any saved recommender folder: retrieval's families and compressed variants.

A bundle stores a compressed variant under its base model's name (`models/als/` may
hold a `CompressedRecommender`, `models/sasrec/` a `SASRecOnnxRecommender`); the kind
is read from the folder's params.json. Blends load their components through this
loader too, so a blend of compressed components loads. This is the recommender loader
of the online role: numpy, scipy and (for ONNX graphs) onnxruntime only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from shelfwise.compress.models import KIND as COMPRESSED
from shelfwise.compress.onnx_sasrec import KIND as SASREC_ONNX
from shelfwise.retrieval import RECOMMENDERS, Recommender
from shelfwise.retrieval import load_recommender as load_family
from shelfwise.retrieval.tables import resolve, saved_name

# kind (params.json "name") -> "module:Class" of the compressed variants
COMPRESSED_RECOMMENDERS: Final[dict[str, str]] = {
    COMPRESSED: "shelfwise.compress.models:CompressedRecommender",
    SASREC_ONNX: "shelfwise.compress.onnx_sasrec:SASRecOnnxRecommender",
}


def recommender_names() -> tuple[str, ...]:
    """Every registered recommender kind: retrieval's families and compressed kinds."""
    return tuple(sorted({*RECOMMENDERS, *COMPRESSED_RECOMMENDERS}))


def compressed_class(kind: str) -> type[Recommender]:
    """The class of a compressed kind (imported now).

    Raises:
        LookupError: not one of `COMPRESSED_RECOMMENDERS`.
    """
    cls: type[Recommender] = resolve(COMPRESSED_RECOMMENDERS, kind, kind="compressed model")
    return cls


def load_recommender(name: str, folder: Path) -> Recommender:
    """Load any saved recommender folder, exact or compressed, by its served name.

    Args:
        name: the registered family the folder serves as (a compressed folder keeps
            its base model's name).
        folder: the saved model folder.

    Raises:
        LookupError: an unknown family.
        ArtifactError: a damaged or foreign folder.
    """
    kind = saved_name(folder)
    if kind in COMPRESSED_RECOMMENDERS:
        return compressed_class(kind).load(folder)
    return load_family(name, folder, loader=load_recommender)


__all__ = [
    "COMPRESSED_RECOMMENDERS",
    "compressed_class",
    "load_recommender",
    "recommender_names",
]
