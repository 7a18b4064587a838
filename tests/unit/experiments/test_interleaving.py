"""Team-draft interleaving and CUPED on literal and simulated cases."""

from __future__ import annotations

import random

import numpy as np
import pytest

from shelfwise.errors import DataError
from shelfwise.experiments import cuped_adjust, cuped_theta, judge_wins, team_draft


def test_team_draft_alternates_fairly_and_never_repeats_an_item() -> None:
    a = ["x1", "x2", "x3", "s1", "s2"]
    b = ["s1", "y1", "x1", "y2", "y3"]
    for seed in range(50):
        merged = team_draft(a, b, 6, random.Random(seed))
        assert len(merged.items) == len(set(merged.items)) == 6
        counts = [merged.teams.count("a"), merged.teams.count("b")]
        assert abs(counts[0] - counts[1]) <= 1  # every round gives each team one pick
        for item, team in zip(merged.items, merged.teams, strict=True):
            assert item in (a if team == "a" else b)
        # each team's picks keep its own order
        for team, ranking in (("a", a), ("b", b)):
            picked = [i for i, t in zip(merged.items, merged.teams, strict=True) if t == team]
            assert picked == sorted(picked, key=ranking.index)


def test_clicks_credit_the_contributing_team() -> None:
    merged = team_draft(["a1", "a2"], ["b1", "b2"], 4, random.Random(0))
    wins = merged.credit(["a2", "b1", "zzz"])
    assert wins == {"a": 1, "b": 1}


def test_a_better_ranker_wins_the_sequential_sign_test() -> None:
    # users click the first relevant item; ranker b puts relevant items higher
    rng = random.Random(7)
    relevant = {f"i{n}" for n in range(0, 100, 3)}
    wins = {"a": 0, "b": 0}
    for _ in range(3000):
        pool = [f"i{n}" for n in rng.sample(range(100), 20)]
        a = pool
        b = sorted(pool, key=lambda item: (item not in relevant, rng.random()))
        merged = team_draft(a, b, 10, rng)
        clicked = [item for item in merged.items if item in relevant][:1]
        credit = merged.credit(clicked)
        if credit["a"] != credit["b"]:
            wins["a" if credit["a"] > credit["b"] else "b"] += 1
    result = judge_wins(wins["a"], wins["b"])
    assert result.difference > 0
    assert result.low > 0  # significant, valid at any look
    even = judge_wins(500, 500)
    assert even.low < 0 < even.high


def test_cuped_keeps_the_mean_and_cuts_the_variance() -> None:
    rng = np.random.default_rng(0)
    pre = rng.gamma(2.0, 1.0, 5000)
    post = 0.8 * pre + rng.normal(0, 0.5, 5000)
    theta = cuped_theta(pre, post)
    adjusted = cuped_adjust(post, pre, theta, float(pre.mean()))
    assert adjusted.mean() == pytest.approx(post.mean())
    assert adjusted.var() < 0.2 * post.var()
    assert cuped_theta(np.ones(4), np.arange(4.0)) == 0.0
    with pytest.raises(DataError, match="one pre-period value per unit"):
        cuped_theta(np.ones(3), np.ones(4))
