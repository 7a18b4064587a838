"""The per-list attribution counter: a list counts once per event type, on any replica.

`shelfwise_serve_attributed_lists_total` is `canary judge`'s Bernoulli unit (lists
clicked over lists served); counting a list twice would make it a click count again.
"""

from __future__ import annotations

import pytest

from shelfwise.contracts import EventType
from shelfwise.serve.attribution import LIST_MARKER, attribute_events, remember_list
from shelfwise.serve.metrics import ServeMetrics
from shelfwise.stores.online import Attribution, MemoryStore, OnlineStore
from shelfwise.stores.redis_store import RedisStore

CLICK, PURCHASE = EventType.CLICK, EventType.PURCHASE


def _lists(metrics: ServeMetrics, event_type: str, version: str = "v1") -> float:
    value = metrics.registry.get_sample_value(
        "shelfwise_serve_attributed_lists_total",
        {"event_type": event_type, "model_version": version},
    )
    return value or 0.0


def _serve(store: OnlineStore, metrics: ServeMetrics, request_id: str) -> None:
    remember_list(
        store,
        metrics,
        endpoint="recommend",
        request_id=request_id,
        model_version="v1",
        raw_item_ids=["a", "b", "c"],
    )


def test_a_list_counts_once_however_many_clicks_it_gets() -> None:
    store, metrics = MemoryStore(), ServeMetrics()
    _serve(store, metrics, "r1")
    _serve(store, metrics, "r2")
    claims = [Attribution("r1", "a", CLICK), Attribution("r1", "b", CLICK)]
    assert attribute_events(store, metrics, claims) == 2  # two clicks in one batch
    assert attribute_events(store, metrics, [Attribution("r1", "c", CLICK)]) == 1
    assert _lists(metrics, "click") == 1
    # an item the list did not hold is not attributed and does not use the list up
    assert attribute_events(store, metrics, [Attribution("r2", "zzz", CLICK)]) == 0
    assert _lists(metrics, "click") == 1
    assert attribute_events(store, metrics, [Attribution("r2", "b", CLICK)]) == 1
    assert _lists(metrics, "click") == 2
    # a purchase counts its list once more, under its own type
    attribute_events(store, metrics, [Attribution("r1", "a", PURCHASE)] * 2)
    assert (_lists(metrics, "purchase"), _lists(metrics, "click")) == (1, 2)
    clicks = metrics.registry.get_sample_value(
        "shelfwise_serve_attributed_events_total", {"event_type": "click", "model_version": "v1"}
    )
    assert clicks == 4  # the event counter is unchanged: every distinct click
    impressions = metrics.registry.get_sample_value(
        "shelfwise_serve_impressions_total", {"endpoint": "recommend", "model_version": "v1"}
    )
    assert impressions == 6  # the marker is not an impression


def test_an_event_naming_the_marker_counts_nothing() -> None:
    store, metrics = MemoryStore(), ServeMetrics()
    _serve(store, metrics, "r1")
    assert attribute_events(store, metrics, [Attribution("r1", LIST_MARKER, CLICK)]) == 0
    assert _lists(metrics, "click") == 0
    assert attribute_events(store, metrics, [Attribution("r1", "a", CLICK)]) == 1
    assert _lists(metrics, "click") == 1


def test_replicas_sharing_redis_count_a_list_once(redis_url: str) -> None:
    pytest.importorskip("redis")
    serving, other = RedisStore(redis_url, timeout=2.0), RedisStore(redis_url, timeout=2.0)
    metrics_a, metrics_b = ServeMetrics(), ServeMetrics()
    try:
        _serve(serving, metrics_a, "r1")
        assert attribute_events(other, metrics_b, [Attribution("r1", "a", CLICK)]) == 1
        assert attribute_events(serving, metrics_a, [Attribution("r1", "b", CLICK)]) == 1
        assert attribute_events(other, metrics_b, [Attribution("r1", "c", CLICK)]) == 1
        assert _lists(metrics_a, "click") + _lists(metrics_b, "click") == 1
        assert _lists(metrics_b, "click") == 1  # the replica that saw the first click
    finally:
        serving.close()
        other.close()
