"""Two runs, the gate at work, rollback, and serving the champion (real MLflow store)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml
from tests.conftest import shop_config
from typer.testing import CliRunner

from shelfwise.cli.main import app
from shelfwise.cli.models import resolve_bundle
from shelfwise.config import ShelfwiseConfig
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
    for name in (
        "item_knn",
        "user_knn",
        "ease",
        "gfcf",
        "rp3beta",
        "als",
        "bpr",
        "content",
        "buy_again",
        "tifu_knn",
    )
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


# --- kill -9 at every step of registry setup and publish (issue 14) ---------------------

# Runs `shelfwise run --resume` on a run whose stages are done, so that only publishing
# is left, and SIGKILLs itself at one step: a crash point ("publish:registered") or the
# N-th SQL statement ("sql:N") of MLflow's first setup. "record" kills nowhere and
# writes the steps it passed and the statements MLflow's setup made.
_KILLED_CHILD = """
import json, os, signal, sys
from pathlib import Path

import sqlalchemy
from sqlalchemy import event

from shelfwise._internal.artifacts import set_crash_hook
from shelfwise.config import ShelfwiseConfig
from shelfwise.pipeline import run_pipeline

config = ShelfwiseConfig.model_validate_json(Path(sys.argv[1]).read_text())
run_id, target, record = sys.argv[2], sys.argv[3], Path(sys.argv[4])
steps, statements = [], [0]

def hook(step):
    steps.append((step, statements[0]))
    if step == target:
        os.kill(os.getpid(), signal.SIGKILL)

@event.listens_for(sqlalchemy.engine.Engine, "after_cursor_execute")
def count(*args):
    statements[0] += 1
    if target == f"sql:{statements[0]}":
        os.kill(os.getpid(), signal.SIGKILL)

set_crash_hook(hook)
run_pipeline(config, resume=run_id)
record.write_text(json.dumps(steps))
"""

# After a kill: `shelfwise models` must work, then `shelfwise run --resume` must finish
# the job; prints the registry's final state as JSON.
_FINISH_AND_REPORT = """
import json, sys
from pathlib import Path

from typer.testing import CliRunner

from shelfwise.cli.main import app
from shelfwise.config import ShelfwiseConfig
from shelfwise.pipeline import run_pipeline
from shelfwise.registry import ModelRegistry, open_registry

config_file, run_id = Path(sys.argv[1]), sys.argv[2]
config = ShelfwiseConfig.model_validate_json(config_file.read_text())
listing = CliRunner().invoke(app, ["models", "--config", sys.argv[3]])
assert listing.exit_code == 0, listing.output
outcome = run_pipeline(config, resume=run_id)
registry = open_registry(config)
state = {
    "versions": [
        [v.version, list(v.aliases), v.fingerprint, v.tags.get("shelfwise.gate")]
        for v in registry.versions()
    ],
    "champions": registry.champion_stack(),
    "moves": [[m["alias"], m["old"], m["new"]] for m in registry.alias_log()],
    "gate": outcome.gate.decision if outcome.gate else None,
    "run": json.loads((outcome.run_dir / "run.json").read_text())["status"],
    "report": outcome.report_path is not None,
}
if isinstance(registry, ModelRegistry):
    runs = registry.client.search_runs([registry.experiment_id()])
    state["running"] = sorted(r.info.run_id for r in runs if r.info.status == "RUNNING")
print("STATE " + json.dumps(state, sort_keys=True))
"""


def _publish_cases(tmp_path: Path, config: ShelfwiseConfig) -> tuple[Path, Path, Path, str]:
    """One pipeline run up to `package`, kept as a template home to copy per case."""
    outcome = run_pipeline(config, until="package")
    home = config.state_dir()
    template = tmp_path / "template"
    shutil.copytree(home, template)
    config_json = tmp_path / "config.json"
    config_json.write_text(config.model_dump_json())
    config_yaml = tmp_path / "config.yaml"
    config_yaml.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    return template, config_json, config_yaml, outcome.run_id


def _fresh_home(home: Path, template: Path) -> None:
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(template, home)


def _run_child(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=600
    )


def _finish(config_json: Path, config_yaml: Path, run_id: str) -> dict[str, object]:
    done = _run_child(_FINISH_AND_REPORT, str(config_json), run_id, str(config_yaml))
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("STATE "))
    state: dict[str, object] = json.loads(line.removeprefix("STATE "))
    return state


def _kill_sweep(tmp_path: Path, config: ShelfwiseConfig, store_steps: set[str]) -> None:
    """Kill publishing at every step in turn; each time the state must end as without."""
    home = config.state_dir()
    template, config_json, config_yaml, run_id = _publish_cases(tmp_path, config)
    record = tmp_path / "steps.json"
    recorded = _run_child(_KILLED_CHILD, str(config_json), run_id, "record", str(record))
    assert recorded.returncode == 0, recorded.stderr[-3000:]
    steps = dict(json.loads(record.read_text()))
    publish = {"publish:registered", "publish:gate-recorded", "publish:aliases-moved"}
    assert publish | store_steps | {"publish:finished"} <= set(steps), steps
    expected = _finish(config_json, config_yaml, run_id)  # publishing done: nothing left
    _fresh_home(home, template)
    uninterrupted = _finish(config_json, config_yaml, run_id)
    assert uninterrupted == expected
    assert uninterrupted.get("running", []) == []
    assert uninterrupted["run"] == "complete"

    targets = list(steps)
    if "mlflow-setup:migrated" in steps:  # kill inside MLflow's own first setup too
        made = int(steps["mlflow-setup:migrated"])
        targets += [f"sql:{n}" for n in (1, made // 4, made // 2, 3 * made // 4, made)]
    for target in targets:
        _fresh_home(home, template)
        killed = _run_child(_KILLED_CHILD, str(config_json), run_id, target, str(record))
        assert killed.returncode == -signal.SIGKILL, (target, killed.stderr[-3000:])
        assert _finish(config_json, config_yaml, run_id) == uninterrupted, target


@pytest.mark.slow
@pytest.mark.timeout(1800)  # one child process per kill point: minutes, more under load
def test_a_kill_at_every_step_of_mlflow_setup_and_publish_is_recovered(
    tiny_shop: ShopSummary, tmp_path: Path
) -> None:
    config = shop_config(tiny_shop, tmp_path / "state", **FAST, **ONLY_POPULARITY)
    _kill_sweep(tmp_path, config, {"mlflow-setup:migrated", "publish:bundle-uploaded"})


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_a_kill_at_every_step_of_a_local_store_publish_is_recovered(
    tiny_shop: ShopSummary, tmp_path: Path
) -> None:
    store = tmp_path / "state" / "registry"
    config = shop_config(
        tiny_shop,
        tmp_path / "state",
        **FAST,
        **ONLY_POPULARITY,
        **{"registry.tracking_uri": str(store)},
    )
    _kill_sweep(tmp_path, config, {"local-store:staged", "local-store:published"})
