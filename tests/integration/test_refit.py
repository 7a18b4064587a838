"""evaluate.refit_on_train_valid: valid chooses with train-only fits; test and serving
use the models refitted on train + valid."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from tests.conftest import shop_config

from shelfwise._internal.artifacts import read_csr
from shelfwise.config import ShelfwiseConfig
from shelfwise.evaluate.policy import allow_split, repeat_targets
from shelfwise.evaluate.recommend import evaluate_recommender
from shelfwise.evaluate.stage import _splits
from shelfwise.pipeline import RunOutcome, run_pipeline
from shelfwise.retrieval import REPEAT_MODELS, UserHistories, load_recommender
from shelfwise.retrieval.fitting import TrainingData, build_model, fit_model

if TYPE_CHECKING:
    from shelfwise.sample import ShopSummary

# deterministic fits only, so two runs can be compared number for number
DISABLED = ("user_knn", "gfcf", "rp3beta", "als", "bpr", "content")


def _config(base: ShelfwiseConfig, *, refit: bool) -> ShelfwiseConfig:
    families = base.models.families()
    models = base.models.model_copy(
        update={name: families[name].model_copy(update={"enabled": False}) for name in DISABLED}
    )
    evaluate = base.evaluate.model_copy(update={"refit_on_train_valid": refit})
    return base.model_copy(update={"models": models, "evaluate": evaluate})


def _read(folder: Path, name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((folder / name).read_text())
    return loaded


@pytest.fixture(scope="module")
def config(tiny_shop: ShopSummary, tmp_path_factory: pytest.TempPathFactory) -> ShelfwiseConfig:
    """The tiny shop's config with a state folder shared by this module's runs."""
    return shop_config(tiny_shop, tmp_path_factory.mktemp("refit") / "state")


@pytest.fixture(scope="module")
def runs(config: ShelfwiseConfig) -> tuple[RunOutcome, RunOutcome]:
    """The whole pipeline with the refit, then (stages up to tune reused) without it."""
    refitted = run_pipeline(_config(config, refit=True))
    train_only = run_pipeline(_config(config, refit=False), until="evaluate")
    return refitted, train_only


def test_valid_chooses_the_same_with_and_without_refit(
    runs: tuple[RunOutcome, RunOutcome],
) -> None:
    refitted, train_only = (_read(r.run_dir / "evaluate", "metrics.json") for r in runs)
    assert refitted["recommendation"]["valid"] == train_only["recommendation"]["valid"]
    assert refitted["selected"] == train_only["selected"]
    assert refitted["blend"].get("weights") == train_only["blend"].get("weights")
    # test users are scored by other (refitted) models
    assert refitted["recommendation"]["test"] != train_only["recommendation"]["test"]


def test_served_models_are_fitted_on_train_and_valid(
    runs: tuple[RunOutcome, RunOutcome],
) -> None:
    refitted, train_only = runs
    retrieval = refitted.run_dir / "retrieval"
    features = refitted.run_dir / "features"
    fitted = _read(retrieval, "models.json")
    names = [name for name, info in fitted.items() if info["kind"] == "recommender"]
    assert names
    refit_data = TrainingData.load(features, split="train_valid")
    # rows and ordered items: sequential and repeat models read the order
    histories = UserHistories.select(refit_data.matrix, refit_data.sequences, np.arange(50))
    for name in names:
        assert fitted[name]["fit_on"] == "train_valid"
        train_fit = retrieval / "train_fit" / name
        for folder, split in ((retrieval / name, "train_valid"), (train_fit, "train")):
            fresh = build_model(name, fitted[name]["params"])
            fit_model(fresh, TrainingData.load(features, split=split))
            saved = load_recommender(name, folder)
            np.testing.assert_allclose(saved.score(histories), fresh.score(histories), rtol=1e-6)
        refit_scores = load_recommender(name, retrieval / name).score(histories)
        train_scores = load_recommender(name, retrieval / "train_fit" / name).score(histories)
        if name not in REPEAT_MODELS:  # these score the user's own history alone
            assert not np.allclose(refit_scores, train_scores), name

    off = _read(train_only.run_dir / "retrieval", "models.json")
    assert {info["fit_on"] for info in off.values() if info["kind"] == "recommender"} == {"train"}
    assert not (train_only.run_dir / "retrieval" / "train_fit").exists()


def test_test_metrics_come_from_the_refitted_models(
    config: ShelfwiseConfig, runs: tuple[RunOutcome, RunOutcome]
) -> None:
    refitted, _ = runs
    config = _config(config, refit=True)
    features = refitted.run_dir / "features"
    metrics = _read(refitted.run_dir / "evaluate", "metrics.json")
    test = _splits(features, config)["test"]
    if metrics["selected"].get("repeat_policy") == "allow":  # repeat targets count then
        every = repeat_targets(features, "test")
        assert every is not None
        test = allow_split(test, every, max_users=config.evaluate.max_eval_users, seed=config.seed)
    popularity = np.asarray(read_csr(features / "train.npz").sum(axis=0)).ravel()
    recomputed, _ = evaluate_recommender(
        load_recommender("ease", refitted.run_dir / "retrieval" / "ease"),
        test,
        config.evaluate.k_values,
        item_popularity=popularity.astype(np.float64),
        label="ease",
    )
    stored = metrics["recommendation"]["test"]["ease"]
    # the stage adds repeat vs explore metrics (recall_repeat@K, …) to the ranking ones
    assert recomputed == pytest.approx({name: stored[name] for name in recomputed})


def test_the_bundle_serves_the_refitted_models(runs: tuple[RunOutcome, RunOutcome]) -> None:
    refitted, _ = runs
    assert refitted.bundle_path is not None
    manifest = _read(refitted.bundle_path, "manifest.json")
    selected = manifest["components"]["recommender"]
    stage = "evaluate" if selected == "blend" else "retrieval"
    served = refitted.run_dir / stage / selected
    compressed = refitted.run_dir / "compress" / "models" / selected  # built from the refit
    served = compressed if compressed.is_dir() else served
    bundled = refitted.bundle_path / "models" / selected
    files = [path for path in served.rglob("*") if path.is_file()]
    assert files
    for path in files:
        assert (bundled / path.relative_to(served)).read_bytes() == path.read_bytes()
    if selected == "blend":  # the click model's valid candidates: the train-only blend
        assert (refitted.run_dir / "evaluate" / "train_fit" / "blend" / "params.json").is_file()
