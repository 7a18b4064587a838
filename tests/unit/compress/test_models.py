"""Compressed recommenders: same protocol, load through the registry, no pickle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from shelfwise.compress import load_recommender
from shelfwise.compress.models import CompressedRecommender
from shelfwise.compress.quantize import top_k_overlap
from shelfwise.compress.variants import VariantSpec, build_matrix_variant
from shelfwise.errors import NotReadyError
from shelfwise.retrieval import Recommender, recommender_class
from shelfwise.retrieval.blend import BlendRecommender


def _train() -> sp.csr_matrix:
    rng = np.random.default_rng(0)
    dense = (rng.random((120, 60)) < 0.15).astype(np.float32)
    dense[:, :6] = 1.0  # popular items: every model agrees they rank high
    return sp.csr_matrix(dense)


def _fitted(name: str, folder: Path) -> Recommender:
    params = {"als": {"factors": 8, "iterations": 3}, "bpr": {"factors": 8, "iterations": 5}}
    model = recommender_class(name)(**params.get(name, {}))
    assert isinstance(model, Recommender)
    model.fit(_train())
    model.save(folder / name)
    return model


@pytest.mark.parametrize("name", ["als", "bpr", "ease", "item_knn", "gfcf", "rp3beta"])
@pytest.mark.parametrize("encoding", ["float16", "int8_row", "int8_column"])
def test_compressed_scores_close_and_loads_as_the_base(
    tmp_path: Path, name: str, encoding: str
) -> None:
    base = _fitted(name, tmp_path)
    spec = VariantSpec(encoding, "quantize", encoding)
    small = build_matrix_variant(base, tmp_path / name, spec, None)
    assert isinstance(small, CompressedRecommender)
    small.save(tmp_path / "small")
    loaded = load_recommender(name, tmp_path / "small")  # the served name, not "compressed"
    assert isinstance(loaded, CompressedRecommender)
    assert isinstance(loaded, Recommender)
    assert loaded.name == name
    histories = _train()[:20]
    exact, approx = base.score(histories), loaded.score(histories)
    assert approx.shape == exact.shape
    assert approx.dtype == np.float32
    assert top_k_overlap(exact, approx, 10) >= 0.85
    files = [p for p in (tmp_path / "small").rglob("*") if p.is_file()]
    assert {p.suffix for p in files} <= {".npy", ".json"}  # plain arrays, no pickle
    for path in files:
        if path.suffix == ".npy":
            np.load(path, allow_pickle=False)


def test_int8_factors_are_about_four_times_smaller(tmp_path: Path) -> None:
    base = _fitted("als", tmp_path)
    small = build_matrix_variant(
        base, tmp_path / "als", VariantSpec("int8", "quantize", "int8_row"), None
    )
    assert small is not None
    small.save(tmp_path / "small")
    stored = np.load(tmp_path / "small" / "arrays" / "item_factors.npy")
    assert stored.dtype == np.int8
    assert stored.nbytes * 4 == np.load(tmp_path / "als" / "item_factors.npy").nbytes


def test_svd_variant_keeps_fewer_factors(tmp_path: Path) -> None:
    base = _fitted("bpr", tmp_path)
    spec = VariantSpec("svd50_int8", "svd", "int8_row", keep_fraction=0.5)
    small = build_matrix_variant(base, tmp_path / "bpr", spec, None)
    assert isinstance(small, CompressedRecommender)
    assert small.base_params["factors"] == 4
    assert small.score(_train()[:3]).shape == (3, 60)
    assert build_matrix_variant(_fitted("ease", tmp_path), tmp_path / "ease", spec, None) is None


def test_pruned_items_are_never_recommended(tmp_path: Path) -> None:
    base = _fitted("item_knn", tmp_path)
    kept = np.arange(0, 60, 2)
    spec = VariantSpec("prune", "prune", "int8_row")
    small = build_matrix_variant(base, tmp_path / "item_knn", spec, kept)
    assert isinstance(small, CompressedRecommender)
    small.save(tmp_path / "small")
    loaded = load_recommender("item_knn", tmp_path / "small")
    assert isinstance(loaded, CompressedRecommender)
    scores = loaded.score(_train()[:5])
    assert np.all(np.isneginf(scores[:, 1::2]))
    assert np.all(np.isfinite(scores[:, ::2]))
    items, _ = loaded.similar(0, 10)
    assert np.all(items % 2 == 0)


def test_blend_compresses_each_component(tmp_path: Path) -> None:
    components = {"als": _fitted("als", tmp_path), "ease": _fitted("ease", tmp_path)}
    blend = BlendRecommender({"als": 0.5, "ease": 0.5}, components)
    blend.save(tmp_path / "blend")
    spec = VariantSpec("int8", "quantize", "int8_row")
    small = build_matrix_variant(blend, tmp_path / "blend", spec, None)
    assert isinstance(small, BlendRecommender)
    small.save(tmp_path / "small")
    params = json.loads((tmp_path / "small" / "components" / "als" / "params.json").read_text())
    assert params["name"] == "compressed"
    loaded = load_recommender("blend", tmp_path / "small")
    assert top_k_overlap(blend.score(_train()[:10]), loaded.score(_train()[:10]), 10) >= 0.85  # type: ignore[union-attr]


def test_compressed_models_are_not_trained(tmp_path: Path) -> None:
    small = build_matrix_variant(
        _fitted("ease", tmp_path), tmp_path / "ease", VariantSpec("f", "quantize", "float16"), None
    )
    assert small is not None
    with pytest.raises(NotReadyError, match="compress"):
        small.fit(_train())


def test_dense_enough_sparse_weights_store_codes_without_indices(tmp_path: Path) -> None:
    base = _fitted("gfcf", tmp_path)
    linear = base.linear_filter  # type: ignore[attr-defined]
    assert linear.nnz * 3 > linear.shape[0] * linear.shape[1]  # CSR int8 + uint16 costs more
    spec = VariantSpec("int8", "quantize", "int8_row")
    small = build_matrix_variant(base, tmp_path / "gfcf", spec, None)
    assert isinstance(small, CompressedRecommender)
    small.save(tmp_path / "small")
    arrays = tmp_path / "small" / "arrays"
    codes = np.load(arrays / "linear_filter.npy")
    assert codes.dtype == np.int8
    assert codes.shape == linear.shape
    assert not (arrays / "linear_filter.indices.npy").exists()
    loaded = load_recommender("gfcf", tmp_path / "small")
    assert isinstance(loaded, CompressedRecommender)
    decoded = loaded.model.linear_filter  # type: ignore[attr-defined]
    assert sp.issparse(decoded)
    # per-row int8: every entry within half a scale step of the float value
    step = np.abs(linear.toarray()).max(axis=1, keepdims=True) / 127
    assert np.all(np.abs(decoded.toarray() - linear.toarray()) <= step / 2 + 1e-6)


def test_sparse_weights_keep_csr_when_sparse(tmp_path: Path) -> None:
    from shelfwise.retrieval.rp3beta import RP3betaRecommender

    base = RP3betaRecommender(neighbours=5)  # 5 of 60 items per row: sparse
    base.fit(_train())
    base.save(tmp_path / "rp3beta")
    spec = VariantSpec("int8", "quantize", "int8_row")
    small = build_matrix_variant(base, tmp_path / "rp3beta", spec, None)
    assert isinstance(small, CompressedRecommender)
    small.save(tmp_path / "small")
    arrays = tmp_path / "small" / "arrays"
    assert not (arrays / "similarity.npy").exists()
    assert np.load(arrays / "similarity.indices.npy").dtype == np.uint16
    assert np.load(arrays / "similarity.indptr.npy").dtype == np.int32
    loaded = load_recommender("rp3beta", tmp_path / "small")
    assert isinstance(loaded, Recommender)
    histories = _train()[:10]
    assert top_k_overlap(base.score(histories), loaded.score(histories), 10) >= 0.85
