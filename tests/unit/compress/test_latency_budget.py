"""The latency budget: a smaller variant that is much slower than the uncompressed
model is not chosen, and the report says why (issue 14, point 7: an int8 ONNX SASRec
at 6.9 ms per request was chosen over float32 at 1.5 ms).

Latencies are fixed by the tests (a fake measurement), never read from the clock.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from shelfwise.compress.measure import paired_median_ms
from shelfwise.compress.select import (
    BASELINE,
    LatencyBudget,
    VariantResult,
    choose,
    choose_with_reason,
    result,
)


def _variant(
    name: str,
    size: int,
    latency_ms: float,
    *,
    baseline_ms: float = 1.5,
    budget: LatencyBudget | None = None,
    metric: float = 0.30,
) -> VariantResult:
    return result(
        name,
        "onnx",
        size_bytes=size,
        metric=metric,
        latency_ms=latency_ms,
        baseline_size=1000,
        baseline_metric=0.30,
        budget=0.01,
        baseline_latency_ms=baseline_ms,
        latency_budget=LatencyBudget() if budget is None else budget,
    )


def test_a_much_slower_variant_is_not_chosen_and_the_report_says_why() -> None:
    fast = _variant("onnx_float32", 900, 1.4)
    slow = _variant("onnx_int8", 300, 6.9)
    assert fast.within_budget
    assert fast.within_latency_budget
    assert fast.latency_ratio == pytest.approx(0.933, abs=1e-3)
    assert not slow.within_budget
    assert not slow.within_latency_budget
    assert slow.latency_ratio == pytest.approx(4.6)
    assert slow.rejected == (
        "latency 6.900 ms is 4.60x the uncompressed model's 1.500 ms "
        "(compress.max_latency_ratio 1.2)"
    )
    assert slow.notes.endswith("not chosen: " + slow.rejected)
    assert choose([fast, slow], 1000) == "onnx_float32"
    assert choose_with_reason([slow], 1000) == (
        BASELINE,
        f"no variant is within budget (onnx_int8: {slow.rejected})",
    )


def test_without_a_ratio_limit_the_smallest_variant_wins_again() -> None:
    unlimited = LatencyBudget(max_ratio=None)
    slow = _variant("onnx_int8", 300, 6.9, budget=unlimited)
    assert slow.within_budget
    assert choose([_variant("onnx_float32", 900, 1.4, budget=unlimited), slow], 1000) == (
        "onnx_int8"
    )


def test_small_slowdowns_within_the_tolerance_never_count() -> None:
    budget = LatencyBudget(max_ratio=1.2, tolerance_ms=0.1)
    # 0.054 -> 0.084 ms is 1.56x, but 30 microseconds: timer noise, not a cost
    assert _variant("faiss_sq8", 250, 0.084, baseline_ms=0.054, budget=budget).within_budget
    assert not _variant("int8", 250, 0.3, baseline_ms=0.054, budget=budget).within_budget
    # at the limit exactly: within
    assert _variant("int8", 250, 1.8, budget=LatencyBudget(max_ratio=1.2)).within_budget


def test_an_absolute_limit_applies_on_its_own() -> None:
    budget = LatencyBudget(max_ratio=None, max_ms=2.0)
    assert _variant("a", 300, 1.9, budget=budget).within_budget
    over = _variant("b", 300, 2.5, budget=budget)
    assert not over.within_budget
    assert over.rejected == "latency 2.500 ms is over compress.max_latency_ms 2"


def test_quality_and_latency_reasons_are_both_given() -> None:
    both = _variant("int8", 300, 6.9, metric=0.25)
    assert not both.within_budget
    assert both.rejected.startswith("quality: loses 16.67% of the metric")
    assert "4.60x" in both.rejected


def test_paired_timing_alternates_which_model_goes_first() -> None:
    calls: list[tuple[str, int]] = []
    first, second = paired_median_ms(
        lambda i: calls.append(("base", i)), lambda i: calls.append(("variant", i)), 4
    )
    assert calls == [
        ("base", 0),
        ("variant", 0),
        ("variant", 1),
        ("base", 1),
        ("base", 2),
        ("variant", 2),
        ("variant", 3),
        ("base", 3),
    ]
    assert first >= 0.0
    assert second >= 0.0
    assert paired_median_ms(lambda i: None, lambda i: None, 0) == (0.0, 0.0)


# -- the stage: a component with fixed latencies -------------------------------------


@pytest.fixture(scope="module")
def ease_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A fitted EASE model saved to a folder, and a validation split to measure on."""
    from shelfwise._internal.sequences import Sequences
    from shelfwise.evaluate.recommend import EvalSplit
    from shelfwise.retrieval.base import UserHistories
    from shelfwise.retrieval.ease import EASERecommender

    rng = np.random.default_rng(0)
    n_users, n_items = 60, 120
    history = sp.csr_matrix((rng.random((n_users, n_items)) < 0.1).astype(np.float32))
    targets = sp.csr_matrix((rng.random((n_users, n_items)) < 0.03).astype(np.float32))
    model = EASERecommender(l2=10.0)
    model.fit(UserHistories(history))
    folder = tmp_path_factory.mktemp("ease") / "ease"
    model.save(folder)
    rows = [history[user].indices.tolist() for user in range(n_users)]
    split = EvalSplit(
        history=history,
        sequences=Sequences.from_rows(rows),
        targets=targets,
        users=np.flatnonzero(targets.getnnz(axis=1) > 0).astype(np.int64),
    )
    return folder, split


