"""Attribution: clicks, carts and purchases on served lists, per model version.

Every non-empty list that `/v1/recommend` or `/v1/search` serves is remembered in the
online store under its `request_id` with the model version that produced it
(`remember_list`, which also counts the list and its items as impressions). An event
that later carries that `request_id` and names one of the listed items counts once
toward that version (`attribute_events`): `shelfwise_serve_attributed_events_total`
over `shelfwise_serve_impressions_total` is the CTR (or conversion) of a version.

The first attributed event of each type on a list also counts the list itself
(`shelfwise_serve_attributed_lists_total`): lists clicked over lists served is the
share `canary judge` tests, one Bernoulli trial per list. "First" is decided by the
store's own once-only rule: every remembered list also holds `LIST_MARKER`, a pseudo
item no real item id can equal, and a claim on the marker counts once per (list, event
type) exactly as a claim on an item does (in Redis an atomic SADD, so replicas sharing
it count a list once between them). The marker costs no extra round trip when a list
is served (one more string in the stored list) and two on `/v1/events` when an event
counted; a new store method would have needed all three backends changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from shelfwise.contracts import EventType
from shelfwise.serve.metrics import ServeMetrics
from shelfwise.stores.online import Attribution, OnlineStore

ATTRIBUTED_TYPES: Final = frozenset({EventType.CLICK, EventType.CART, EventType.PURCHASE})
# A unit separator first, like the store's session keys: item ids are printable, so no
# event names it (and `attribute_events` drops any claim that tries).
LIST_MARKER: Final = "\x1flist"


def remember_list(
    store: OnlineStore,
    metrics: ServeMetrics,
    *,
    endpoint: str,
    request_id: str,
    model_version: str,
    raw_item_ids: Sequence[str],
) -> None:
    """Remember a served list for attribution and count its impressions."""
    if not request_id or not raw_item_ids:
        return
    store.remember_served(request_id, model_version, [*raw_item_ids, LIST_MARKER])
    metrics.observe_served(endpoint, model_version, len(raw_item_ids))


def attribute_events(
    store: OnlineStore, metrics: ServeMetrics, claims: Sequence[Attribution]
) -> int:
    """Count the claims that refer to a served list's item; return how many counted.

    A list's first counted event of a type also counts the list once
    (`ServeMetrics.observe_attributed_list`).
    """
    eligible = [
        claim
        for claim in claims
        if claim.event_type in ATTRIBUTED_TYPES and claim.raw_item_id != LIST_MARKER
    ]
    if not eligible:
        return 0
    counted: list[Attribution] = []
    for claim, version in zip(eligible, store.attribute(eligible), strict=True):
        if version is not None:
            metrics.observe_attributed(claim.event_type.value, version)
            counted.append(claim)
    # only lists that got a counted event: an event naming an item the list did not
    # hold must not use up the list's marker
    markers = list(
        dict.fromkeys(
            Attribution(claim.request_id, LIST_MARKER, claim.event_type) for claim in counted
        )
    )
    if markers:
        for marker, version in zip(markers, store.attribute(markers), strict=True):
            if version is not None:
                metrics.observe_attributed_list(marker.event_type.value, version)
    return len(counted)
