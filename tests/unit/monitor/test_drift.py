"""Drift measures against hand-computed values."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from shelfwise.monitor import Reference, measure, population_stability_index
from shelfwise.monitor.drift import query_oov_rate
from shelfwise.stores.event_log import read_event_log

REFERENCE = Reference(
    item_ids=["a", "b", "c", "d", "e"],
    user_ids={"u1", "u2", "u3"},
    item_counts=np.array([50.0, 30.0, 10.0, 5.0, 5.0]),
    vocabulary={"red", "dress", "连衣裙"},
)


def _events(
    items: list[str], users: list[str], queries: list[str | None] | None = None
) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "raw_user_id": users,
            "raw_item_id": items,
            "event_type": ["view"] * len(items),
            "timestamp": list(range(len(items))),
            "query": queries or [None] * len(items),
        },
        schema={
            "raw_user_id": pl.String,
            "raw_item_id": pl.String,
            "event_type": pl.String,
            "timestamp": pl.Int64,
            "query": pl.String,
        },  # fmt: skip
    )


def test_psi_is_zero_for_equal_shares_and_matches_the_formula() -> None:
    assert population_stability_index(np.array([1, 2, 3]), np.array([2, 4, 6])) == pytest.approx(0)
    ref, cur = np.array([0.5, 0.5]), np.array([0.9, 0.1])
    expected = (0.9 - 0.5) * math.log(0.9 / 0.5) + (0.1 - 0.5) * math.log(0.1 / 0.5)
    assert population_stability_index(ref, cur) == pytest.approx(expected)


def test_same_population_is_stable_and_a_new_one_is_drift() -> None:
    same = ["a"] * 50 + ["b"] * 30 + ["c"] * 10 + ["d"] * 5 + ["e"] * 5
    stable = measure(REFERENCE, _events(same, ["u1"] * 100), window=(0, 100), top_items=3)
    assert stable.item_psi == pytest.approx(0, abs=1e-6)
    assert stable.status == "ok"
    shifted = ["e"] * 60 + ["z"] * 40  # a niche item and one the bundle never saw
    users = ["u1"] * 50 + ["new"] * 50
    report = measure(REFERENCE, _events(shifted, users), window=(0, 100), top_items=3)
    assert report.item_psi is not None
    assert report.item_psi > 0.25
    assert report.unseen_item_share == pytest.approx(0.4)
    assert report.unseen_user_share == pytest.approx(0.5)
    assert report.status == "drift"
    assert any("item_psi" in reason for reason in report.reasons)


def test_query_out_of_vocabulary_rate_uses_the_search_tokenizer() -> None:
    rate = query_oov_rate(["red dress", "blue dress"], REFERENCE.vocabulary)
    assert rate == pytest.approx(1 / 4)
    assert query_oov_rate([], REFERENCE.vocabulary) is None


def test_event_log_window_and_partitions(tmp_path: Path) -> None:
    def write(partition: str, rows: list[dict[str, object]]) -> None:
        folder = tmp_path / partition
        folder.mkdir(parents=True)
        (folder / "events-1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    hour = 1_700_000_000 - 1_700_000_000 % 3600
    write(
        "date=2023-11-14/hour=00",
        [{"raw_user_id": "u", "raw_item_id": "old", "event_type": "view", "timestamp": 1}],
    )
    write(
        "date=2023-11-14/hour=22",
        [
            {"raw_user_id": "u", "raw_item_id": "a", "event_type": "view", "timestamp": hour},
            {"raw_user_id": "u", "raw_item_id": "b", "event_type": "cart", "timestamp": hour + 10,
             "query": "red", "request_id": "r1"},
        ],
    )  # fmt: skip
    events = read_event_log(tmp_path, since=hour, until=hour + 5)
    assert events["raw_item_id"].to_list() == ["a"]
    assert read_event_log(tmp_path, since=hour)["raw_item_id"].to_list() == ["a", "b"]
    assert read_event_log(tmp_path / "missing", since=0).height == 0
