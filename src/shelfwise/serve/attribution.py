"""Attribution: clicks, carts and purchases on served lists, per model version.

Every non-empty list that `/v1/recommend` or `/v1/search` serves is remembered in the
online store under its `request_id` with the model version that produced it
(`remember_list`, which also counts the list and its items as impressions). An event
that later carries that `request_id` and names one of the listed items counts once
toward that version (`attribute_events`): `shelfwise_serve_attributed_events_total`
over `shelfwise_serve_impressions_total` is the CTR (or conversion) of a version, the
number the retraining loop compares between champion and canary.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from shelfwise.contracts import EventType
from shelfwise.serve.metrics import ServeMetrics
from shelfwise.stores.online import Attribution, OnlineStore

ATTRIBUTED_TYPES: Final = frozenset({EventType.CLICK, EventType.CART, EventType.PURCHASE})


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
    store.remember_served(request_id, model_version, list(raw_item_ids))
    metrics.observe_served(endpoint, model_version, len(raw_item_ids))


def attribute_events(
    store: OnlineStore, metrics: ServeMetrics, claims: Sequence[Attribution]
) -> int:
    """Count the claims that refer to a served list's item; return how many counted."""
    eligible = [claim for claim in claims if claim.event_type in ATTRIBUTED_TYPES]
    if not eligible:
        return 0
    counted = 0
    for claim, version in zip(eligible, store.attribute(eligible), strict=True):
        if version is not None:
            metrics.observe_attributed(claim.event_type.value, version)
            counted += 1
    return counted
