"""The loop: champion → new events in the log → retrain → canary → verdict (real MLflow)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
from tests.conftest import shop_config

from shelfwise.loop.canary import judge_canary
from shelfwise.loop.retrain import retrain
from shelfwise.pipeline import run_pipeline
from shelfwise.registry import CHALLENGER, CHAMPION, ModelRegistry
from shelfwise.serve.metrics import ServeMetrics

if TYPE_CHECKING:
    from shelfwise.sample import ShopSummary

FAST = {"search.enabled": False, "compress.enabled": False}


def test_retrain_on_new_events_then_the_canary_is_promoted(
    tiny_shop: ShopSummary, tmp_path: Path
) -> None:
    home = tmp_path / "state"
    # a loose gate: this test is about the loop, not about the retrained model's quality
    config = shop_config(tiny_shop, home, **FAST, **{"gate.rules": {"bundle_mb": {"max": 1000}}})
    first = run_pipeline(config)
    assert first.gate is not None
    assert first.gate.decision == "first-champion"

    nothing = retrain(config)
    assert nothing.status == "nothing-new"
    assert nothing.new_events == 0

    # shoppers keep shopping: the server's event log, newer than the champion's data
    events = pl.read_parquet(tiny_shop.events_path)
    cutoff = int(events["timestamp"].max())
    sample = events.tail(300)
    folder = home / "events" / "date=2030-01-01" / "hour=00"
    folder.mkdir(parents=True)
    rows = sample.select("raw_user_id", "raw_item_id", "event_type").iter_rows()
    lines = [
        json.dumps(
            {"raw_user_id": u, "raw_item_id": i, "event_type": t, "timestamp": cutoff + 60 + n}
        )
        for n, (u, i, t) in enumerate(rows)
    ]
    (folder / "events-test.jsonl").write_text("\n".join(lines) + "\n")

    result = retrain(config)
    assert result.status == "ran"
    assert result.new_events == 300
    assert result.run is not None
    assert result.run.gate is not None
    assert result.run.gate.decision == "challenger"  # retrain.promote_to: a canary
    merged = pl.read_parquet(result.events_file)  # type: ignore[arg-type]
    assert merged.height >= 300
    assert int(merged["timestamp"].max()) == cutoff + 60 + 299

    registry = ModelRegistry.from_config(config)
    assert registry.by_alias(CHAMPION).version == "1"  # type: ignore[union-attr]
    assert registry.by_alias(CHALLENGER).version == "2"  # type: ignore[union-attr]

    # live KPIs as the server exports them: the challenger's CTR is significantly higher
    metrics = ServeMetrics()
    for version, lists, clicks in (("1", 20_000, 2000), ("2", 12_000, 1680)):
        metrics.served_lists.labels("recommend", version).inc(lists)
        metrics.attributed_events.labels("click", version).inc(clicks)
        metrics.model_requests.labels("recommend", version, "champion").inc(lists)
    scraped = tmp_path / "metrics.txt"
    scraped.write_bytes(metrics.render())
    verdict = judge_canary(config, metrics_url=scraped.as_uri())
    assert verdict.decision == "promote"
    assert registry.by_alias(CHAMPION).version == "2"  # type: ignore[union-attr]
    assert registry.by_alias(CHALLENGER) is None
    decisions = (home / "canary" / "decisions.jsonl").read_text().splitlines()
    assert json.loads(decisions[-1])["decision"] == "promote"
    assert registry.get("2").tags["shelfwise.canary"].startswith("canary promote")
