"""The promotion gate on a shop of anonymous sessions (issue 15): what it measures, decides.

1. A generated shop whose visitors are anonymous: each event's user id is replaced by
   its visit's `session_id` (`shelfwise.sample.generate_shop`, then one user per
   session), so `split.method: auto` must choose the session split by itself (the plan's
   `split` row gives the numbers).
2. Run 1, the whole pipeline with the defaults (dense text search off) and `auto`:
   the first version; the gate re-scores its held-out sessions through the served
   session path (`publish.session_rescore`) and, with no champion, compares
   `session.mrr@20` / `session.hr@20` with the trivial rule ("the session's items
   again, then the items that followed them") on the same cases.
3. Run 2 on the same shop with a share of the visits only (`--keep`, seeded): a session
   model fitted on less data, judged against run 1's champion on run 2's test cases.

Prints JSON: the split choice, each run's gate decision, its session rules with both
numbers, and the seconds each run took.

`--shapes` instead runs ingest and validate of the shared datasets' example configs
(`examples/ml-100k.yaml`, `amazon-beauty.yaml`, `taobao-userbehavior.yaml`) and the
default generated shop, and prints what `split.method: auto` would choose for each, with
the numbers (`plan.split_choice`): shops whose users come back must keep their split.

Run: nice -n 19 .venv/bin/python benchmarks/gate_sessions.py [--visitors N] [--keep F]
     nice -n 19 .venv/bin/python benchmarks/gate_sessions.py --shapes
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl

from shelfwise.config import load_config
from shelfwise.pipeline import RunOutcome, run_pipeline
from shelfwise.plan import load_plan
from shelfwise.plan.split_choice import choose_split
from shelfwise.sample import generate_shop


def anonymous_shop(folder: Path, visitors: int, events: int) -> dict[str, str]:
    """The generated shop with one user id per visit (its session id); config paths."""
    shop = generate_shop(folder / "shop", users=visitors, items=1000, events=events, seed=7)
    frame = pl.read_parquet(shop.events_path)
    anonymous = frame.with_columns(pl.col("session_id").alias("raw_user_id"))
    out = folder / "events.parquet"
    anonymous.write_parquet(out)
    return {
        "data.catalog.path": str(shop.catalog_path),
        "data.events.path": str(out),
        "data.queries.path": str(shop.queries_path),
    }


def fewer_visits(paths: dict[str, str], folder: Path, keep: float) -> dict[str, str]:
    """The same shop with a seeded share `keep` of its visits."""
    frame = pl.read_parquet(paths["data.events.path"])
    visits = frame["session_id"].unique().sort().sample(fraction=keep, seed=11)
    out = folder / "events-fewer.parquet"
    frame.filter(pl.col("session_id").is_in(visits.implode())).write_parquet(out)
    return {**paths, "data.events.path": str(out)}


def run(home: Path, paths: dict[str, str]) -> tuple[RunOutcome, float]:
    """The whole pipeline (published: registered and gated) on `paths`."""
    config = load_config(
        None,
        environ={},
        overrides={
            "home": str(home),
            "project": "gate-sessions",
            **paths,
            "split.method": "auto",
            "evaluate.k_values": [10, 20],
            "models.dense.enabled": False,
        },
    )
    started = time.perf_counter()
    outcome = run_pipeline(config, use_cache=False)
    return outcome, round(time.perf_counter() - started, 1)


def summary(outcome: RunOutcome, seconds: float) -> dict[str, Any]:
    """The run's split row, gate decision, session rules and session metrics."""
    plan = load_plan(outcome.run_dir / "plan")
    split = next(choice.reason for choice in plan.stages if choice.name == "split")
    gate = outcome.gate
    if gate is None:
        return {"split": split, "seconds": seconds, "gate": None}
    challenger = gate.metrics.get("challenger") or {}
    return {
        "split": split,
        "seconds": seconds,
        "decision": gate.decision,
        "session_rules": [
            rule.message for rule in gate.rules if rule.metric.startswith("session.")
        ],
        "challenger": {k: round(v, 4) for k, v in challenger.items() if k.startswith("session.")},
        "champion": {
            k: round(v, 4)
            for k, v in (gate.metrics.get("champion") or {}).items()
            if k.startswith("session.")
        },
        "trivial_rule": {
            k: round(v, 4)
            for k, v in (gate.metrics.get("session_baseline") or {}).items()
            if k.endswith("@20")
        },
        "notes": gate.notes,
    }


ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ("ml-100k", "amazon-beauty", "taobao-userbehavior")


def shapes(scratch: Path) -> dict[str, Any]:
    """What `auto` chooses on each shared dataset and on the default generated shop."""
    shop = generate_shop(scratch / "generated", seed=42)  # `shelfwise generate`'s defaults
    sources: dict[str, tuple[Path | None, dict[str, Any]]] = {
        name: (ROOT / "examples" / f"{name}.yaml", {}) for name in EXAMPLES
    }
    sources["generated (defaults)"] = (
        None,
        {
            "data.catalog.path": str(shop.catalog_path),
            "data.events.path": str(shop.events_path),
            "data.queries.path": str(shop.queries_path),
        },
    )
    found: dict[str, Any] = {}
    for name, (source, paths) in sources.items():
        overrides = {"home": str(scratch / name), "split.method": "auto", **paths}
        config = load_config(source, environ={}, overrides=overrides)
        run_dir = run_pipeline(config, use_cache=False, until="validate").run_dir
        choice = choose_split(run_dir / "validate" / "events.parquet", config.split)
        found[name] = {
            "chosen": choice.method,
            "reason": choice.reason,
            "numbers": {k: round(v, 3) for k, v in choice.numbers.items()},
        }
    return found


def main() -> None:
    """Generate, run twice, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--visitors", type=int, default=2000, help="generated shoppers")
    parser.add_argument("--events", type=int, default=40_000, help="generated events")
    parser.add_argument("--keep", type=float, default=0.2, help="run 2: share of visits")
    parser.add_argument("--shapes", action="store_true", help="auto on the shared datasets")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="shelfwise-gate-sessions-"))
    if args.shapes:
        print(json.dumps(shapes(scratch), indent=1))
        return
    paths = anonymous_shop(scratch, args.visitors, args.events)
    first, first_seconds = run(scratch / "home", paths)
    second, second_seconds = run(scratch / "home", fewer_visits(paths, scratch, args.keep))
    print(
        json.dumps(
            {
                "shop": {"visitors": args.visitors, "events": args.events, "keep": args.keep},
                "run 1 (all visits)": summary(first, first_seconds),
                f"run 2 ({args.keep:.0%} of visits)": summary(second, second_seconds),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
