"""Features read in small batches equal features read in one (issue 13: bounded memory)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from shelfwise.config import ShelfwiseConfig, SplitConfig
from shelfwise.features.stage import build_features
from shelfwise.pipeline import run_pipeline


@pytest.mark.parametrize("method", ["time", "random", "leave_last_out"])
def test_small_batches_write_the_same_files(
    tiny_config: ShelfwiseConfig, tmp_path: Path, method: str
) -> None:
    config = tiny_config.model_copy(update={"split": SplitConfig(method=method)})  # type: ignore[arg-type]
    validate = run_pipeline(config, until="validate").run_dir / "validate"
    whole, batched = tmp_path / "whole", tmp_path / "batched"
    whole.mkdir()
    batched.mkdir()
    first = build_features(config, validate, whole, batch_rows=10**9)
    second = build_features(config, validate, batched, batch_rows=97)  # 8,000 events: 83 batches
    assert first.row_counts == second.row_counts
    names = sorted(path.name for path in whole.iterdir())
    assert names == sorted(path.name for path in batched.iterdir())
    assert any(name.endswith("_seq.npz") for name in names)
    for name in names:
        if name.endswith((".npz", ".json")):
            assert (whole / name).read_bytes() == (batched / name).read_bytes(), name
        else:
            assert pl.read_parquet(whole / name).equals(pl.read_parquet(batched / name)), name


def test_interactions_keep_their_published_types(tiny_config: ShelfwiseConfig) -> None:
    features = run_pipeline(tiny_config, until="features").run_dir / "features"
    schema = pl.read_parquet_schema(features / "interactions.parquet")
    assert schema == {
        "user_index": pl.Int64,
        "item_index": pl.Int64,
        "event_type": pl.String,
        "timestamp": pl.Int64,
        "weight": pl.Float32,
        "split": pl.String,
    }
    search = pl.read_parquet_schema(features / "search_events.parquet")
    assert search["split"] == pl.String
    assert search["user_index"] == pl.Int64
