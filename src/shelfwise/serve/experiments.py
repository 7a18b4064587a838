"""Experiments in the server: A/B splits and interleaving between loaded model versions.

`ExperimentBook` (one per app, `app.state.experiments`) holds the experiments started
through `/v1/admin/experiments`. For a request to an endpoint an experiment runs on,
`route` picks what answers it:

- **A/B**: the user's variant by the same sticky hash as the canary (`holder.bucket`,
  salted with the experiment's name, so experiments split users independently and
  every replica agrees); anonymous requests and users beyond the shares are served as
  usual.
- **interleaving**: both variants answer, and their lists are merged by team draft
  (`shelfwise.experiments.interleaving`, the coin seeded by the request id).

A variant is a loaded model version and a rule set: the merchandising rules in force,
none, or a version of the rules log. While a variant answers, its rules are the ones
`experiments_state.rules_in_force` returns (a context variable: the routes' steering
plan, made inside the engine call, reads them).

Attribution reuses the online store's served lists (`serve/attribution.py`): besides
the list the route remembers under its `request_id` (per model version, as always),
each variant's part of it is remembered under a derived key (`variant_key`), labelled
with the experiment and the variant. An event posted to `/v1/events` with the
`request_id` is then credited to the variant whose item it names, once, through the
same store call (Redis: shared by replicas, counted once however many replicas see it).

Counts, latencies and interleaving's per-request click tallies are kept in this
process: `GET /v1/admin/experiments` answers for the replica it reaches (see the
README's "Experiments in the server" for running several replicas).
"""

from __future__ import annotations

import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Final, Generic, TypeVar, cast

from shelfwise.contracts import EventType
from shelfwise.errors import ExperimentConflictError, ExperimentNotFoundError
from shelfwise.experiments.interleaving import team_draft
from shelfwise.runtime.engine import Engine
from shelfwise.runtime.steering import Steered
from shelfwise.serve.experiments_schemas import ExperimentIn, ExperimentOut
from shelfwise.serve.experiments_state import VARIANT_RULES, RunningExperiment
from shelfwise.serve.experiments_summary import summarise
from shelfwise.serve.holder import Models, Role
from shelfwise.serve.metrics import ServeMetrics
from shelfwise.serve.rules_book import RulesBook
from shelfwise.stores.online import Attribution, OnlineStore

_R = TypeVar("_R")
TEAMS: Final = ("a", "b")
_LABEL: Final = "experiment\x1f"  # served-list label prefix: no model version has one
MAX_PRICES: Final = 100_000  # prices of served items, for revenue per list


def variant_key(request_id: str, team: str) -> str:
    """The online store key of one variant's part of a served list."""
    return f"{request_id}\x1fexperiment:{team}"


@dataclass(frozen=True)
class Routed(Generic[_R]):
    """What an experiment answered with: the result and the engine (and role) credited."""

    result: _R
    engine: Engine
    role: Role


