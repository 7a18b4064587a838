"""Selection: the smallest variant within budget, else the baseline."""

from __future__ import annotations

import numpy as np
import pytest

from shelfwise.compress.select import BASELINE, choose, relative_loss, result


def _variant(name: str, size: int, metric: float) -> object:
    return result(
        name,
        "quantize",
        size_bytes=size,
        metric=metric,
        latency_ms=1.0,
        baseline_size=1000,
        baseline_metric=0.30,
        budget=0.01,
    )


def test_smallest_within_budget_wins() -> None:
    variants = [
        _variant("float16", 500, 0.300),
        _variant("int8", 250, 0.2985),  # -0.5 %: within
        _variant("svd25_int8", 80, 0.28),  # -6.7 %: out
    ]
    assert [v.within_budget for v in variants] == [True, True, False]  # type: ignore[attr-defined]
    assert choose(variants, 1000) == "int8"  # type: ignore[arg-type]


def test_falls_back_to_baseline_when_nothing_fits() -> None:
    variants = [_variant("int8", 250, 0.25), _variant("bigger", 2000, 0.31)]
    assert choose(variants, 1000) == BASELINE  # type: ignore[arg-type]
    assert choose([], 1000) == BASELINE


def test_relative_loss_and_ratio() -> None:
    assert relative_loss(0.2, 0.19) == pytest.approx(0.05)
    assert relative_loss(0.2, 0.21) < 0
    assert relative_loss(0.0, 0.0) == 0.0
    assert _variant("int8", 250, 0.3).compression_ratio == 4.0  # type: ignore[attr-defined]


def test_faiss_variants_are_measured_against_exact_search() -> None:
    from shelfwise.compress.faiss_index import faiss_component

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(700, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    component = faiss_component(vectors, budget=0.01, seed=0)
    names = [v["name"] for v in component["variants"]]
    assert names[0] == "faiss_sq8"
    assert any(name.startswith("faiss_pq") for name in names)
    sq8 = component["variants"][0]
    assert sq8["metric"] >= 0.9  # recall@10 against exact search
    assert sq8["compression_ratio"] > 3
    assert component["applied"] is False
    tiny = faiss_component(vectors[:5], budget=0.01, seed=0)  # too few vectors for PQ
    assert [v["name"] for v in tiny["variants"]] == ["faiss_sq8"]
