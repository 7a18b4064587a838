"""The loader's environment: one namespace per section, text kept as text, skipped names."""

from __future__ import annotations

from pathlib import Path

import pytest

from shelfwise.config import ShelfwiseConfig, config_key_of, load_config
from shelfwise.errors import ConfigError


def test_serve_variables_have_one_underscore() -> None:
    environ = {"SHELFWISE_SERVE_PORT": "9100", "SHELFWISE_SERVE_MAX_K": "70"}
    serve = load_config(None, environ=environ).serve
    assert (serve.port, serve.max_k) == (9100, 70)
    assert config_key_of("SHELFWISE_SERVE_EVENT_LOG_DIR") == "serve.event_log_dir"
    assert config_key_of("SHELFWISE_EVALUATE__K_VALUES") == "evaluate.k_values"
    assert config_key_of("SHELFWISE_PROJECT") == "project"
    assert config_key_of("SHELFWISE_HOME") is None
    assert config_key_of("PATH") is None


def test_the_old_serve_namespace_names_the_variable_to_use() -> None:
    with pytest.raises(ConfigError, match=r"^environment variable SHELFWISE_SERVE__PORT is not "
                       r"read: .*; use SHELFWISE_SERVE_PORT instead$"):  # fmt: skip
        load_config(None, environ={"SHELFWISE_SERVE__PORT": "9100"})


def test_text_keys_take_the_text_as_written() -> None:
    token = "83920174650192837465019283746501"  # digits: YAML would read an int
    environ = {
        "SHELFWISE_SERVE_ADMIN_ENABLED": "true",
        "SHELFWISE_SERVE_ADMIN_TOKEN": token,
        "SHELFWISE_SERVE_RETRAIN_COMMAND": "shelfwise retrain # nightly",
        "SHELFWISE_SERVE_CANARY_FRACTION": "0.25",
        "SHELFWISE_SERVE_BUNDLE_PATH": "null",
        "SHELFWISE_PROJECT": "2024",
    }
    config = load_config(None, environ=environ)
    assert config.serve.admin_token is not None
    assert config.serve.admin_token.get_secret_value() == token
    assert config.serve.retrain_command == "shelfwise retrain # nightly"
    assert config.serve.canary_fraction == 0.25
    assert config.serve.bundle_path is None
    assert config.project == "2024"


def test_serve_validators_apply_to_every_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="default_k .3. must not exceed max_k .2."):
        load_config(None, environ={"SHELFWISE_SERVE_MAX_K": "2"}, overrides={"serve.default_k": 3})
    with pytest.raises(ConfigError, match="SHELFWISE_SERVE_ADMIN_TOKEN is empty"):
        load_config(None, environ={"SHELFWISE_SERVE_ADMIN_ENABLED": "true"})


def test_process_variables_set_by_the_server_are_not_config_keys() -> None:
    # The retrain command the server starts gets these; its `shelfwise retrain` must load.
    environ = {"SHELFWISE_RETRAIN_TRIGGER": "alert", "SHELFWISE_RETRAIN_ALERTS": "Drift"}
    assert load_config(None, environ=environ) == load_config(None, environ={})


def test_retrain_event_log_says_where_it_went(tmp_path: Path) -> None:
    path = tmp_path / "shelfwise.yaml"
    path.write_text("retrain:\n  event_log: /state/events\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"retrain\.event_log: unknown key; it is "
                       r"serve\.event_log_dir now"):  # fmt: skip
        load_config(path, environ={})


def test_serve_section_is_not_fingerprinted() -> None:
    plain = load_config(None, environ={})
    served = load_config(
        None, environ={"SHELFWISE_SERVE_PORT": "9100"}, overrides={"serve.max_k": 50}
    )
    assert served.fingerprint() == plain.fingerprint()
    assert load_config(None, environ={}, overrides={"seed": 1}).fingerprint() != (
        plain.fingerprint()
    )


def test_serve_section_is_the_serve_settings() -> None:
    from shelfwise.serve import ServeSettings
    from shelfwise.serve.settings import ServeSettings as FromModule

    assert ServeSettings is FromModule
    assert ShelfwiseConfig.model_fields["serve"].annotation is ServeSettings
