"""publish: after the stages, turn a run's bundle into a version and decide its alias.

`publish_run` registers the bundle in the store `registry.open_registry` picks (MLflow
or local; the run is tracked in MLflow when there is one), re-scores the new version
and the champion through the serving engine on the run's frozen test split
(`publish.rescore`), applies the gate's rules (`publish.gate`), moves the
`champion` / `challenger` alias and writes the run's report (`write_report`, which
warns instead of failing). The pipeline calls this last; nothing lower imports it.
"""

from __future__ import annotations

from shelfwise.publish.gate import GateResult, RuleOutcome
from shelfwise.publish.release import Published, publish_run, write_report

__all__ = ["GateResult", "Published", "RuleOutcome", "publish_run", "write_report"]
