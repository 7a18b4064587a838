"""publish: after the stages, turn a run's bundle into a version and decide its alias.

`publish_run` tracks the run in MLflow, registers the bundle, re-scores the new
version and the champion through the serving engine on the run's frozen test split
(`publish.rescore`), applies the gate's rules (`publish.gate`) and moves the
`champion` / `challenger` alias; `write_report` writes the run's report. The pipeline
calls this last; nothing lower imports it.
"""

from __future__ import annotations

from shelfwise.publish.gate import GateResult, RuleOutcome
from shelfwise.publish.release import Published, publish_run, write_report

__all__ = ["GateResult", "Published", "RuleOutcome", "publish_run", "write_report"]
