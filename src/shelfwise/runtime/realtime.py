"""Recommendations that react to what a shopper did seconds ago.

`live_recommend` wraps `Engine.recommend` with the user's state from the online store:

============  ==============================================================================
personalis-   when and how
ation
============  ==============================================================================
"history"     the bundle knows the user and the store has no recent events: the engine's
              list as it is
"realtime"    the bundle knows the user and the store has recent events: neighbours of the
              recently viewed items (`Engine.neighbours`, newest item first, round robin) are
              interleaved with the engine's list, a neighbour first, then every other slot
"session"     the bundle cannot personalise (unknown user, no history) but the store has
              events: the recommender scores those events as the history
              (`Engine.recommend_from_history`, weighted as below), filters and
              exclusions applied, popular items filling any gap
None          neither: the engine's popularity fallback (`fallback` "popular")
============  ==============================================================================

In every case items the user purchased (store) are left out when `exclude_purchased`
is set, and with `exclude_seen` the recently interacted items are left out as well as
the bundle history.

A recent event weighs what its type weighed when the bundle's histories were built
(`Engine.event_weights`: the bundle's `models.event_weights`, the config defaults for
older bundles), so a live purchase counts as much as a purchase in training. An item
whose recent events weigh 0 in total (by default: searches alone, which say little
about the item) neither seeds neighbours nor enters a session.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from shelfwise.contracts import BoolArray
from shelfwise.runtime.catalog import Filters, ScoredItem
from shelfwise.runtime.engine import Engine
from shelfwise.runtime.results import Fallback
from shelfwise.stores.online import UserState

Personalisation = Literal["history", "realtime", "session"]

MAX_SEEDS: Final = 3  # the most recent distinct items whose neighbours are blended in


@dataclass(frozen=True)
class LiveRecommendation:
    """Items for a user, best first, with how they were personalised.

    Same fields as `RecommendResult` plus `personalisation` (see the module table).
    """

    items: list[ScoredItem]
    fallback: Fallback | None = None
    fallback_reason: str | None = None
    personalisation: Personalisation | None = None


def live_recommend(
    engine: Engine,
    state: UserState,
    raw_user_id: str | None,
    k: int,
    *,
    exclude: Sequence[str] = (),
    filters: Filters | None = None,
    exclude_seen: bool | None = None,
    exclude_purchased: bool = True,
) -> LiveRecommendation:
    """Up to `k` items for a user, reflecting the store's recent events.

    Args:
        engine: the engine serving this request.
        state: the user's state in the online store (empty for anonymous users).
        raw_user_id: the shop's user id, or None.
        k: list length.
        exclude: raw item ids never to return.
        filters: restrictions applied before ranking.
        exclude_seen: leave out the user's bundle history and recent items; None =
            the bundle's repeat policy (`Engine.exclude_seen`).
        exclude_purchased: leave out the items the store says the user purchased.

    Raises:
        RequestError: `k` < 1.
    """
    if exclude_seen is None:
        exclude_seen = engine.exclude_seen
    recent = _recent_items(engine, state)
    blocked_ids = list(exclude)
    if exclude_purchased:
        blocked_ids += sorted(state.purchased)
    if exclude_seen:
        blocked_ids += [item for item, _ in recent]
    base = engine.recommend(
        raw_user_id, k, exclude=blocked_ids, filters=filters, exclude_seen=exclude_seen
    )
    if not any(weight > 0 for _, weight in recent):
        personalisation: Personalisation | None = "history" if base.fallback is None else None
        return LiveRecommendation(base.items, base.fallback, base.fallback_reason, personalisation)
    blocked = engine.catalog.blocked(filters)
    blocked[engine.catalog.indices(blocked_ids)] = True
    if base.fallback is None:
        if exclude_seen:
            blocked[engine.catalog.indices(engine.history_item_ids(raw_user_id))] = True
        neighbours = _neighbours(engine, recent, blocked, k + len(blocked_ids))
        items = _interleave(neighbours, base.items, k)
        return LiveRecommendation(items, None, base.fallback_reason, "realtime")
    session = _session(engine, recent, raw_user_id, k, blocked, blocked_ids, filters, exclude_seen)
    if session is None:
        return LiveRecommendation(base.items, base.fallback, base.fallback_reason, None)
    return session


def _recent_items(engine: Engine, state: UserState) -> list[tuple[str, float]]:
    """(item, summed weight) of the recent events on catalog items, newest item first.

    Weights are the bundle's (`Engine.event_weights`), as its histories were built.
    """
    index, event_weights = engine.catalog.index, engine.event_weights
    weights: dict[str, float] = {}
    for event in state.recent:  # newest first: dict order keeps first appearance
        if event.raw_item_id in index:
            weight = event_weights.get(event.event_type, 0.0)  # 0.0: as `features` weighs
            weights[event.raw_item_id] = weights.get(event.raw_item_id, 0.0) + weight
    return list(weights.items())


def _neighbours(
    engine: Engine, recent: list[tuple[str, float]], blocked: BoolArray, per_seed: int
) -> list[ScoredItem]:
    """Allowed neighbours of the newest seeds, round robin (newest seed first)."""
    seeds = [item for item, weight in recent if weight > 0][:MAX_SEEDS]
    count = max(1, min(len(engine.catalog) - 1, per_seed))
    lists: list[list[ScoredItem]] = []
    for seed in seeds:
        found = engine.neighbours(seed, count)  # true neighbours only, no popular fill
        lists.append(
            [item for item in found if not blocked[engine.catalog.index[item.raw_item_id]]]
        )
    merged: list[ScoredItem] = []
    seen: set[str] = set()
    for rank in range(max((len(found) for found in lists), default=0)):
        for found in lists:
            if rank < len(found) and found[rank].raw_item_id not in seen:
                seen.add(found[rank].raw_item_id)
                merged.append(found[rank])
    return merged


def _interleave(live: list[ScoredItem], base: list[ScoredItem], k: int) -> list[ScoredItem]:
    """Alternate live and base items (live first), without repeats, up to `k`."""
    chosen: list[ScoredItem] = []
    seen: set[str] = set()
    sources = (iter(live), iter(base))
    turn = 0
    exhausted = [False, False]
    while len(chosen) < k and not all(exhausted):
        source = turn % 2
        turn += 1
        if exhausted[source]:
            continue
        for item in sources[source]:
            if item.raw_item_id not in seen:
                seen.add(item.raw_item_id)
                chosen.append(item)
                break
        else:
            exhausted[source] = True
    return chosen


def _session(
    engine: Engine,
    recent: list[tuple[str, float]],
    raw_user_id: str | None,
    k: int,
    blocked: BoolArray,
    blocked_ids: list[str],
    filters: Filters | None,
    exclude_seen: bool,
) -> LiveRecommendation | None:
    """Recommendations from the session's events alone; None when they give none."""
    history = [(item, weight) for item, weight in reversed(recent) if weight > 0]  # oldest first
    ask = min(len(engine.catalog), 2 * k + len(blocked_ids))
    scored = engine.recommend_from_history(
        [item for item, _ in history],
        ask,
        weights=[weight for _, weight in history],
        raw_user_id=raw_user_id,
        exclude_seen=exclude_seen,
    )
    if scored.fallback is not None:  # the recommender had nothing to say about them
        return None
    index = engine.catalog.index
    chosen = [item for item in scored.items if not blocked[index[item.raw_item_id]]][:k]
    reason = scored.fallback_reason
    if len(chosen) < k:
        fill = engine.recommend(
            None,
            k - len(chosen),
            exclude=[*blocked_ids, *(item.raw_item_id for item in chosen)],
            filters=filters,
        )
        chosen += fill.items
        reason = "partial-fill"
    return LiveRecommendation(chosen, None, reason, "session")
