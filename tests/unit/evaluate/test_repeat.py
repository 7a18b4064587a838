"""Repeat vs explore metrics and the repeat policy `learn` (issue 15)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from shelfwise._internal.sequences import Sequences
from shelfwise.config import ShelfwiseConfig
from shelfwise.evaluate.policy import resolve_policy
from shelfwise.evaluate.recommend import EvalSplit
from shelfwise.evaluate.repeat import choose_policy, count_repeat_targets, repeat_explore_metrics
from shelfwise.retrieval import PopularityRecommender, UserHistories
from shelfwise.retrieval.buy_again import BuyAgainRecommender


def test_repeat_and_explore_recall_on_a_literal_example() -> None:
    # user 0 had items 0, 1; bought 0, 2, 3 next (0 a repeat). Its list: 0, 1, 2.
    # user 1 had item 4; bought 4 next (a repeat only). Its list: 5, 4, 6.
    ranked = np.array([[0, 1, 2], [5, 4, 6]])
    targets = sp.csr_matrix(
        ([1.0] * 4, ([0, 0, 0, 1], [0, 2, 3, 4])), shape=(2, 7), dtype=np.float32
    )
    history = sp.csr_matrix(([1.0] * 3, ([0, 0, 1], [0, 1, 4])), shape=(2, 7), dtype=np.float32)
    got = repeat_explore_metrics(ranked, targets, history, [1, 3])
    assert got == pytest.approx(
        {
            # @1: user 0 lists 0 (its one repeat target: 1/1), user 1 lists 5 (0/1)
            "recall_repeat@1": 0.5,
            "recall_explore@1": 0.0,  # only user 0 has new targets (2, 3): none at 1
            "repeat_share@1": 0.5,  # user 0's first item is seen, user 1's is not
            "recall_repeat@3": 1.0,
            "recall_explore@3": 0.5,  # user 0 lists 2 of its new 2, 3
            "repeat_share@3": (2 / 3 + 1 / 3) / 2,
        }
    )
    assert count_repeat_targets(targets, history) == 2


def test_choose_policy_keeps_exclude_on_ties_and_without_repeats() -> None:
    by_mode = {"exclude": {"ease": {"recall@10": 0.2}}, "allow": {"ease": {"recall@10": 0.2}}}
    assert choose_policy("learn", 5, by_mode, "recall@10").resolved == "exclude"
    better = {**by_mode, "allow": {"buy_again": {"recall@10": 0.3}}}
    choice = choose_policy("learn", 5, better, "recall@10")
    assert (choice.resolved, choice.best["allow"]["model"]) == ("allow", "buy_again")
    assert choose_policy("learn", 0, better, "recall@10").resolved == "exclude"
    assert choose_policy("allow", 0, {}, "recall@10").resolved == "allow"


def _shop(repeats: bool) -> tuple[EvalSplit, sp.csr_matrix, dict[str, object]]:
    """40 users with 3 train items each; valid targets are their own or new items."""
    rng = np.random.default_rng(0)
    n_users, n_items = 40, 30
    rows = [rng.choice(n_items, 3, replace=False) for _ in range(n_users)]
    history = sp.csr_matrix(
        (
            np.ones(3 * n_users, np.float32),
            (np.repeat(np.arange(n_users), 3), np.concatenate(rows)),
        ),
        shape=(n_users, n_items),
    )
    target_items = [
        row[:2] if repeats else np.setdiff1d(np.arange(n_items), row)[:2] for row in rows
    ]
    targets = sp.csr_matrix(
        (
            np.ones(2 * n_users, np.float32),
            (np.repeat(np.arange(n_users), 2), np.concatenate(target_items)),
        ),
        shape=(n_users, n_items),
    )
    new_only = sp.csr_matrix(targets - targets.multiply(history > 0))
    new_only.eliminate_zeros()
    users = np.flatnonzero(new_only.getnnz(axis=1) > 0).astype(np.int64)
    split = EvalSplit(history, Sequences.from_rows(rows), new_only, users)
    train = UserHistories(history, Sequences.from_rows(rows))
    models: dict[str, object] = {
        "popularity": PopularityRecommender(),
        "buy_again": BuyAgainRecommender(),
    }
    for model in models.values():
        model.fit(train)  # type: ignore[attr-defined]
    return split, targets, models


def test_learn_allows_repeats_on_a_repeat_heavy_shop() -> None:
    split, targets, models = _shop(repeats=True)
    config = ShelfwiseConfig.model_validate({"evaluate": {"primary_metric": "recall@10"}})
    choice, by_mode = resolve_policy(config, split, targets, models)  # type: ignore[arg-type]
    assert choice.resolved == "allow"
    assert choice.best["allow"]["model"] == "buy_again"
    assert by_mode["allow"]["buy_again"]["recall@10"] == pytest.approx(1.0)
    assert "buy_again" not in by_mode["exclude"]  # it lists only seen items


def test_learn_excludes_seen_items_on_a_shop_without_repeats() -> None:
    split, targets, models = _shop(repeats=False)
    config = ShelfwiseConfig.model_validate({})
    choice, by_mode = resolve_policy(config, split, targets, models)  # type: ignore[arg-type]
    assert (choice.resolved, choice.reason) == ("exclude", "no repeat targets in validation")
    assert by_mode == {}  # nothing scored twice


def test_exclude_policy_never_scores_allow_mode() -> None:
    split, targets, models = _shop(repeats=True)
    config = ShelfwiseConfig.model_validate({"models": {"repeat_policy": "exclude"}})
    choice, by_mode = resolve_policy(config, split, targets, models)  # type: ignore[arg-type]
    assert (choice.resolved, by_mode) == ("exclude", {})
