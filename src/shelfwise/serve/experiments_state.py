"""One running experiment's state, and the rules a variant steers by.

`RunningExperiment` holds an experiment's definition, its per-variant counts
(`ArmState`), the rule set of each variant and, for interleaving, the per-request click
tallies that decide which variant won a request. `ExperimentBook`
(`serve/experiments.py`) owns them and mutates them under its lock.

A variant's rules reach the routes' steering plan through a context variable:
`rules_in_force` (called by `serve/steering.py`'s `plan_for`, inside the engine call)
returns the variant's rules while the experiment runs that variant's call, else the
rules book's.
"""

from __future__ import annotations

from collections import OrderedDict
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Final

from shelfwise.errors import ExperimentConflictError
from shelfwise.runtime.engine import Engine
from shelfwise.runtime.rules import RuleSet
from shelfwise.serve.experiments_schemas import ExperimentIn
from shelfwise.serve.experiments_summary import ArmState
from shelfwise.serve.holder import CHALLENGER, CHAMPION, Models, Role, bucket
from shelfwise.serve.rules_book import RulesBook

# Per-list totals (clicks, purchases, revenue: their squares give the metric's variance)
# and interleaving's per-request tallies (a request is won by the variant with more
# credit) are kept for the newest this many lists; an older list's late events count as
# on a fresh list (its totals and win stay counted).
MAX_TALLIES: Final = 100_000
VARIANT_RULES: ContextVar[RuleSet | None] = ContextVar("experiment_rules", default=None)


def rules_in_force(book: RulesBook | None) -> RuleSet | None:
    """The rules a request is steered by: its experiment variant's, else the book's."""
    override = VARIANT_RULES.get()
    if override is not None:
        return override
    return book.current() if book is not None else None


@dataclass
class RunningExperiment:
    """An experiment's definition and what it has counted (see the module doc)."""

    definition: ExperimentIn
    arms: list[ArmState]
    rules: list[RuleSet | None]  # per variant; None: the rules in force
    started_at: float
    stopped_at: float | None = None
    wins: list[int] = field(default_factory=lambda: [0, 0])
    tallies: OrderedDict[str, list[float]] = field(default_factory=OrderedDict)
    totals: OrderedDict[str, list[float]] = field(default_factory=OrderedDict)

    @classmethod
    def begin(
        cls, definition: ExperimentIn, book: RulesBook | None, now: float
    ) -> RunningExperiment:
        """A fresh experiment, its variants' rule sets resolved from the rules log.

        Raises:
            ExperimentConflictError: a variant names a rules version the log lacks.
        """
        rules = [_variant_rules(definition, index, book) for index in range(2)]
        return cls(definition, [ArmState(), ArmState()], rules, now)

    @property
    def running(self) -> bool:
        """False once stopped."""
        return self.stopped_at is None

    def assign(self, user_id: str) -> int | None:
        """The variant index of a user (None: not enrolled)."""
        point = bucket(f"{self.definition.name}\x1f{user_id}", "experiment")
        total = 0.0
        for index, variant in enumerate(self.definition.variants):
            total += variant.share
            if point < total:
                return index
        return None

    def engine_for(self, models: Models, index: int) -> tuple[Engine, Role] | None:
        """The loaded engine of a variant's version (None once it is swapped out)."""
        version = self.definition.variants[index].version
        if models.champion is not None and models.champion.version == version:
            return models.champion, CHAMPION
        if models.challenger is not None and models.challenger.version == version:
            return models.challenger, CHALLENGER
        return None

    def add_to_list(self, request_id: str, index: int, column: int, amount: float) -> float:
        """Add to one variant's list total (column 0 clicks, 1 purchases, 2 revenue).

        Returns:
            The total before, so the caller can update the sum of squares:
            (t + a)² − t² = 2ta + a².
        """
        key = f"{request_id}\x1f{index}"
        totals = self.totals.setdefault(key, [0.0, 0.0, 0.0])
        before = totals[column]
        totals[column] += amount
        self.totals.move_to_end(key)
        while len(self.totals) > MAX_TALLIES:
            self.totals.popitem(last=False)
        return before

    def tally(self, request_id: str, index: int, amount: float) -> None:
        """Credit `amount` to a variant on one interleaved request, moving its win."""
        tally = self.tallies.setdefault(request_id, [0.0, 0.0])
        before = _leader(tally)
        tally[index] += amount
        after = _leader(tally)
        if before != after:
            if before is not None:
                self.wins[before] -= 1
            if after is not None:
                self.wins[after] += 1
        self.tallies.move_to_end(request_id)
        while len(self.tallies) > MAX_TALLIES:
            self.tallies.popitem(last=False)


def _leader(tally: list[float]) -> int | None:
    if tally[0] == tally[1]:
        return None
    return 0 if tally[0] > tally[1] else 1


def _variant_rules(definition: ExperimentIn, index: int, book: RulesBook | None) -> RuleSet | None:
    """A variant's rules: None for those in force, empty for none, or a logged version.

    Raises:
        ExperimentConflictError: the rules log has no such version.
    """
    wanted = definition.variants[index].rules
    if wanted == "current":
        return None
    if wanted == "none":
        return RuleSet()
    versions = {entry.version: entry for entry in book.log.versions()} if book else {}
    entry = versions.get(wanted)
    if entry is None:
        raise ExperimentConflictError(
            f"variant {definition.variants[index].name!r} names rules version {wanted}, which "
            f"the rules log does not hold (versions: {sorted(versions) or 'none'}); see "
            "GET /v1/admin/rules"
        )
    return RuleSet(entry.version, entry.rules)


__all__ = ["MAX_TALLIES", "VARIANT_RULES", "RunningExperiment", "rules_in_force"]
