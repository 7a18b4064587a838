"""`split.method: auto` and the gate's session rules in the config (issue 15)."""

from __future__ import annotations

import pytest

from shelfwise.config import load_config
from shelfwise.config.template import render_template
from shelfwise.errors import ConfigError


def test_auto_is_a_split_method_and_time_stays_the_default() -> None:
    assert load_config(None, environ={}).split.method == "time"
    assert load_config(None, environ={}, overrides={"split.method": "auto"}).split.method == "auto"
    with pytest.raises(ConfigError, match="auto"):  # the error lists the methods
        load_config(None, environ={}, overrides={"split.method": "sessions"})


def test_the_default_gate_rules_judge_the_session_model() -> None:
    rules = load_config(None, environ={}).gate.rules
    assert rules["session.mrr@20"].min_delta == pytest.approx(-0.005)
    assert rules["session.hr@20"].min_delta == pytest.approx(-0.005)
    with pytest.raises(ConfigError, match="session.hr@K"):
        load_config(None, environ={}, overrides={"gate.rules": {"session.ndcg@10": {"min": 0}}})


def test_the_init_template_explains_auto_and_the_session_rules() -> None:
    text = render_template()
    assert "auto: chosen from the data before the features stage" in text
    assert "session.mrr@20" in text
