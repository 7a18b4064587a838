"""Team-draft interleaving: two rankers compared inside one list, per request.

Radlinski, Kurup and Joachims (CIKM 2008): the two teams take turns (the order of each
round by a coin flip) picking their best item not already in the merged list; a click
credits the team that contributed the clicked item. A request where one team got more
clicks is a win for it; ties carry no information. Because every user sees both
rankers, interleaving needs far fewer users than an A/B split to find the better one
(Chapelle et al., TOIS 2012, report one to two orders of magnitude).

The verdict is a sign test on wins, made sequential with the same mSPRT as rates
(`sequential.compare_share`: the win share against one half), so it can be checked
at any time.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from shelfwise.experiments.sequential import SequentialResult, compare_share

Team = Literal["a", "b"]


@dataclass(frozen=True)
class Interleaved:
    """A merged list and which team contributed each position."""

    items: list[str]
    teams: list[Team]

    def credit(self, clicked: Sequence[str]) -> dict[Team, int]:
        """Clicks per team for the clicked items of this list (others ignored)."""
        team_of = dict(zip(self.items, self.teams, strict=True))
        wins: dict[Team, int] = {"a": 0, "b": 0}
        for item in clicked:
            team = team_of.get(item)
            if team is not None:
                wins[team] += 1
        return wins


def team_draft(a: Sequence[str], b: Sequence[str], k: int, rng: random.Random) -> Interleaved:
    """Merge rankings `a` and `b` into `k` items by team draft.

    Args:
        a: the first ranker's list, best first.
        b: the second ranker's list, best first.
        k: the merged list's length (shorter when both lists run out).
        rng: the coin of each round (seed it per request for reproducible lists).
    """
    items: list[str] = []
    teams: list[Team] = []
    taken: set[str] = set()
    picks: dict[Team, Sequence[str]] = {"a": a, "b": b}
    position: dict[Team, int] = {"a": 0, "b": 0}
    count: dict[Team, int] = {"a": 0, "b": 0}

    def next_item(team: Team) -> str | None:
        ranking = picks[team]
        while position[team] < len(ranking) and ranking[position[team]] in taken:
            position[team] += 1
        return ranking[position[team]] if position[team] < len(ranking) else None

    while len(items) < k:
        # the team with fewer picks goes; on a tie, the coin decides
        if count["a"] != count["b"]:
            team: Team = "a" if count["a"] < count["b"] else "b"
        else:
            team = "a" if rng.random() < 0.5 else "b"
        item = next_item(team)
        if item is None:
            other: Team = "b" if team == "a" else "a"
            item = next_item(other)
            if item is None:
                break
            team = other
        items.append(item)
        teams.append(team)
        taken.add(item)
        count[team] += 1
    return Interleaved(items, teams)


def judge_wins(
    wins_a: int, wins_b: int, *, mde: float = 0.05, alpha: float = 0.05
) -> SequentialResult:
    """The sequential sign test: b's share of decided requests against one half.

    Args:
        wins_a: requests where team a got more clicks.
        wins_b: requests where team b got more clicks.
        mde: the smallest departure of b's win share from 0.5 to plan for.
        alpha: the error rate.

    Returns:
        `compare_share` of b's wins against a fair coin (difference = b's share − 0.5).
    """
    return compare_share(wins_b, wins_a + wins_b, null=0.5, mde=mde, alpha=alpha)


__all__ = ["Interleaved", "Team", "judge_wins", "team_draft"]