def _component(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    ease_folder: tuple[Path, Any],
    latencies: dict[str, float],
    **compress: Any,
) -> dict[str, Any]:
    """The stage's report entry for EASE when each variant takes a fixed time (the
    uncompressed model 1.5 ms): a fake measurement in place of the clock."""
    from shelfwise.compress import measure, stage
    from shelfwise.compress.variants import matrix_specs
    from shelfwise.config import load_config

    names: dict[int, str] = {}
    build = stage._build

    def recording(model: Any, folder: Path, spec: Any, kept: Any) -> Any:
        built = build(model, folder, spec, kept)
        names[id(built)] = spec.name
        return built

    def fixed(baseline: Any, variant: Any, split: Any, users: int) -> tuple[float, float]:
        return 1.5, latencies[names[id(variant)]]

    monkeypatch.setattr(stage, "_build", recording)
    monkeypatch.setattr(measure, "paired_latency_ms", fixed)
    monkeypatch.setattr(measure, "median_latency_ms", lambda model, split, users: 1.5)
    config = load_config(
        None,
        environ={},
        overrides={
            "home": str(tmp_path / "home"),
            "compress.budget_relative": 1.0,  # quality never decides here
            "compress.variants": ["float16", "int8"],
            **{f"compress.{key}": value for key, value in compress.items()},
        },
    )
    folder, split = ease_folder
    ctx = stage.StageContext(config=config, run_dir=tmp_path, inputs={}, out=tmp_path / "out")
    specs = matrix_specs(config.compress)
    return stage._compress_component(ctx, config, "ease", folder, folder, specs, split, tmp_path)


def test_stage_keeps_a_small_but_slow_variant_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ease_folder: tuple[Path, Any]
) -> None:
    component = _component(tmp_path, monkeypatch, ease_folder, {"float16": 1.4, "int8": 6.9})
    variants = {v["name"]: v for v in component["variants"]}
    int8 = variants["int8"]
    assert int8["size_bytes"] < variants["float16"]["size_bytes"]  # the smallest...
    assert int8["latency_ratio"] == pytest.approx(4.6)
    assert int8["within_latency_budget"] is False
    assert int8["within_budget"] is False  # ... yet not eligible
    assert "compress.max_latency_ratio 1.2" in int8["rejected"]
    assert component["chosen"] == "float16"
    assert component["reason"] == "the smallest variant within the quality and latency budgets"
    assert (tmp_path / "out" / "models" / "ease").is_dir()


def test_stage_chooses_the_smallest_variant_when_it_is_fast_enough(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ease_folder: tuple[Path, Any]
) -> None:
    component = _component(tmp_path, monkeypatch, ease_folder, {"float16": 1.4, "int8": 1.6})
    assert component["chosen"] == "int8"
    # with the ratio limit off, the slow variant is chosen again: latency only reported
    off = _component(
        tmp_path / "off",
        monkeypatch,
        ease_folder,
        {"float16": 1.4, "int8": 6.9},
        max_latency_ratio=None,
    )
    assert off["chosen"] == "int8"
    assert off["variants"][1]["latency_ratio"] == pytest.approx(4.6)
    # nothing within the latency budget: the uncompressed model stays, and says why
    none = _component(tmp_path / "none", monkeypatch, ease_folder, {"float16": 9.0, "int8": 6.9})
    assert none["chosen"] == BASELINE
    assert none["reason"].startswith("no variant is within budget (float16: latency 9.000 ms")
