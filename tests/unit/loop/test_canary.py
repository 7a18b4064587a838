"""Canary verdicts and KPIs read from a real server metrics registry."""

from __future__ import annotations

import pytest

from shelfwise.config import CanaryConfig
from shelfwise.loop.canary import Kpis, _quantile, judge, kpis_from_text
from shelfwise.serve.metrics import ServeMetrics

RULES = CanaryConfig(min_lists=100, max_error_rate_delta=0.01, max_p99_ratio=1.5)
CHAMPION = Kpis(
    lists=10_000, clicks=1000, purchases=200, requests=10_000, errors=10, p99_seconds=0.010
)


def test_wait_until_both_sides_have_traffic() -> None:
    decision, reasons = judge(CHAMPION, Kpis(lists=50, clicks=10), RULES)
    assert decision == "wait"
    assert "needs 100" in reasons[0]


def test_promote_only_on_a_significant_lift() -> None:
    better = Kpis(lists=10_000, clicks=1200, purchases=210, requests=10_000, p99_seconds=0.011)
    decision, reasons = judge(CHAMPION, better, RULES)
    assert decision == "promote"
    assert "ctr significantly better" in reasons[0]
    # the same lift on few lists is noise: wait, do not promote
    small = Kpis(lists=300, clicks=36, purchases=6, requests=300, p99_seconds=0.011)
    few = Kpis(lists=300, clicks=30, purchases=6, requests=300, errors=0, p99_seconds=0.01)
    decision, reasons = judge(few, small, RULES)
    assert decision == "wait"
    assert "not yet significant" in reasons[0]


def test_non_inferiority_promotes_an_equal_challenger() -> None:
    equal = Kpis(lists=40_000, clicks=4000, purchases=800, requests=40_000, p99_seconds=0.01)
    champion = Kpis(lists=40_000, clicks=4000, purchases=800, requests=40_000, p99_seconds=0.01)
    assert judge(champion, equal, RULES)[0] == "wait"  # superiority: no reason to switch
    margin = RULES.model_copy(update={"non_inferiority_margin": 0.1})
    decision, reasons = judge(champion, equal, margin)
    assert decision == "promote"
    assert "no worse than" in reasons[0]


@pytest.mark.parametrize(
    ("challenger", "reason"),
    [
        (Kpis(lists=10_000, clicks=800, purchases=200, requests=10_000, p99_seconds=0.01), "ctr"),
        (
            Kpis(lists=10_000, clicks=1000, purchases=100, requests=10_000, p99_seconds=0.01),
            "conversion",
        ),
        (
            Kpis(
                lists=10_000,
                clicks=1000,
                purchases=200,
                requests=9500,
                errors=500,
                p99_seconds=0.01,
            ),
            "error rate",
        ),
        (Kpis(lists=10_000, clicks=1000, purchases=200, requests=10_000, p99_seconds=0.02), "p99"),
    ],
)
def test_rollback_names_the_kpi_that_got_worse(challenger: Kpis, reason: str) -> None:
    decision, reasons = judge(CHAMPION, challenger, RULES)
    assert decision == "rollback"
    assert any(r.startswith(reason) for r in reasons)


def test_kpis_from_the_servers_own_exposition() -> None:
    metrics = ServeMetrics()
    for version, lists, clicks, seconds in (("1", 300, 30, 0.004), ("2", 100, 20, 0.02)):
        metrics.served_lists.labels("recommend", version).inc(lists)
        metrics.attributed_events.labels("click", version).inc(clicks)
        metrics.attributed_events.labels("purchase", version).inc(clicks / 10)
        for _ in range(lists):
            metrics.observe_model("recommend", version, "champion", seconds)
    metrics.model_errors.labels("recommend", "2").inc(5)
    kpis = kpis_from_text(metrics.render().decode())
    assert kpis["1"].lists == 300
    assert kpis["1"].ctr == pytest.approx(0.1)
    assert kpis["2"].ctr == pytest.approx(0.2)
    assert kpis["2"].conversion == pytest.approx(0.02)
    assert kpis["2"].error_rate == pytest.approx(5 / 105)
    assert kpis["1"].p99_seconds is not None
    assert 0.0025 < kpis["1"].p99_seconds <= 0.005  # inside its histogram bucket
    assert 0.01 < kpis["2"].p99_seconds <= 0.025  # type: ignore[operator]


def test_quantile_interpolates_inside_the_bucket() -> None:
    buckets = {0.1: 50.0, 0.2: 100.0, float("inf"): 100.0}
    assert _quantile(buckets, 0.5) == pytest.approx(0.1)
    assert _quantile(buckets, 0.75) == pytest.approx(0.15)
    assert _quantile({}, 0.5) is None


def test_kpis_read_the_lists_clicked_and_fall_back_without_them() -> None:
    metrics = ServeMetrics()
    metrics.served_lists.labels("recommend", "1").inc(200)
    metrics.attributed_events.labels("click", "1").inc(50)
    metrics.attributed_lists.labels("click", "1").inc(20)
    metrics.served_lists.labels("recommend", "2").inc(100)  # nothing clicked yet
    kpis = kpis_from_text(metrics.render().decode())
    assert kpis["1"].clicked_share == pytest.approx(0.1)
    assert kpis["1"].ctr == pytest.approx(0.25)  # clicks per list, still reported
    assert kpis["1"].purchased_lists == 0  # no purchase, so no list bought from
    assert kpis["2"].clicked_lists == 0
    older = ServeMetrics()  # a server without the list counter: clicks but no lists
    older.served_lists.labels("recommend", "1").inc(200)
    older.attributed_events.labels("click", "1").inc(50)
    text = "\n".join(
        line for line in older.render().decode().splitlines() if "attributed_lists" not in line
    )
    assert kpis_from_text(text + "\n")["1"].clicked_lists is None
