"""`shelfwise audience` end to end on the tiny audience bundle (issue 15)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from shelfwise.cli.main import app


def test_audience_command_writes_a_ranked_file(audience_bundle_path: Path, tmp_path: Path) -> None:
    items = tmp_path / "launch.csv"
    items.write_text("item_id\nsku-mouse\nsku-tea-gift\nsku-mouse\n")
    out = tmp_path / "users.parquet"
    args = ["audience", "--items", str(items), "--k", "2", "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--bundle", str(audience_bundle_path)])
    assert result.exit_code == 0, result.output
    written = pl.read_parquet(out)
    assert written.columns == ["raw_item_id", "rank", "raw_user_id", "score", "signal"]
    assert written["raw_item_id"].to_list() == ["sku-mouse"] * 2 + ["sku-tea-gift"] * 2
    assert written["raw_user_id"][0] == "u5"
    assert set(written.filter(pl.col("signal") == "content")["raw_user_id"]) == {"u3", "u4"}


def test_unknown_product_fails_with_its_name(audience_bundle_path: Path, tmp_path: Path) -> None:
    items = tmp_path / "launch.txt"
    items.write_text("sku-nope\n")
    out = tmp_path / "users.parquet"
    args = ["audience", "--items", str(items), "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--bundle", str(audience_bundle_path)])
    assert result.exit_code != 0
    assert "sku-nope" in result.output
    assert not out.exists()
    assert not list(tmp_path.glob("*.partial"))
