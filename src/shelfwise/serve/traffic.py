"""Fake-traffic patterns on `/v1/events`, counted as they arrive (never blocking).

The same patterns as validate's check (validate/_bots.py, `data.fake_traffic`
thresholds), approximated with a fixed amount of state per user and per product so
that memory stays bounded whatever the traffic:

- `rate`: the user's events in the current `rate_window_seconds` window exceed the rate;
- `no-dwell`: after `min_events`, more than `max_no_dwell_share` of the user's
  views/clicks came under `min_dwell_seconds` after the previous event;
- `regular`: `min_events` gaps in a row within `regular_tolerance` (or 1 s) of the
  previous gap;
- `unviewed-purchase`: `unviewed_min_purchases` purchases, none of an item among the
  user's last `_RECENT_ITEMS` views, clicks or carts, and no more of those than
  purchases;
- `ring`: `ring_min_accounts` new accounts buying one product within
  `ring_window_seconds`.

Users and products are kept in LRU tables of `max_users` / `max_items` entries: a user
pushed out starts again from nothing (an undercount, never a false alarm). Each event
counts once, under its first matching pattern; nothing is rejected: the counters feed
alerts, and the batch pipeline's validate quarantines.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from shelfwise.config.fake_traffic import FakeTrafficConfig
from shelfwise.contracts import EventType

_RECENT_ITEMS: Final = 32  # items a user looked at, remembered for the unviewed check
_LOOKS: Final = frozenset({EventType.VIEW.value, EventType.CLICK.value})
_BROWSE: Final = frozenset({*_LOOKS, EventType.CART.value, EventType.PURCHASE.value})


@dataclass
class _User:
    first: int
    last: int | None = None
    events: int = 0
    window_start: int = 0
    window_events: int = 0
    looks: int = 0
    fast_looks: int = 0
    last_gap: int | None = None
    regular_streak: int = 0
    purchases: int = 0
    unviewed: int = 0
    browsed: int = 0  # views, clicks and carts
    recent: deque[str] = field(default_factory=lambda: deque(maxlen=_RECENT_ITEMS))


class TrafficWatch:
    """Per-user and per-product pattern state in bounded LRU tables (thread-safe)."""

    def __init__(
        self,
        config: FakeTrafficConfig | None = None,
        *,
        max_users: int = 100_000,
        max_items: int = 10_000,
    ) -> None:
        """Start empty.

        Args:
            config: thresholds (default: `data.fake_traffic`'s defaults).
            max_users: users tracked at once (about 0.5 KB each).
            max_items: products tracked for rings at once.
        """
        self.config = config or FakeTrafficConfig()
        self.max_users = max_users
        self.max_items = max_items
        self._users: OrderedDict[str, _User] = OrderedDict()
        self._rings: OrderedDict[str, deque[int]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def tracked_users(self) -> int:
        """Users currently in the table."""
        return len(self._users)

    def observe(self, events: Iterable[tuple[str, str, str, int]]) -> list[str]:
        """Patterns matched by (user, item, event type, unix seconds) events, one per hit."""
        found: list[str] = []
        with self._lock:
            for user_id, item_id, event_type, timestamp in events:
                if event_type not in _BROWSE:
                    continue
                pattern = self._one(user_id, item_id, event_type, timestamp)
                if pattern is not None:
                    found.append(pattern)
        return found

    def _user(self, user_id: str, timestamp: int) -> _User:
        state = self._users.get(user_id)
        if state is None:
            state = _User(first=timestamp, window_start=timestamp)
            self._users[user_id] = state
            if len(self._users) > self.max_users:
                self._users.popitem(last=False)
        else:
            self._users.move_to_end(user_id)
        return state

    def _one(self, user_id: str, item_id: str, event_type: str, timestamp: int) -> str | None:
        config = self.config
        state = self._user(user_id, timestamp)
        state.events += 1
        if timestamp - state.window_start >= config.rate_window_seconds:
            state.window_start, state.window_events = timestamp, 0
        state.window_events += 1
        gap = None if state.last is None else timestamp - state.last
        state.last = timestamp
        if gap is not None:
            if state.last_gap is not None and abs(gap - state.last_gap) <= max(
                1.0, config.regular_tolerance * state.last_gap
            ):
                state.regular_streak += 1
            else:
                state.regular_streak = 0
            state.last_gap = gap
            if event_type in _LOOKS:
                state.looks += 1
                state.fast_looks += gap < config.min_dwell_seconds
        if event_type == EventType.PURCHASE.value:
            state.purchases += 1
            state.unviewed += item_id not in state.recent
        else:
            state.recent.append(item_id)
            state.browsed += 1
        limit = config.max_events_per_minute * config.rate_window_seconds / 60.0
        if state.window_events > limit:
            return "rate"
        enough = state.events >= config.min_events
        if enough and state.fast_looks > config.max_no_dwell_share * max(state.looks, 1):
            return "no-dwell"
        if (
            state.regular_streak >= config.min_events
            and (state.last_gap or 0) >= config.min_dwell_seconds
        ):
            return "regular"
        if event_type != EventType.PURCHASE.value:
            return None
        if (
            state.purchases >= config.unviewed_min_purchases
            and state.unviewed == state.purchases
            and state.browsed <= state.purchases
        ):
            return "unviewed-purchase"
        new = (
            timestamp - state.first <= config.new_account_seconds
            and state.events <= config.ring_max_user_events
        )
        return "ring" if new and self._ring(item_id, timestamp) else None

    def _ring(self, item_id: str, timestamp: int) -> bool:
        times = self._rings.get(item_id)
        if times is None:
            times = deque(maxlen=self.config.ring_min_accounts)
            self._rings[item_id] = times
            if len(self._rings) > self.max_items:
                self._rings.popitem(last=False)
        else:
            self._rings.move_to_end(item_id)
        times.append(timestamp)
        return (
            len(times) == times.maxlen and timestamp - times[0] <= self.config.ring_window_seconds
        )
