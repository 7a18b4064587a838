"""Recommendations for a session: a history given with the request or kept by session id.

Anonymous shoppers have no user id the bundle knows, only what they did in this visit.
`recommend_session` scores that history with the bundle's session model (role
"session": the SKNN / V-SKNN / STAN variant the evaluate stage chose on the valid
sessions of a session-split run, which reads the items in order), else, and when the
session model finds nothing for the visit (items no training session holds), with the
bundle's recommender (`Engine.recommend_from_history`), and applies the within-session
repeat rule:

- `allow_repeats` true: the session's own items may be listed again (session protocols
  count such targets; on Taobao 17% of sessions end on an item seen earlier in them,
  and hiding them cut HR@20 from 0.201 to 0.047, see benchmarks/RESULTS.md);
- false: they are left out, as the shop-wide `exclude` repeat policy does.

The history is oldest first: events with timestamps are ordered by them (stable, so
equal or missing timestamps keep the given order). Items the catalog does not know are
ignored and counted (`SessionRecommendation.unknown_items`). An event's weight is its
type's weight in the bundle (`Engine.event_weights`; an event without a type is a
view); events weighing 0 (e.g. searches) do not enter the history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from shelfwise.contracts import EventType
from shelfwise.runtime.catalog import Filters, ScoredItem
from shelfwise.runtime.engine import Engine
from shelfwise.runtime.results import Fallback, RecommendResult
from shelfwise.stores.online import RecentEvent

MAX_HISTORY: Final = 200  # events of one session history the server reads (the newest)
HistorySource = Literal["request", "session", "session+request"]


@dataclass(frozen=True)
class HistoryEvent:
    """One event of a session history (item id, and what and when when known)."""

    raw_item_id: str
    event_type: EventType | None = None
    timestamp: int | None = None


@dataclass(frozen=True)
class SessionRecommendation:
    """Items for a session, best first.

    Attributes:
        items: the list.
        fallback: "popular" when the history gave the model nothing to score.
        fallback_reason: as in `shelfwise.runtime.engine` ("no-history", "partial-fill").
        personalisation: "session" when the recommender scored the history.
        unknown_items: history events on items the catalog does not know (ignored).
        used_events: history events that entered the history.
    """

    items: list[ScoredItem]
    fallback: Fallback | None
    fallback_reason: str | None
    personalisation: Literal["session"] | None
    unknown_items: int
    used_events: int


def from_recent(recent: Sequence[RecentEvent]) -> list[HistoryEvent]:
    """The online store's recent events (newest first) as a history, oldest first."""
    return [
        HistoryEvent(event.raw_item_id, event.event_type, event.timestamp)
        for event in reversed(recent)
    ]


def session_allows_repeats(session_repeats: str, exclude_seen: bool | None, engine: Engine) -> bool:
    """Whether a history's own items may be listed again (`serve.session_repeats`).

    `allow` lists them; `policy` follows the server's `exclude_seen` when set, else the
    bundle's repeat policy (`engine.exclude_seen`); anything else hides them. One rule
    for `/v1/recommend` and the gate's re-scoring of held-out sessions.
    """
    hide_seen = exclude_seen if exclude_seen is not None else engine.exclude_seen
    return session_repeats == "allow" or (session_repeats == "policy" and not hide_seen)


def recommend_session(
    engine: Engine,
    history: Sequence[HistoryEvent],
    k: int,
    *,
    raw_user_id: str | None = None,
    exclude: Sequence[str] = (),
    filters: Filters | None = None,
    allow_repeats: bool = True,
) -> SessionRecommendation:
    """Up to `k` items following `history` (oldest first; the newest `MAX_HISTORY` count).

    Args:
        engine: the engine serving this request.
        history: the session's events, oldest first (timestamps reorder them).
        k: list length.
        raw_user_id: the shopper, when known (a click model may read it).
        exclude: raw item ids never to return.
        filters: restrictions applied before ranking.
        allow_repeats: the within-session repeat rule (see the module docstring).

    Raises:
        RequestError: `k` < 1.
    """
    index, weights = engine.catalog.index, engine.event_weights
    ordered = sorted(
        history[-MAX_HISTORY:],
        key=lambda event: event.timestamp if event.timestamp is not None else -1,
    )
    if any(event.timestamp is None for event in history[-MAX_HISTORY:]):
        ordered = list(history[-MAX_HISTORY:])  # a partial order would invent one
    unknown = sum(1 for event in ordered if event.raw_item_id not in index)
    items: list[str] = []
    values: list[float] = []
    for event in ordered:
        kind = event.event_type if event.event_type is not None else EventType.VIEW
        weight = weights.get(kind, 0.0)
        if event.raw_item_id in index and weight > 0:
            items.append(event.raw_item_id)
            values.append(weight)
    blocked_ids = list(exclude)
    if not allow_repeats:
        blocked_ids += items
    blocked = engine.catalog.blocked(filters)
    blocked[engine.catalog.indices(blocked_ids)] = True

    # the engine applies the filters and exclusions before ranking, so `k` items are
    # enough, and a "partial-fill" it reports means the model had fewer than `k` to give
    def scored_by(session: bool) -> RecommendResult:
        return engine.recommend_from_history(
            items,
            k,
            weights=values,
            raw_user_id=raw_user_id,
            exclude=blocked_ids,
            exclude_seen=not allow_repeats,
            session=session,
            filters=filters,  # a filter that shows more (sold-out items) counts too
        )

    scored = scored_by(engine.has_session_model)
    if scored.fallback is not None and engine.has_session_model and items:
        scored = scored_by(False)  # a visit no training session resembles
    if scored.fallback is not None or not items:
        fill = engine.recommend(None, k, exclude=blocked_ids, filters=filters)
        reason = "no-history" if not items else scored.fallback_reason
        return SessionRecommendation(
            fill.items, fill.fallback or "popular", reason, None, unknown, len(items)
        )
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
    return SessionRecommendation(chosen, None, reason, "session", unknown, len(items))


__all__ = [
    "MAX_HISTORY",
    "HistoryEvent",
    "HistorySource",
    "SessionRecommendation",
    "from_recent",
    "recommend_session",
]
