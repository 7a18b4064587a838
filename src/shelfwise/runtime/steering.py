"""Steer a ranked list: merchandising rules and business constraints, before the cut to k.

The engine ranks a list deeper than `k` (`depth_for`), then, in this order:

1. **hide** rules leave their target items out (a hidden item is never pinned either);
2. **boost / bury** rules shift their targets' relevance (`1 - i / n`, the list's own
   order) up or down by the rule's `weight`, and the list is re-sorted (stable);
3. the **diversity** constraints pick `k` items (`shelfwise.runtime.diversity`: brand
   and category caps, MMR with λ, margin weight);
4. **pin** rules put their items at their positions, inserted when the model did not
   rank them (score 0) — unless the request's filters or exclusions rule them out or a
   hide rule hides them; the first rule in the file wins a contested position.

Everything is deterministic: same list, rules and options, same answer. A rule counts
as *applied* to a response when it changed something or held its item in place: a pin
whose item is listed, a boost / bury / hide that found a target. When no rule meets the
request and no constraint is set, `steer_call` asks for `k` items and returns them as
they are (no extra work).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

import numpy as np

from shelfwise.config.rules import Endpoint, Rule, utc_now
from shelfwise.contracts import BoolArray, EventType, FloatArray
from shelfwise.runtime.catalog import Catalog, Filters, ScoredItem
from shelfwise.runtime.diversity import DiversityOptions, diversify, facts_of
from shelfwise.runtime.engine import Engine
from shelfwise.runtime.explain import Explanation
from shelfwise.runtime.realtime import MAX_SEEDS
from shelfwise.runtime.rules import RuleContext, RuleSet, category_page, targets
from shelfwise.stores.online import UserState

# Extra candidates ranked beyond k when steering: at least this many, or k itself.
# k + max(k, 20) stays inside the precomputed lists' depth (max_k + 50) for k <= 50.
MIN_EXTRA_DEPTH: Final = 20

_R = TypeVar("_R")


@dataclass(frozen=True)
class SteeringPlan:
    """What one request is steered by.

    Attributes:
        rules: the rules whose conditions the request meets, in file order.
        options: the diversity constraints (request, else server defaults).
        rules_version: the rules version the rules come from.
    """

    rules: list[Rule] = field(default_factory=list)
    options: DiversityOptions = field(default_factory=DiversityOptions)
    rules_version: int = 0

    @property
    def active(self) -> bool:
        """True when steering can change the list."""
        return bool(self.rules) or self.options.active


@dataclass(frozen=True)
class Steered(Generic[_R]):
    """A steered answer.

    Attributes:
        result: what the engine returned (fallback, personalisation, ...).
        items: the list to answer with, at most k.
        applied_rules: ids of the rules applied, in file order.
        rule_reasons: raw item id -> (rule id, action) of the rules that moved or
            placed it (for explanations).
    """

    result: _R
    items: list[ScoredItem]
    applied_rules: list[str] = field(default_factory=list)
    rule_reasons: dict[str, list[tuple[str, str]]] = field(default_factory=dict)


def depth_for(k: int, n_items: int) -> int:
    """How many items to rank when steering a list of `k`."""
    return max(1, min(n_items, k + max(k, MIN_EXTRA_DEPTH)))


def steer_call(
    engine: Engine,
    produce: Callable[[int], _R],
    items_of: Callable[[_R], list[ScoredItem]],
    k: int,
    plan: SteeringPlan,
    *,
    filters: Filters | None = None,
    exclude: Sequence[str] = (),
) -> Steered[_R]:
    """Rank with `produce(depth)`, steer by `plan`, cut to `k`.

    Args:
        engine: the engine that answers (its catalog and item vectors).
        produce: the engine call for a list of the given length.
        items_of: the items of its result.
        k: the list length asked.
        plan: the request's rules and constraints.
        filters: the request's filters (pinned items must pass them).
        exclude: the request's exclusions (never pinned).
    """
    if not plan.active:
        result = produce(k)
        return Steered(result, items_of(result))
    catalog = engine.catalog
    result = produce(depth_for(k, len(catalog)))
    allowed = ~catalog.blocked(filters)
    allowed[catalog.indices(exclude)] = False
    items, applied, reasons = steer(
        catalog,
        items_of(result),
        k,
        plan,
        pinnable=allowed,
        vectors=engine.explainer.item_vectors,
    )
    return Steered(result, items, applied, reasons)


def steer(
    catalog: Catalog,
    ranked: list[ScoredItem],
    k: int,
    plan: SteeringPlan,
    *,
    pinnable: BoolArray | None = None,
    vectors: FloatArray | None = None,
) -> tuple[list[ScoredItem], list[str], dict[str, list[tuple[str, str]]]]:
    """Apply the plan to a ranked list (see the module doc).

    Returns:
        The list (at most `k`), the applied rule ids in file order, and per raw item id
        the (rule id, action) pairs that moved or placed it.
    """
    index = catalog.index
    # -1: an item added online that the bundle does not hold (it has no attributes)
    candidates = [index.get(item.raw_item_id, -1) for item in ranked]
    fired: set[str] = set()
    reasons: dict[str, list[tuple[str, str]]] = {}
    hides = [rule for rule in plan.rules if rule.action == "hide"]
    hidden = np.zeros(len(candidates), dtype=np.bool_)
    for rule in hides:
        hit = targets(rule, catalog, ranked, candidates)
        if hit.any():
            fired.add(rule.id)
            hidden |= hit

    def is_hidden(item: ScoredItem, item_index: int) -> bool:
        return any(bool(targets(rule, catalog, [item], [item_index])[0]) for rule in hides)

    keep = [n for n in range(len(candidates)) if not hidden[n]]
    ranked = [ranked[n] for n in keep]
    candidates = [candidates[n] for n in keep]
    relevance = 1.0 - np.arange(len(ranked), dtype=np.float64) / max(len(ranked), 1)
    for rule in plan.rules:
        if rule.action not in ("boost", "bury") or not ranked:
            continue
        hit = targets(rule, catalog, ranked, candidates)
        if hit.any():
            fired.add(rule.id)
            relevance[hit] += rule.weight if rule.action == "boost" else -rule.weight
            for n in np.flatnonzero(hit):
                reasons.setdefault(ranked[int(n)].raw_item_id, []).append((rule.id, rule.action))
    order = np.argsort(-relevance, kind="stable")
    ranked = [ranked[int(n)] for n in order]
    candidates = [candidates[int(n)] for n in order]
    positions = diversify(
        ranked,
        candidates,
        k,
        plan.options,
        facts=facts_of(catalog) if plan.options.margin_weight > 0 else None,
        vectors=vectors,
        fixed_relevance=relevance[order].tolist(),
    )
    listed = [ranked[p] for p in positions]
    by_id = {item.raw_item_id: item for item in ranked}
    listed = _pin(catalog, listed, by_id, plan.rules, is_hidden, pinnable, fired, reasons)[:k]
    shown = {item.raw_item_id for item in listed}
    # a boost or bury whose items all fell below k still counts as applied: it moved them
    applied = list(dict.fromkeys(rule.id for rule in plan.rules if rule.id in fired))
    reasons = {raw: found for raw, found in reasons.items() if raw in shown}
    return listed, applied, reasons


def _pin(
    catalog: Catalog,
    listed: list[ScoredItem],
    ranked: dict[str, ScoredItem],
    rules: list[Rule],
    is_hidden: Callable[[ScoredItem, int], bool],
    pinnable: BoolArray | None,
    fired: set[str],
    reasons: dict[str, list[tuple[str, str]]],
) -> list[ScoredItem]:
    """Put each pin rule's items at its position; the first rule is placed last, so wins.

    A pinned item the model ranked keeps its score; one it did not is inserted with
    score 0 when the request's filters and exclusions allow it (`pinnable`).
    """
    for rule in reversed([rule for rule in rules if rule.action == "pin"]):
        pinned: list[ScoredItem] = []
        for raw in dict.fromkeys(rule.items):
            item_index = catalog.index.get(raw, -1)
            found = ranked.get(raw)
            if found is None:
                allowed = item_index >= 0 and (pinnable is None or bool(pinnable[item_index]))
                if not allowed:
                    continue
                found = catalog.item(item_index, 0.0)
            if not is_hidden(found, item_index):
                pinned.append(found)
        if not pinned:
            continue
        fired.add(rule.id)
        ids = {item.raw_item_id for item in pinned}
        rest = [item for item in listed if item.raw_item_id not in ids]
        at = min(rule.position - 1, len(rest))
        listed = rest[:at] + pinned + rest[at:]
        for item in pinned:
            reasons.setdefault(item.raw_item_id, []).insert(0, (rule.id, "pin"))
    return listed


def steering_plan(
    rules: RuleSet | None,
    options: DiversityOptions,
    *,
    endpoint: Endpoint,
    query: str | None = None,
    filters: Filters | None = None,
    segment: str | None = None,
) -> SteeringPlan:
    """The plan for one request: the rules it meets now, and its constraints."""
    if rules is None or not rules.config.rules:
        return SteeringPlan([], options, 0 if rules is None else rules.version)
    context = RuleContext(
        endpoint=endpoint,
        query=query,
        category_page=category_page(filters.category if filters is not None else None),
        segment=segment,
        moment=utc_now(),
    )
    return SteeringPlan(rules.matching(context), options, rules.version)


def explain_recommendation(
    engine: Engine,
    steered: Steered[Any],
    state: UserState,
    raw_user_id: str | None,
    filters: Filters | None,
    *,
    session: list[tuple[str, float]] | None = None,
) -> list[Explanation]:
    """The explanations of a steered recommendation, in list order.

    The history explained is the one the list was scored from: `session` when the
    request gave one (`session_weights`), else the store's recent events for
    "session" personalisation (weighted as `live_recommend` weighs them), else the
    bundle user's; "realtime" lists also name the recent items whose neighbours were
    blended in.

    Args:
        engine: the engine that answered.
        steered: its steered answer (`LiveRecommendation` or a session's result).
        state: the user's online-store state.
        raw_user_id: the shopper.
        filters: the request's filters (a single category is the category page).
        session: the request's own history as (raw item id, weight), oldest first.
    """
    result = steered.result
    weights = engine.event_weights
    recent: dict[str, float] = {}
    for event in state.recent:  # newest first
        if event.raw_item_id in engine.catalog.index:
            weight = weights.get(event.event_type, 0.0)
            recent[event.raw_item_id] = recent.get(event.raw_item_id, 0.0) + weight
    positive = [(item, weight) for item, weight in recent.items() if weight > 0]
    if session is None:
        session = positive[::-1] if result.personalisation == "session" else []
    realtime = result.personalisation == "realtime"
    seeds = [item for item, _ in positive[:MAX_SEEDS]] if realtime else []
    return engine.explainer.recommendation(
        steered.items,
        raw_user_id=raw_user_id,
        session=session,
        recent=seeds,
        popular=result.fallback is not None or result.fallback_reason == "partial-fill",
        category_page=category_page(filters.category if filters is not None else None),
        rule_reasons=steered.rule_reasons,
    )


def session_weights(engine: Engine, events: Sequence[Any]) -> list[tuple[str, float]]:
    """(raw item id, weight) of a request's history events, as `recommend_session`
    weighs them (the event type's bundle weight; no type: a view; weight 0 left out)."""
    weights = engine.event_weights
    pairs = []
    for event in events:
        kind = event.event_type if event.event_type is not None else EventType.VIEW
        weight = weights.get(kind, 0.0)
        if event.raw_item_id in engine.catalog.index and weight > 0:
            pairs.append((str(event.raw_item_id), weight))
    return pairs
