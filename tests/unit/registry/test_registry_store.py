"""ModelRegistry on a real embedded MLflow store (sqlite + local artifacts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shelfwise.errors import BundleNotFoundError, RegistryError
from shelfwise.registry import CHALLENGER, CHAMPION, ModelRegistry, check_version
from shelfwise.registry.tracking import RunLogger, flatten_numbers, flatten_params, metric_name


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        model_name="shop",
        experiment="shop",
        artifact_location=(tmp_path / "artifacts").as_uri(),
        cache_dir=tmp_path / "downloads",
    )


def _bundle(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"name": name}))
    return folder


def _register(registry: ModelRegistry, tmp_path: Path, name: str) -> str:
    logger = RunLogger(registry, f"run-{name}")
    logger.log_metrics({"headline/ndcg_at_10": 0.25})
    logger.log_bundle(_bundle(tmp_path, name))
    logger.finish()
    version, new = registry.register(logger.mlflow_run_id, f"fp-{name}", {})
    assert new
    return version.version


def test_versions_are_registered_once_per_bundle_content(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    assert registry.versions() == []
    first = _register(registry, tmp_path, "a")
    logger = RunLogger(registry, "rerun")
    again, new = registry.register(logger.mlflow_run_id, "fp-a", {})
    assert (again.version, new) == (first, False)
    listed = registry.versions()
    assert [v.version for v in listed] == ["1"]
    assert listed[0].metrics["headline/ndcg_at_10"] == pytest.approx(0.25)
    assert (registry.local_path(first) / "manifest.json").is_file()


def test_promote_and_rollback_move_the_champion_and_keep_the_history(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    one, two, three = (_register(registry, tmp_path, name) for name in "abc")
    registry.promote(one, "first")
    registry.mark_challenger(two, "canary")
    assert registry.by_alias(CHALLENGER).version == two  # type: ignore[union-attr]
    registry.promote(two, "better")
    assert registry.by_alias(CHALLENGER) is None  # a promoted challenger is champion now
    registry.promote(three, "best")

    move = registry.rollback("bad canary")
    assert (move.old, move.new) == (three, two)
    assert registry.by_alias(CHAMPION).version == two  # type: ignore[union-attr]
    assert registry.rollback().new == one
    with pytest.raises(RegistryError, match="no earlier one"):
        registry.rollback()
    assert [v.version for v in registry.versions()] == [one, two, three]  # nothing deleted
    log = registry.alias_log()
    assert [(e["alias"], e["old"], e["new"]) for e in log][-2:] == [
        ("champion", three, two),
        ("champion", two, one),
    ]
    assert log[-2]["reason"] == "bad canary"


def test_rollback_without_a_champion_says_so(registry: ModelRegistry, tmp_path: Path) -> None:
    _register(registry, tmp_path, "a")
    with pytest.raises(RegistryError, match="no champion"):
        registry.rollback()


@pytest.mark.parametrize("bad", ["../1", "1/../../etc", "v1", "", "0", "-1", "1 2", "１"])
def test_version_names_are_numbers_only(bad: str) -> None:
    with pytest.raises(RegistryError, match="not a model version"):
        check_version(bad)
    assert check_version(" 12 ") == "12"


def test_unknown_version_lists_the_known_ones(registry: ModelRegistry, tmp_path: Path) -> None:
    _register(registry, tmp_path, "a")
    with pytest.raises(RegistryError, match="no version 7; versions: 1"):
        registry.get(7)


def test_a_deleted_bundle_is_reported_with_its_path(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    version = _register(registry, tmp_path, "a")
    path = registry.local_path(version)
    (path / "manifest.json").unlink()
    with pytest.raises(BundleNotFoundError, match="holds no bundle"):
        registry.local_path(version)


def test_unreachable_store_is_a_registry_error(tmp_path: Path) -> None:
    broken = ModelRegistry(
        tracking_uri="nosuchscheme://registry.invalid",
        model_name="shop",
        experiment="shop",
        cache_dir=tmp_path,
    )
    with pytest.raises(RegistryError, match=r"registry\.tracking_uri"):
        broken.versions()


def test_metric_and_param_names_are_mlflow_safe() -> None:
    assert metric_name("test", "als", "ndcg@10") == "test/als/ndcg_at_10"
    flat = flatten_numbers({"a": {"ndcg@10": 0.5, "flag": True, "nan": float("nan")}}, "valid")
    assert flat == {"valid/a/ndcg_at_10": 0.5}
    params = flatten_params({"models": {"als": {"factors": 64}, "list": [1, 2]}, "x": None})
    assert params == {"models.als.factors": "64", "models.list": "[1, 2]", "x": "null"}
