"""The click model at inference: save/load round trips, serving = training features."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from shelfwise._internal.artifacts import read_csr
from shelfwise.errors import ArtifactError, DataError
from shelfwise.ranking import FEATURE_NAMES, ClickModel
from shelfwise.ranking._candidates import labelled_pairs, retrieve
from shelfwise.ranking._train import fit_mlp, standardisation
from shelfwise.ranking.stage import _tables
from shelfwise.retrieval import load_recommender


@pytest.fixture(scope="module")
def served(stage_run: Any) -> ClickModel:
    return ClickModel.load(stage_run.out / "model")


def _some_requests(model: ClickModel, seed: int = 0) -> tuple[sp.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    histories = sp.random(
        5, model.n_items, density=0.05, random_state=seed, format="csr", dtype=np.float32
    )
    items = rng.integers(0, model.n_items, size=(5, 12))
    items[1, 8:] = -1
    return histories, items


def test_lightgbm_round_trip_gives_identical_probabilities(
    served: ClickModel, tmp_path: Path
) -> None:
    histories, items = _some_requests(served)
    scores = np.random.default_rng(1).random((5, served.n_items)).astype(np.float32)
    before = served.predict(histories, items, scores, user_indices=np.arange(5))
    served.save(tmp_path / "copy")
    after = ClickModel.load(tmp_path / "copy").predict(
        histories, items, scores, user_indices=np.arange(5)
    )
    np.testing.assert_array_equal(before, after)
    assert np.isnan(before[1, 8:]).all()
    assert np.all((before[~np.isnan(before)] >= 0) & (before[~np.isnan(before)] <= 1))


def test_mlp_round_trip_gives_identical_probabilities(served: ClickModel, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(600, len(FEATURE_NAMES))).astype(np.float32)
    labels = (features[:, 8] > 0.5).astype(np.int8)
    fitted = fit_mlp(features[:500], labels[:500], features[500:], labels[500:], seed=1)
    mean, std = standardisation(features[:500])
    model = ClickModel(
        scorer=fitted.scorer, items=served.items, users=served.users, mean=mean, std=std
    )
    model.save(tmp_path / "mlp")
    loaded = ClickModel.load(tmp_path / "mlp")
    assert loaded.kind == "mlp"
    assert (tmp_path / "mlp" / "mlp.safetensors").is_file()
    histories, items = _some_requests(served)
    np.testing.assert_array_equal(model.predict(histories, items), loaded.predict(histories, items))
    assert fitted.report["hidden"] == [64, 32]


def test_single_user_shapes(served: ClickModel) -> None:
    history = sp.csr_matrix((1, served.n_items), dtype=np.float32)
    probabilities = served.predict(history, np.array([0, 3, 5]))
    assert probabilities.shape == (3,)
    assert probabilities.dtype == np.float32
    with pytest.raises(DataError, match="do not match"):
        served.predict(history, np.zeros((2, 3), dtype=np.int64))
    with pytest.raises(DataError, match="outside"):
        served.predict(history, np.array([served.n_items]))


def test_serving_features_equal_training_features(stage_run: Any, served: ClickModel) -> None:
    """predict() from full retriever scores rebuilds the stage's own feature rows."""
    inputs = stage_run.inputs
    items_table, users_table = _tables(inputs.features)["train"]
    train = read_csr(inputs.features / "train.npz").astype(np.float32)
    retriever = load_recommender("item_knn", inputs.retrieval / "item_knn")
    users = np.flatnonzero(read_csr(inputs.features / "valid_targets.npz").getnnz(axis=1))[:7]
    candidates = retrieve(retriever, train, users, served.candidates, sequences=None, label="t")
    pairs = labelled_pairs(
        candidates, read_csr(inputs.features / "valid_targets.npz"), items_table, users_table
    )
    model = served.with_tables(items_table, users_table)
    expected = pairs.grid(model.probabilities(pairs.features))
    scores = retriever.score(train[users])
    predicted = model.predict(
        train[users], candidates.items, scores, user_indices=users.astype(np.int64)
    )
    np.testing.assert_allclose(predicted, expected, rtol=1e-6, equal_nan=True)


def test_features_json_describes_the_model(stage_run: Any) -> None:
    spec = json.loads((stage_run.out / "model" / "features.json").read_text())
    assert spec["feature_names"] == list(FEATURE_NAMES)
    assert len(spec["standardisation"]["mean"]) == len(FEATURE_NAMES)
    assert spec["retriever"] == "item_knn"
    assert spec["candidates"] == 100
    names = {p.name for p in (stage_run.out / "model").iterdir()}
    assert {"features.json", "item_popularity.npy", "item_category.npy"} <= names
    assert not any(name.endswith((".pkl", ".pickle")) for name in names)


def test_other_feature_set_is_refused(stage_run: Any, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(stage_run.out / "model", folder)
    spec = json.loads((folder / "features.json").read_text())
    spec["feature_names"] = [*spec["feature_names"][:-1], "feature_from_the_future"]
    (folder / "features.json").write_text(json.dumps(spec))
    with pytest.raises(ArtifactError, match="features this shelfwise does not compute"):
        ClickModel.load(folder)


def test_feature_list_shorter_than_the_model_is_refused(stage_run: Any, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(stage_run.out / "model", folder)
    spec = json.loads((folder / "features.json").read_text())
    spec["feature_names"] = spec["feature_names"][:-1]
    (folder / "features.json").write_text(json.dumps(spec))
    with pytest.raises(ArtifactError, match="lists 15 features but its"):
        ClickModel.load(folder)
