from __future__ import annotations

import polars as pl
import pytest
import scipy.sparse as sp

from shelfwise.config import SplitConfig
from shelfwise.contracts import ROW_NUMBER, SPLIT, TIMESTAMP, USER_INDEX
from shelfwise.errors import DataError
from shelfwise.features import assign_split, sequences, target_matrix, weighted_matrix


def events(rows: list[tuple[int, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            USER_INDEX: [u for u, _ in rows],
            TIMESTAMP: [t for _, t in rows],
            ROW_NUMBER: list(range(len(rows))),
        },
        schema={USER_INDEX: pl.Int64, TIMESTAMP: pl.Int64, ROW_NUMBER: pl.Int64},
    )


def test_time_split_is_strictly_ordered() -> None:
    frame = events([(0, t) for t in range(100)] + [(1, t) for t in range(0, 100, 2)])
    result, info = assign_split(frame, SplitConfig(test_fraction=0.2, valid_fraction=0.1))
    by_split = {
        name: result.filter(pl.col(SPLIT) == name)[TIMESTAMP] for name in ("train", "valid", "test")
    }
    assert by_split["train"].max() < by_split["valid"].min()  # type: ignore[operator]
    assert by_split["valid"].max() < by_split["test"].min()  # type: ignore[operator]
    assert sum(info.counts.values()) == frame.height
    assert info.test_cutoff is not None
    assert info.valid_cutoff is not None


def test_time_split_ties_stay_on_the_earlier_side() -> None:
    frame = events([(0, 10)] * 8 + [(0, 20)] * 2)
    result, _ = assign_split(frame, SplitConfig(test_fraction=0.5, valid_fraction=0.0))
    # the cutoff lands on 10: all eight events at t=10 stay in train
    assert result.filter(pl.col(TIMESTAMP) == 10)[SPLIT].unique().to_list() == ["train"]
    assert result.filter(pl.col(TIMESTAMP) == 20)[SPLIT].unique().to_list() == ["test"]


def test_time_split_without_valid() -> None:
    frame = events([(0, t) for t in range(10)])
    result, info = assign_split(frame, SplitConfig(test_fraction=0.3, valid_fraction=0.0))
    assert info.counts["valid"] == 0
    assert info.counts["test"] == 3


def test_leave_last_out() -> None:
    # user 0: 4 events (last test, one before valid); user 1: 2 events (too few: all train)
    frame = events([(0, 5), (0, 1), (0, 9), (0, 3), (1, 1), (1, 2)])
    result, info = assign_split(frame, SplitConfig(method="leave_last_out", min_user_events=3))
    user0 = result.filter(pl.col(USER_INDEX) == 0).sort(TIMESTAMP)[SPLIT].to_list()
    assert user0 == ["train", "train", "valid", "test"]
    assert result.filter(pl.col(USER_INDEX) == 1)[SPLIT].unique().to_list() == ["train"]
    assert info.counts == {"train": 4, "valid": 1, "test": 1}


def test_leave_last_out_breaks_time_ties_by_input_order() -> None:
    frame = events([(0, 1), (0, 1), (0, 1)])
    result, _ = assign_split(frame, SplitConfig(method="leave_last_out"))
    assert result.sort(ROW_NUMBER)[SPLIT].to_list() == ["train", "valid", "test"]


def test_weighted_matrix_sums_repeats_and_targets_drop_seen_items() -> None:
    frame = pl.DataFrame(
        {
            "user_index": [0, 0, 0, 1, 1],
            "item_index": [0, 0, 1, 2, 1],
            "weight": [1.0, 5.0, 1.0, 3.0, 1.0],
            "split": ["train", "train", "test", "train", "test"],
        }
    )
    train = weighted_matrix(frame, 2, 3, splits=("train",))
    assert train.toarray().tolist() == [[6.0, 0.0, 0.0], [0.0, 0.0, 3.0]]
    # user 0 already has item 1 in its history: its test target must go
    history = sp.csr_matrix(train.toarray() + [[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    targets = target_matrix(frame, history, split="test")
    assert targets.toarray().tolist() == [[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]


def test_random_split_follows_recbole_counts_and_is_seeded() -> None:
    # 10 events -> 8/1/1; 3 events -> int(0.3)=0 each, then RecBole's rounding moves one
    # event to test (train keeps 2 > 1) and one to valid only while train keeps more than 1.
    frame = events([(0, t) for t in range(10)] + [(1, t) for t in range(3)])
    config = SplitConfig(method="random", test_fraction=0.1, valid_fraction=0.1)
    result, info = assign_split(frame, config, seed=5)
    per_user = result.group_by(USER_INDEX, SPLIT).len().sort(USER_INDEX, SPLIT).rows()
    assert per_user == [
        (0, "test", 1),
        (0, "train", 8),
        (0, "valid", 1),
        (1, "test", 1),
        (1, "train", 1),
        (1, "valid", 1),
    ]
    again, _ = assign_split(frame, config, seed=5)
    assert again[SPLIT].to_list() == result[SPLIT].to_list()
    other, _ = assign_split(frame, config, seed=6)
    assert other[SPLIT].to_list() != result[SPLIT].to_list()
    assert sum(info.counts.values()) == frame.height


def test_given_split_uses_the_column_and_explains_gaps() -> None:
    frame = events([(0, 1), (0, 2), (0, 3)]).with_columns(
        pl.Series(SPLIT, ["train", "valid", "test"])
    )
    result, info = assign_split(frame, SplitConfig(method="given"))
    assert result[SPLIT].to_list() == ["train", "valid", "test"]
    assert info.counts == {"train": 1, "valid": 1, "test": 1}
    broken = frame.with_columns(pl.Series(SPLIT, ["train", None, "test"]))
    with pytest.raises(DataError, match="1 of 3 events have no split value"):
        assign_split(broken, SplitConfig(method="given"))
    with pytest.raises(DataError, match="no split column"):
        assign_split(frame.drop(SPLIT), SplitConfig(method="given"))


def test_time_decay_halves_weight_per_half_life() -> None:
    day = 86400
    frame = pl.DataFrame(
        {
            "user_index": [0, 0, 0],
            "item_index": [0, 1, 2],
            "weight": [4.0, 4.0, 4.0],
            "split": ["train"] * 3,
            "timestamp": [10 * day, 8 * day, 6 * day],
        }
    )
    matrix = weighted_matrix(frame, 1, 3, splits=("train",), half_life_days=2.0)
    assert matrix.toarray().tolist() == [[4.0, 2.0, 1.0]]


def test_sequences_keep_time_order_per_user() -> None:
    frame = pl.DataFrame(
        {
            "user_index": [0, 0, 1, 1, 1],
            "item_index": [5, 3, 1, 2, 1],
            "weight": [1.0, 0.0, 1.0, 1.0, 1.0],  # a zero-weight event is not a step
            "split": ["train", "train", "train", "train", "test"],
        }
    )
    train = sequences(frame, 3, splits=("train",))
    assert train.row(0).tolist() == [5]
    assert train.row(1).tolist() == [1, 2]
    assert train.row(2).tolist() == []
    full = sequences(frame, 3, splits=("train", "test"))
    assert full.row(1).tolist() == [1, 2, 1]
