"""`privacy:`: off for configs written before it, on in what `shelfwise init` writes."""

from __future__ import annotations

import pytest
import yaml

from shelfwise.config import ShelfwiseConfig, load_config
from shelfwise.config.template import render_template
from shelfwise.errors import ConfigError
from shelfwise.settings import environment_variables


def test_old_configs_keep_raw_ids_and_new_ones_start_private() -> None:
    assert load_config(None, environ={}).privacy.pseudonymize_users is False
    written = ShelfwiseConfig.model_validate(yaml.safe_load(render_template()))
    assert written.privacy.pseudonymize_users is True
    assert written.privacy.log_queries == "full"


def test_the_key_is_a_process_variable_never_a_config_key() -> None:
    config = load_config(None, environ={"SHELFWISE_PRIVACY_KEY": "x" * 40})
    assert "x" * 40 not in config.model_dump_json()
    assert "SHELFWISE_PRIVACY_KEY" in {variable.name for variable in environment_variables()}
    with pytest.raises(ConfigError, match="log_queries"):
        load_config(None, environ={"SHELFWISE_PRIVACY__LOG_QUERIES": "some"})
