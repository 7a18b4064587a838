"""Fake-traffic counters on `/v1/events` (issue 15): each pattern, a human left alone,
bounded memory, and the Prometheus counter by pattern."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shelfwise.config.fake_traffic import FakeTrafficConfig
from shelfwise.serve.traffic import TrafficWatch

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

T0 = 1_700_000_000


def _watch() -> TrafficWatch:
    return TrafficWatch(FakeTrafficConfig())


def test_a_human_session_matches_nothing() -> None:
    watch = _watch()
    events = [("h", f"i{n}", "view", T0 + 40 * n + (n * n) % 17) for n in range(30)]
    events += [("h", "i29", "cart", T0 + 1_300), ("h", "i29", "purchase", T0 + 1_400)]
    assert watch.observe(events) == []


def test_each_pattern_is_counted() -> None:
    watch = _watch()
    assert "rate" in watch.observe(("s", f"i{n}", "view", T0 + n // 2) for n in range(400))
    no_dwell = watch.observe(("f", f"i{n}", "view", T0 + (n // 3) * 100) for n in range(30))
    assert no_dwell[-1] == "no-dwell"
    regular = watch.observe(("t", "i1", "click", T0 + 12 * n) for n in range(40))
    assert regular[-1] == "regular"
    unviewed = watch.observe(("b", f"p{n}", "purchase", T0 + 86_400 * n) for n in range(3))
    assert unviewed == ["unviewed-purchase"]
    ring = watch.observe((f"new{n}", "x", "purchase", T0 + 60 * n) for n in range(5))
    assert ring == ["ring"]


def test_memory_is_bounded() -> None:
    watch = TrafficWatch(FakeTrafficConfig(), max_users=10)
    watch.observe((f"u{n}", "i", "view", T0 + n) for n in range(1000))
    assert watch.tracked_users == 10


def test_events_route_counts_suspected_events_by_pattern(client: TestClient) -> None:
    for batch in range(4):
        events = [
            {
                "user_id": "scraper",
                "item_id": "tea",
                "event_type": "view",
                "timestamp": T0 + batch * 50 + n // 2,
            }
            for n in range(100)
        ]
        assert client.post("/v1/events", json={"events": events}).status_code == 202
    registry = client.app.state.metrics.registry  # type: ignore[attr-defined]
    rate = registry.get_sample_value("shelfwise_serve_suspected_events_total", {"pattern": "rate"})
    assert rate == 400 - 150  # every event past the 150 allowed in 300 s
