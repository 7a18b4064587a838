"""Two runs, the gate at work, rollback, and serving the champion (real MLflow store)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from tests.conftest import shop_config
from typer.testing import CliRunner

from shelfwise.cli.main import app
from shelfwise.cli.models import resolve_bundle
from shelfwise.errors import EXIT_GATE
from shelfwise.package.bundle import read_bundle_manifest
from shelfwise.pipeline import run_pipeline
from shelfwise.registry import CHALLENGER, CHAMPION, LocalRegistry, ModelRegistry, open_registry
from shelfwise.runtime.engine import load_engine

if TYPE_CHECKING:
    from shelfwise.sample import ShopSummary

# Quick runs: no search re-ranker training or compression search needed here.
FAST = {"search.enabled": False, "compress.enabled": False}
ONLY_POPULARITY = {
    f"models.{name}.enabled": False
    for name in ("item_knn", "user_knn", "ease", "gfcf", "rp3beta", "als", "bpr", "content")
}


def test_gate_refuses_a_worse_model_and_rollback_restores_the_champion(
    tiny_shop: ShopSummary, tmp_path: Path
) -> None:
    home = tmp_path / "state"
    good = shop_config(tiny_shop, home, **FAST)
    first = run_pipeline(good)
    assert first.gate is not None
    assert first.gate.decision == "first-champion"
    gate_file = first.run_dir / "gate" / "gate.json"
    assert json.loads(gate_file.read_text())["decision"] == "first-champion"
    assert first.report_path is not None
    assert "Champion vs challenger" in first.report_path.read_text()
    assert first.bundle_path is not None
    _assert_no_pickle(first.bundle_path)

    # A deliberately worse model: popularity only, through the CLI (exit code 5).
    worse = shop_config(tiny_shop, home, **FAST, **ONLY_POPULARITY, **{"ranking.enabled": False})
    config_file = tmp_path / "worse.yaml"
    config_file.write_text(yaml.safe_dump(worse.model_dump(mode="json")))
    result = CliRunner().invoke(app, ["run", "--config", str(config_file)])
    assert result.exit_code == EXIT_GATE, result.output
    assert "refused by the promotion gate" in result.output
    assert "ndcg@10" in result.output

    registry = ModelRegistry.from_config(good)
    versions = {v.version: v for v in registry.versions()}
    assert set(versions) == {"1", "2"}
    assert versions["1"].aliases == (CHAMPION,)
    assert versions["2"].aliases == (CHALLENGER,)
    assert versions["2"].tags["shelfwise.gate"] == "refused"
    refused_run = versions["2"].run_id
    gate = json.loads((home / "runs" / refused_run / "gate" / "gate.json").read_text())
    ndcg = next(rule for rule in gate["rules"] if rule["metric"] == "ndcg@10")
    assert ndcg["passed"] is False
    assert ndcg["challenger"] < ndcg["champion"]  # re-scored side by side on one split

    # Override the gate, then roll back: serving follows the champion alias.
    promoted = CliRunner().invoke(app, ["promote", "2", "--config", str(config_file)])
    assert promoted.exit_code == 0, promoted.output
    assert _served_fingerprint(good) == versions["2"].fingerprint
    rolled = CliRunner().invoke(app, ["rollback", "--config", str(config_file)])
    assert rolled.exit_code == 0, rolled.output
    assert "2 → 1" in rolled.output
    assert _served_fingerprint(good) == versions["1"].fingerprint
    listing = CliRunner().invoke(app, ["models", "--config", str(config_file)])
    assert listing.exit_code == 0, listing.output
    assert "refused" in listing.output
    assert "manual rollback" in listing.output

    # Drift of recent events (the server's event log layout) from the champion's data.
    now = int(time.time())
    folder = home / "events" / time.strftime("date=%Y-%m-%d/hour=%H", time.gmtime(now))
    folder.mkdir(parents=True)
    rows = [
        {"raw_user_id": "someone-new", "raw_item_id": "not-in-the-catalog", "event_type": "view",
         "timestamp": now - 60, "query": "zzqx unknownword"},
    ] * 20  # fmt: skip
    (folder / "events-test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    drift = CliRunner().invoke(
        app, ["monitor", "drift", "--config", str(config_file), "--since", "1h", "--json"]
    )
    assert drift.exit_code == 0, drift.output
    report = json.loads(drift.stdout)
    assert report["events"] == 20
    assert report["unseen_item_share"] == 1.0
    assert report["unseen_user_share"] == 1.0
    assert report["query_oov_rate"] == 1.0
    assert report["catalog_added"] == 0
    assert report["status"] == "drift"

    # the drift trigger without Prometheus: `--retrain` runs the retrain at once
    triggered = CliRunner().invoke(
        app, ["monitor", "drift", "--config", str(config_file), "--since", "1h", "--retrain"]
    )
    assert triggered.exit_code == 0, triggered.output
    assert "retrain: ran" in triggered.output


def test_the_gate_works_the_same_on_the_local_store(tiny_shop: ShopSummary, tmp_path: Path) -> None:
    # a plain path picks the local store (as MLflow picks its file store): same gate
    home, store = tmp_path / "state", tmp_path / "registry"
    config = shop_config(tiny_shop, home, **FAST, **{"registry.tracking_uri": str(store)})
    first = run_pipeline(config)
    assert first.gate is not None
    assert first.gate.decision == "first-champion"
    assert first.bundle_path == store / "bundles" / "1"
    registry = open_registry(config)
    assert isinstance(registry, LocalRegistry)
    champion = registry.by_alias(CHAMPION)
    assert champion is not None
    assert (champion.version, champion.tags["shelfwise.gate"]) == ("1", "first-champion")
    assert champion.run_id == first.run_id
    assert not (home / "mlflow").exists()  # no MLflow run: tracking needs an MLflow store

    again = run_pipeline(config)  # every stage reused: the champion's exact bundle
    assert again.gate is not None
    assert again.gate.decision == "unchanged"
    assert [v.version for v in registry.versions()] == ["1"]


def _served_fingerprint(config: object) -> str:
    path = resolve_bundle(config, None, None)  # type: ignore[arg-type]
    engine = load_engine(path)  # verifies every file's hash
    assert engine.manifest.fingerprint == read_bundle_manifest(path).fingerprint
    return engine.manifest.fingerprint


_PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib", ".pt", ".pth", ".ckpt"}


def _assert_no_pickle(bundle: Path) -> None:
    """Nothing in a bundle may unpickle: no pickle files, no object arrays in .npy/.npz."""
    import numpy as np

    files = [path for path in bundle.rglob("*") if path.is_file()]
    assert files
    for path in files:
        assert path.suffix not in _PICKLE_SUFFIXES, path
        head = path.read_bytes()[:2]
        assert not (head[:1] == b"\x80" and head[1:2] in {b"\x02", b"\x03", b"\x04", b"\x05"}), path
        if path.suffix in {".npy", ".npz"}:
            loaded = np.load(path, allow_pickle=False)  # raises on pickled object arrays
            if hasattr(loaded, "files"):
                for name in loaded.files:
                    loaded[name]
                loaded.close()
