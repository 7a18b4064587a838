"""The next-basket protocol: each user's last order is test, the one before valid."""

from __future__ import annotations

import polars as pl

from shelfwise.config import ShelfwiseConfig, SplitConfig
from shelfwise.contracts import EVENT_TYPE, ROW_NUMBER, SESSION_ID, SPLIT, TIMESTAMP, USER_INDEX
from shelfwise.features import assign_split

HOUR = 3600


def _events(rows: list[tuple[int, int, str, str | None]]) -> pl.DataFrame:
    """(user, timestamp, event type, session id) rows."""
    return pl.DataFrame(
        {
            USER_INDEX: [r[0] for r in rows],
            TIMESTAMP: [r[1] for r in rows],
            EVENT_TYPE: [r[2] for r in rows],
            SESSION_ID: [r[3] for r in rows],
            ROW_NUMBER: list(range(len(rows))),
        },
        schema={
            USER_INDEX: pl.Int64,
            TIMESTAMP: pl.Int64,
            EVENT_TYPE: pl.Categorical,
            SESSION_ID: pl.String,
            ROW_NUMBER: pl.Int64,
        },
    )


def _splits(result: pl.DataFrame) -> list[str]:
    return result.sort(ROW_NUMBER)[SPLIT].cast(pl.String).to_list()


def test_orders_by_session_id() -> None:
    day = 24 * HOUR
    frame = _events(
        [
            (0, 0, "purchase", "a"),
            (0, 10, "purchase", "a"),
            (0, day, "purchase", "b"),
            (0, 2 * day, "view", None),  # a view between orders: by time, after b's start
            (0, 3 * day, "purchase", "c"),
            (0, 3 * day + 5, "purchase", "c"),
            (1, 0, "purchase", "x"),  # two orders only: stays in train
            (1, day, "purchase", "y"),
        ]
    )
    result, info = assign_split(frame, SplitConfig(method="last_basket"))
    assert _splits(result) == [
        "train",
        "train",
        "valid",
        "valid",
        "test",
        "test",
        "train",
        "train",
    ]
    assert info.counts == {"train": 4, "valid": 2, "test": 2}


def test_orders_by_time_gap_without_session_id() -> None:
    frame = _events(
        [
            (0, 0, "purchase", None),
            (0, 60, "purchase", None),  # one minute later: the same order
            (0, 5 * HOUR, "purchase", None),
            (0, 10 * HOUR, "purchase", None),
            (0, 10 * HOUR + 30 * 60, "purchase", None),  # within the 60-minute gap
        ]
    )
    result, _ = assign_split(frame, SplitConfig(method="last_basket"))
    assert _splits(result) == ["train", "train", "valid", "test", "test"]
    wide, _ = assign_split(frame, SplitConfig(method="last_basket", basket_gap_minutes=600))
    assert set(_splits(wide)) == {"train"}  # one long order, then nothing: train only


def test_without_valid_two_orders_are_enough() -> None:
    frame = _events([(0, 0, "purchase", "a"), (0, 100, "purchase", "b")])
    result, info = assign_split(frame, SplitConfig(method="last_basket", valid_fraction=0.0))
    assert _splits(result) == ["train", "test"]
    assert info.method == "last_basket"


def test_features_keep_repeat_targets_apart_and_count_them(tiny_config: ShelfwiseConfig) -> None:
    from shelfwise._internal.artifacts import read_csr
    from shelfwise.pipeline import run_pipeline

    outcome = run_pipeline(tiny_config, until="features")
    features = outcome.run_dir / "features"
    counts = outcome.manifests["features"].extra["repeat_targets"]
    for split in ("valid", "test"):
        new_only = read_csr(features / f"{split}_targets.npz")
        every = read_csr(features / f"{split}_targets_all.npz")
        assert (new_only - new_only.multiply(every)).nnz == 0  # new targets are a subset
        assert every.nnz - new_only.nnz == counts[split]  # the repeats, counted