class ExperimentBook:
    """The app's experiments (see the module doc).

    Args:
        store: the online store that remembers served lists for attribution.
        metrics: the app's collectors (per-variant lists and credited events, and the
            per-version model metrics of the requests the experiment answers).
    """

    def __init__(self, store: OnlineStore, metrics: ServeMetrics) -> None:
        """An empty book."""
        self.store = store
        self.metrics = metrics
        self._lock = threading.Lock()
        self._experiments: dict[str, RunningExperiment] = {}
        # endpoint -> its running experiment; replaced whole, read without the lock
        self._by_endpoint: dict[str, RunningExperiment] = {}
        self._prices: OrderedDict[str, float] = OrderedDict()

    @property
    def running(self) -> bool:
        """True while any experiment runs (events are then matched against variants)."""
        return bool(self._by_endpoint)

    def start(
        self, definition: ExperimentIn, models: Models, rules: RulesBook | None = None
    ) -> ExperimentOut:
        """Start an experiment (a stopped one of the same name is replaced).

        Raises:
            ExperimentConflictError: the definition contradicts itself (repeated variant
                names, shares over 1), the name or an endpoint is taken by a running
                experiment, or a variant's version is not loaded.
        """
        inconsistency = definition.inconsistency()
        if inconsistency is not None:
            raise ExperimentConflictError(f"experiment {definition.name!r}: {inconsistency}")
        loaded = [e.version for e in (models.champion, models.challenger) if e is not None]
        for variant in definition.variants:
            if variant.version not in loaded:
                raise ExperimentConflictError(
                    f"variant {variant.name!r} names version {variant.version!r}, which this "
                    f"server has not loaded (loaded: {loaded or 'none'}); load it first with "
                    'POST /v1/admin/reload {"model_version": ..., "role": "challenger"}'
                )
        with self._lock:
            current = self._experiments.get(definition.name)
            if current is not None and current.running:
                raise ExperimentConflictError(
                    f"experiment {definition.name!r} is running; stop it first "
                    f"(DELETE /v1/admin/experiments/{definition.name}) or choose another name"
                )
            for endpoint in definition.endpoints:
                other = self._by_endpoint.get(endpoint)
                if other is not None:
                    raise ExperimentConflictError(
                        f"experiment {other.definition.name!r} already runs on /v1/{endpoint}; "
                        "one experiment per endpoint, so users are not split twice: stop it "
                        "first or leave that endpoint out"
                    )
            running = RunningExperiment.begin(definition, rules, time.time())
            self._experiments[definition.name] = running
            self._by_endpoint = {
                **self._by_endpoint,
                **dict.fromkeys(definition.endpoints, running),
            }
        return self.summary(definition.name)

    def stop(self, name: str) -> ExperimentOut:
        """Stop an experiment: its counts freeze and it stays listed as stopped.

        Raises:
            ExperimentNotFoundError: no experiment of that name.
        """
        with self._lock:
            experiment = self._find(name)
            if experiment.running:
                experiment.stopped_at = time.time()
                self._by_endpoint = {
                    endpoint: running
                    for endpoint, running in self._by_endpoint.items()
                    if running is not experiment
                }
        return self.summary(name)

    def summary(self, name: str) -> ExperimentOut:
        """One experiment's counts and verdict.

        Raises:
            ExperimentNotFoundError: no experiment of that name.
        """
        with self._lock:
            experiment = self._find(name)
            return summarise(
                experiment.definition,
                experiment.arms,
                running=experiment.running,
                wins=experiment.wins,
            )

    def summaries(self) -> list[ExperimentOut]:
        """Every experiment, running ones first, then by name."""
        with self._lock:
            ordered = sorted(
                self._experiments.values(), key=lambda e: (not e.running, e.definition.name)
            )
            return [
                summarise(e.definition, e.arms, running=e.running, wins=e.wins) for e in ordered
            ]

    def _find(self, name: str) -> RunningExperiment:
        experiment = self._experiments.get(name)
        if experiment is None:
            known = sorted(self._experiments) or "none"
            raise ExperimentNotFoundError(
                f"no experiment named {name!r} on this server (known: {known}); "
                "GET /v1/admin/experiments lists them"
            )
        return experiment

    # --- requests ------------------------------------------------------------------

    def route(
        self,
        models: Models,
        *,
        endpoint: str,
        user_id: str | None,
        request_id: str,
        call: Callable[[Engine], _R],
        item_ids: Callable[[_R], Sequence[str]],
        k: int,
    ) -> Routed[_R] | None:
        """Answer a request inside an experiment, or None when it is not enrolled."""
        experiment = self._by_endpoint.get(endpoint)
        if experiment is None or user_id is None:
            return None
        if experiment.definition.mode == "interleaving":
            if experiment.assign(user_id) is None:
                return None
            return self._interleave(experiment, models, endpoint, request_id, call, k)
        index = experiment.assign(user_id)
        found = None if index is None else experiment.engine_for(models, index)
        if index is None or found is None:
            return None
        engine, role = found
        result = self._timed(experiment, index, endpoint, engine, role, call)
        served = list(item_ids(result))
        self._remember(experiment, request_id, [(index, served)], result)
        return Routed(result, engine, role)

    def _interleave(
        self,
        experiment: RunningExperiment,
        models: Models,
        endpoint: str,
        request_id: str,
        call: Callable[[Engine], _R],
        k: int,
    ) -> Routed[_R] | None:
        first = experiment.engine_for(models, 0)
        second = experiment.engine_for(models, 1)
        if first is None or second is None:
            return None
        result_a = self._timed(experiment, 0, endpoint, *first, call)
        result_b = self._timed(experiment, 1, endpoint, *second, call)
        if not isinstance(result_a, Steered) or not isinstance(result_b, Steered):
            return Routed(result_a, *first)  # nothing to merge: the control's answer
        by_id = {item.raw_item_id: item for item in reversed([*result_b.items, *result_a.items])}
        merged = team_draft(
            [item.raw_item_id for item in result_a.items],
            [item.raw_item_id for item in result_b.items],
            k,
            random.Random(request_id),  # the same request id, the same list
        )
        result = replace(
            result_a,
            items=[by_id[raw_item_id] for raw_item_id in merged.items],
            applied_rules=list(dict.fromkeys([*result_a.applied_rules, *result_b.applied_rules])),
            rule_reasons={**result_b.rule_reasons, **result_a.rule_reasons},
        )
        parts = [
            (index, [i for i, t in zip(merged.items, merged.teams, strict=True) if t == team])
            for index, team in enumerate(TEAMS)
        ]
        self._remember(experiment, request_id, parts, result, interleaved=bool(merged.items))
        return Routed(cast("_R", result), *first)

    def _timed(
        self,
        experiment: RunningExperiment,
        index: int,
        endpoint: str,
        engine: Engine,
        role: Role,
        call: Callable[[Engine], _R],
    ) -> _R:
        arm, metrics = experiment.arms[index], self.metrics
        rules = experiment.rules[index]
        token = VARIANT_RULES.set(rules) if rules is not None else None
        started = time.perf_counter()
        try:
            result = call(engine)
        except Exception:  # the guardrail's count, then the usual 500
            metrics.model_errors.labels(endpoint, engine.version).inc()
            with self._lock:
                arm.requests += 1
                arm.errors += 1
            raise
        finally:
            if token is not None:
                VARIANT_RULES.reset(token)
        elapsed = time.perf_counter() - started
        metrics.observe_model(endpoint, engine.version, role, elapsed)
        with self._lock:
            arm.requests += 1
            arm.latencies.append(elapsed)
        return result

    def _remember(
        self,
        experiment: RunningExperiment,
        request_id: str,
        parts: list[tuple[int, list[str]]],
        result: object,
        *,
        interleaved: bool = False,
    ) -> None:
        name = experiment.definition.name
        if isinstance(result, Steered):
            with self._lock:
                for item in result.items:
                    if item.price is not None:
                        self._prices[item.raw_item_id] = item.price
                        self._prices.move_to_end(item.raw_item_id)
                while len(self._prices) > MAX_PRICES:
                    self._prices.popitem(last=False)
        with self._lock:
            for index, served in parts:
                if served or interleaved:
                    experiment.arms[index].lists += 1
                    variant = experiment.definition.variants[index].name
                    self.metrics.observe_experiment_list(name, variant)
        if not request_id:
            return
        for (index, served), team in zip(parts, TEAMS, strict=False):
            if served:
                label = f"{_LABEL}{name}\x1f{index}"
                self.store.remember_served(variant_key(request_id, team), label, served)

    # --- events --------------------------------------------------------------------

    def attribute(self, claims: Sequence[Attribution]) -> int:
        """Credit events on served lists to the variants that listed the items.

        Returns:
            How many events were credited to a variant.
        """
        running = list(self._by_endpoint.values())
        if not running or not claims:
            return 0
        # A/B lists are kept under team "a" only: look up "b" only while interleaving
        interleaving = any(e.definition.mode == "interleaving" for e in running)
        teams = TEAMS if interleaving else TEAMS[:1]
        derived = [
            Attribution(variant_key(claim.request_id, team), claim.raw_item_id, claim.event_type)
            for claim in claims
            if claim.event_type in (EventType.CLICK, EventType.PURCHASE)
            for team in teams
        ]
        if not derived:
            return 0
        labels = self.store.attribute(derived)
        credited = 0
        with self._lock:
            for claim, label in zip(derived, labels, strict=True):
                if label is None or not label.startswith(_LABEL):
                    continue
                name, _, index_text = label[len(_LABEL) :].rpartition("\x1f")
                experiment = self._experiments.get(name)
                if experiment is None or not experiment.running:
                    continue
                index = int(index_text)
                self._credit(experiment, index, claim)
                credited += 1
        return credited

    def _credit(self, experiment: RunningExperiment, index: int, claim: Attribution) -> None:
        arm = experiment.arms[index]
        definition = experiment.definition
        variant = definition.variants[index].name
        self.metrics.observe_experiment_event(definition.name, variant, claim.event_type.value)
        request_id = claim.request_id.partition("\x1f")[0]
        value = 1.0
        if claim.event_type == EventType.CLICK:
            arm.clicks += 1
            before = experiment.add_to_list(request_id, index, 0, 1.0)
            arm.clicks_squares += 2.0 * before + 1.0
        else:
            arm.conversions += 1
            before = experiment.add_to_list(request_id, index, 1, 1.0)
            arm.conversions_squares += 2.0 * before + 1.0
            value = self._prices.get(claim.raw_item_id, 0.0)
            arm.revenue += value
            before = experiment.add_to_list(request_id, index, 2, value)
            arm.revenue_squares += 2.0 * before * value + value * value
        counted = EventType.CLICK if definition.primary_metric == "ctr" else EventType.PURCHASE
        if definition.mode != "interleaving" or claim.event_type != counted:
            return
        amount = value if definition.primary_metric == "revenue" else 1.0
        experiment.tally(request_id, index, amount)


__all__ = ["ExperimentBook", "Routed", "variant_key"]
