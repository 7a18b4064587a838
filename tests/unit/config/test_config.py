from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shelfwise.config import ShelfwiseConfig, load_config
from shelfwise.config.template import render_template
from shelfwise.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "shelfwise.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_file() -> None:
    config = load_config(None, environ={})
    assert config.evaluate.primary_metric == "ndcg@10"
    assert config.split.method == "time"
    assert config.data.events is None


def test_unknown_key_names_the_path(tmp_path: Path) -> None:
    path = write(tmp_path, "evaluate:\n  k_value: [10]\n")
    with pytest.raises(ConfigError, match=r"evaluate\.k_value: unknown key"):
        load_config(path, environ={})


def test_wrong_type_names_key_and_expected_type(tmp_path: Path) -> None:
    path = write(tmp_path, "serve:\n  port: eighty\n")
    with pytest.raises(ConfigError, match=r"serve\.port: Input should be a valid integer"):
        load_config(path, environ={})


def test_bad_metric_name_is_explained(tmp_path: Path) -> None:
    path = write(tmp_path, "evaluate:\n  primary_metric: auc\n")
    with pytest.raises(ConfigError, match="recall\\|ndcg\\|mrr\\|hit\\|precision\\|map@K"):
        load_config(path, environ={})


def test_precedence_defaults_file_env_flags(tmp_path: Path) -> None:
    path = write(tmp_path, "serve:\n  port: 9000\n  max_k: 50\nevaluate:\n  k_values: [5]\n")
    environ = {"SHELFWISE_SERVE_PORT": "9100", "SHELFWISE_EVALUATE__K_VALUES": "[5, 20]"}
    config = load_config(path, environ=environ, overrides={"serve.port": 9200})
    assert config.serve.port == 9200  # flag beats environment
    assert config.evaluate.k_values == [5, 20]  # environment beats file
    assert config.serve.max_k == 50  # file beats default
    assert config.serve.default_k == 10  # default


def test_process_variables_are_not_config_keys(tmp_path: Path) -> None:
    config = load_config(None, environ={"SHELFWISE_HOME": str(tmp_path)})
    assert config.state_dir() == tmp_path


def test_env_unknown_key_is_an_error() -> None:
    with pytest.raises(ConfigError, match="servve: unknown key"):
        load_config(None, environ={"SHELFWISE_SERVVE__PORT": "1"})


def test_relative_paths_resolve_against_config_folder(tmp_path: Path) -> None:
    path = write(tmp_path, "data:\n  events:\n    path: data/events.csv\n")
    config = load_config(path, environ={})
    assert config.data.events is not None
    assert config.data.events.path == (tmp_path / "data" / "events.csv").resolve()


def test_not_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "- a\n- b\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(path, environ={})


def test_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="shelfwise init"):
        load_config(tmp_path / "nope.yaml", environ={})


def _leaf_keys(model: type, prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for name, info in model.model_fields.items():  # type: ignore[attr-defined]
        annotation = info.annotation
        if getattr(annotation, "__origin__", None) is dict:  # e.g. gate.rules: data keys
            keys.add(prefix + name)
            continue
        nested = [
            a for a in getattr(annotation, "__args__", (annotation,)) if hasattr(a, "model_fields")
        ]
        if nested:
            keys |= _leaf_keys(nested[0], f"{prefix}{name}.")
        else:
            keys.add(prefix + name)
    return keys


# Keys whose values are free-form mappings (their contents are data, not config keys).
_MAPPING_KEYS = {
    "params",
    "mapping",
    "event_type_values",
    "event_weights",
    "field_weights",
    "rules",
}


def _yaml_keys(node: object, prefix: str = "") -> set[str]:
    keys: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, dict) and value and key not in _MAPPING_KEYS:
                keys |= _yaml_keys(value, f"{prefix}{key}.")
            else:
                keys.add(prefix + str(key))
    return keys


def test_template_lists_every_key_and_loads() -> None:
    text = render_template()
    parsed = yaml.safe_load(text)
    assert _leaf_keys(ShelfwiseConfig) <= _yaml_keys(parsed)
    config = ShelfwiseConfig.model_validate(parsed)
    assert config.evaluate == ShelfwiseConfig().evaluate
    assert config.data.events is not None


def test_feature_encoders_are_off_by_default_and_distinct() -> None:
    assert load_config(None, environ={}).models.dense.feature_encoders == []
    config = load_config(None, environ={}, overrides={"models.dense.feature_encoders": [" use "]})
    assert config.models.dense.feature_encoders == ["use"]
    with pytest.raises(ConfigError, match="distinct"):
        load_config(None, environ={}, overrides={"models.dense.feature_encoders": ["use", "use"]})
