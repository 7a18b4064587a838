"""Pruning a served blend: pruned items score −inf and the normalisation skips them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from shelfwise.compress import load_recommender
from shelfwise.compress.models import CompressedRecommender
from shelfwise.compress.variants import VariantSpec, build_matrix_variant
from shelfwise.retrieval import Recommender, recommender_class, top_k_unseen
from shelfwise.retrieval.blend import BlendRecommender, normalise_rows

PRUNE = VariantSpec("prune30d_int8", "prune", "int8_row")


def _train() -> sp.csr_matrix:
    rng = np.random.default_rng(1)
    dense = (rng.random((80, 40)) < 0.2).astype(np.float32)
    dense[:, :4] = 1.0
    return sp.csr_matrix(dense)


def _blend(tmp_path: Path, weights: dict[str, float]) -> BlendRecommender:
    components: dict[str, Recommender] = {}
    for name in weights:
        model = recommender_class(name)(
            **({"factors": 6, "iterations": 3} if name == "als" else {})
        )
        assert isinstance(model, Recommender)
        model.fit(_train())
        components[name] = model
    blend = BlendRecommender(weights, components)
    blend.save(tmp_path / "blend")
    return blend


def test_normalise_rows_skips_minus_infinity_by_hand() -> None:
    scores = np.array(
        [[-np.inf, 1.0, 3.0, -np.inf], [2.0, 2.0, -np.inf, 2.0], [-np.inf] * 4],
        dtype=np.float32,
    )
    expected = np.array(
        [[-np.inf, 0.0, 1.0, -np.inf], [0.0, 0.0, -np.inf, 0.0], [-np.inf] * 4],
        dtype=np.float32,
    )
    np.testing.assert_array_equal(normalise_rows(scores), expected)


def test_finite_rows_normalise_as_before() -> None:
    scores = np.array([[1.0, 3.0, 2.0], [5.0, 5.0, 5.0]], dtype=np.float32)
    np.testing.assert_array_equal(
        normalise_rows(scores), np.array([[0.0, 1.0, 0.5], [0.0, 0.0, 0.0]], np.float32)
    )


@pytest.mark.parametrize("weights", [{"als": 0.6, "rp3beta": 0.4}, {"ease": 1.0, "gfcf": 0.0}])
def test_pruned_blend_scores_kept_items_as_a_blend_over_them(
    tmp_path: Path, weights: dict[str, float]
) -> None:
    blend = _blend(tmp_path, weights)
    kept = np.arange(0, 40, 2)
    pruned = build_matrix_variant(blend, tmp_path / "blend", PRUNE, kept)
    assert isinstance(pruned, BlendRecommender)
    pruned.save(tmp_path / "pruned")
    loaded = load_recommender("blend", tmp_path / "pruned")
    assert isinstance(loaded, BlendRecommender)
    assert all(isinstance(c, CompressedRecommender) for c in loaded.components.values())

    histories = _train()[:12]
    scores = loaded.score(histories)
    assert not np.isnan(scores).any()
    assert np.isneginf(scores[:, 1::2]).all()
    assert np.isfinite(scores[:, ::2]).all()
    # oracle: each component's scores min-max normalised over the kept items only
    expected = np.zeros((12, kept.size), dtype=np.float64)
    for name, component in loaded.components.items():
        part = component.score(histories)[:, kept].astype(np.float64)
        low, high = part.min(axis=1, keepdims=True), part.max(axis=1, keepdims=True)
        span = np.where(high > low, high - low, 1.0)
        expected += weights[name] * (part - low) / span
    np.testing.assert_allclose(scores[:, kept], expected, rtol=1e-5, atol=1e-6)
    ranked = top_k_unseen(scores, 10, seen=histories)[0]
    assert np.all(ranked[ranked >= 0] % 2 == 0)  # a pruned item is never recommended
