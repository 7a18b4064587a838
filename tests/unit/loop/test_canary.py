"""Canary verdicts and KPIs read from a real server metrics registry."""

from __future__ import annotations

import pytest

from shelfwise.config import CanaryConfig
from shelfwise.loop.canary import Kpis, _quantile, judge, kpis_from_text
from shelfwise.serve.metrics import ServeMetrics

RULES = CanaryConfig(
    min_lists=100, ctr_tolerance=0.05, max_error_rate_delta=0.01, max_p99_ratio=1.5
)
CHAMPION = Kpis(lists=1000, clicks=100, purchases=20, requests=1000, errors=1, p99_seconds=0.010)


def test_wait_until_both_sides_have_traffic() -> None:
    decision, reasons = judge(CHAMPION, Kpis(lists=50, clicks=10), RULES)
    assert decision == "wait"
    assert "needs 100" in reasons[0]


def test_promote_when_no_kpi_is_worse_than_the_tolerances() -> None:
    close = Kpis(lists=1000, clicks=96, purchases=19.5, requests=1000, errors=2, p99_seconds=0.012)
    assert judge(CHAMPION, close, RULES)[0] == "promote"


@pytest.mark.parametrize(
    ("challenger", "reason"),
    [
        (Kpis(lists=1000, clicks=90, purchases=20, requests=1000, p99_seconds=0.01), "ctr"),
        (Kpis(lists=1000, clicks=100, purchases=10, requests=1000, p99_seconds=0.01), "conversion"),
        (
            Kpis(lists=1000, clicks=100, purchases=20, requests=950, errors=50, p99_seconds=0.01),
            "error rate",
        ),
        (Kpis(lists=1000, clicks=100, purchases=20, requests=1000, p99_seconds=0.02), "p99"),
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
