"""The package stage bundles the session model the evaluate stage kept (issue 15)."""

from __future__ import annotations

from pathlib import Path

from shelfwise._internal.sequences import Sequences
from shelfwise.evaluate.sessions import SESSION_MODEL_DIR
from shelfwise.package.bundle import KNOWN_ROLES, ROLE_SESSION
from shelfwise.package.stage import _session_component
from shelfwise.retrieval.session_knn import VSKNNRecommender


def _kept(evaluate: Path) -> None:
    model = VSKNNRecommender()
    model.fit_sequences(Sequences.from_rows([[0, 1], [1, 2]]), 3)
    model.save(evaluate / SESSION_MODEL_DIR)


def test_a_kept_session_model_becomes_the_session_role(tmp_path: Path) -> None:
    assert ROLE_SESSION in KNOWN_ROLES
    _kept(tmp_path)
    folders: dict[str, Path] = {"item_knn": tmp_path / "item_knn"}
    metrics = {"sessions": {"chosen": "vsknn(f=1)", "model": "vsknn"}}
    found = _session_component(tmp_path, metrics, {"recommender": "item_knn"}, folders)
    assert found == {ROLE_SESSION: "vsknn"}
    assert folders["vsknn"] == tmp_path / SESSION_MODEL_DIR


def test_runs_without_sessions_bundle_none(tmp_path: Path) -> None:
    # a time split: no sessions report and no kept model
    assert _session_component(tmp_path, {}, {"recommender": "ease"}, {}) == {}
    _kept(tmp_path)
    # a name another role already serves is not bound to a second folder
    folders = {"vsknn": tmp_path / "other"}
    metrics = {"sessions": {"model": "vsknn"}}
    assert _session_component(tmp_path, metrics, {"recommender": "vsknn"}, folders) == {}
