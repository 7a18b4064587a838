"""`shelfwise plan`: the table and the `--json` document."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from shelfwise.cli.main import app
from shelfwise.config import ShelfwiseConfig


def _config_file(config: ShelfwiseConfig, tmp_path: Path) -> Path:
    path = tmp_path / "shelfwise.yaml"
    document = {
        "home": str(config.state_dir()),
        "data": config.model_dump(mode="json")["data"],
        "models": {"dense": {"cache_dir": str(config.models.dense.cache_dir)}},
    }
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def test_plan_json_has_the_shape_the_machine_and_a_row_per_stage_and_part(
    tiny_config: ShelfwiseConfig, tmp_path: Path
) -> None:
    path = _config_file(tiny_config, tmp_path)
    result = CliRunner().invoke(app, ["plan", "-c", str(path), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert set(document) >= {"run_id", "shape", "resources", "stages", "parts", "settings"}
    assert document["shape"]["n_items"] == 150
    assert {"memory_bytes", "cores"} <= set(document["resources"])
    row_keys = {"name", "kind", "enabled", "reason", "where", "seconds", "memory_mb", "measured"}
    for row in document["stages"] + document["parts"]:
        assert set(row) == row_keys
    assert {row["name"] for row in document["parts"]} >= {"item_knn", "sasrec", "bm25", "dense"}


def test_plan_table_names_every_stage(tiny_config: ShelfwiseConfig, tmp_path: Path) -> None:
    path = _config_file(tiny_config, tmp_path)
    result = CliRunner().invoke(app, ["plan", "-c", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in ("tune", "retrieval", "evaluate", "item_knn", "sasrec", "off by default"):
        assert name in result.output
