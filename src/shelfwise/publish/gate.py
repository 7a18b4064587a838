"""The promotion gate: should the new version replace the champion?

After a run registers its bundle (the challenger), both it and the current champion
are re-scored side by side on the run's frozen test split (`bundle_score`), and the
rules of `gate.rules` are checked:

- `min_delta: d`  challenger - champion >= d (skipped without a champion: no baseline);
- `max_delta: d`  challenger - champion <= d (the same, for lower-is-better metrics);
- `max: m`        challenger <= m;
- `min: m`        challenger >= m.

Latency rules (`p50_latency_ms`, `p99_latency_ms`) are checked like any other metric;
lower is better for them, so write them with `max`. The default rules also check search
when labelled queries exist: `search.full.ndcg@10` (full-catalog retrieval through the
served search, the same number as `search.ndcg@10`) and `search.p99_latency_ms`
(at most 50 ms above the champion's, both timed side by side). On a session split
they also check the session model as served: `session.mrr@20` and `session.hr@20` of
the held-out sessions through `/v1/recommend`'s inline-history path
(`publish.session_rescore`), against the champion's; without a champion, against the
protocol's trivial rule ("the session's items again, then their followers") on the same
cases, so a first session model worse than that rule is refused (issue 15).
Decisions:

============== ===================================================================
first-champion no champion yet; the absolute rules pass → the version becomes champion
promoted       every rule passes → champion (`gate.on_pass: champion`, the default)
challenger     every rule passes → challenger only (`gate.on_pass: challenger`), or
               with a champion no quality rule could be checked (only size or latency
               measured): never promoted on those alone
refused        a rule fails → challenger alias, the champion stays; `shelfwise run`
               exits with `EXIT_GATE` (5)
unchanged      the run produced the champion's exact bundle (same fingerprint)
skipped        `gate.enabled: false` → the version becomes champion unchecked
============== ===================================================================

Everything is written to `runs/<run_id>/gate/gate.json` for the report and the CLI.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from shelfwise._internal.artifacts import atomic_write_text
from shelfwise.config import GATE_METRIC, GateRule, ShelfwiseConfig
from shelfwise.errors import ShelfwiseError

_log = logging.getLogger(__name__)
GATE_DIR: Final = "gate"
GATE_FILE: Final = "gate.json"
QUALITY_GUARD: Final = "quality"  # the outcome added when no quality rule was checked
NOT_QUALITY: Final = frozenset(
    {
        "bundle_mb",
        "p50_latency_ms",
        "p99_latency_ms",
        "search.p50_latency_ms",
        "search.p99_latency_ms",
        "session.p50_latency_ms",
        "session.p99_latency_ms",
    }
)
SESSION_PREFIX: Final = "session."  # the session protocol's metrics (`session_rescore`)


@dataclass(frozen=True)
class RuleOutcome:
    """One rule checked on one metric."""

    metric: str
    rule: str  # "min_delta" | "max_delta" | "max" | "min" | "measured"
    threshold: float
    challenger: float | None
    champion: float | None
    delta: float | None
    passed: bool
    skipped: bool
    message: str


@dataclass
class GateResult:
    """What the gate decided and every number behind it (the `gate.json` schema)."""

    decision: str
    challenger: dict[str, str]
    champion: dict[str, str] | None
    rules: list[RuleOutcome]
    metrics: dict[str, dict[str, float] | None]
    latency_ms: dict[str, list[float]]
    k_values: list[int]
    curves: dict[str, dict[str, dict[str, float]]]
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True unless the gate refused the version."""
        return self.decision != "refused"

    def failures(self) -> list[RuleOutcome]:
        """The rules that failed."""
        return [rule for rule in self.rules if not rule.passed]

    def to_json(self) -> dict[str, Any]:
        """The `gate.json` document."""
        return asdict(self)

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> GateResult:
        """A result from its `gate.json` document (`to_json`)."""
        values = dict(document)
        values["rules"] = [RuleOutcome(**rule) for rule in document.get("rules", [])]
        return cls(**values)

    def write(self, run_dir: Path) -> Path:
        """Write `run_dir/gate/gate.json`; return its path."""
        path = run_dir / GATE_DIR / GATE_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        # atomic: the report and the CLI never read a half-written decision
        atomic_write_text(path, json.dumps(self.to_json(), indent=2, sort_keys=True))
        return path


def read_gate(run_dir: Path) -> GateResult | None:
    """The decision recorded in `run_dir/gate/gate.json`; None when there is none or it is
    unreadable (a run interrupted before its gate; the gate then decides again)."""
    path = run_dir / GATE_DIR / GATE_FILE
    if not path.is_file():
        return None
    try:
        return GateResult.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, KeyError) as exc:
        _log.warning("gate: ignoring unreadable %s (%s)", path, exc)
        return None


def check_rules(
    rules: dict[str, GateRule],
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    *,
    baseline: dict[str, float] | None = None,
) -> list[RuleOutcome]:
    """Check every bound of every rule; a metric that was not measured is skipped.

    With a champion, when no quality rule (anything but size and latency) could be
    checked, a `QUALITY_GUARD` outcome is added: such a version is never promoted on
    size or latency alone (`decide` makes it a challenger). A search-only shop without
    events used to be promoted on `bundle_mb` alone (issue 16); a session-only shop was
    judged on size and on its visitors' NDCG from empty histories, never on its session
    model (issue 15: the `session.*` rules).

    Args:
        rules: metric -> rule.
        challenger: the challenger's re-scored metrics.
        champion: the champion's, or None without a champion.
        baseline: the session protocol's trivial rule on the same cases (`session.*`
            names): a `session.*` delta rule with no champion value compares with it.
    """
    challenger = _with_aliases(challenger)
    champion = None if champion is None else _with_aliases(champion)
    outcomes: list[RuleOutcome] = []
    for metric, rule in sorted(rules.items()):
        bounds = [
            (kind, value)
            for kind, value in (
                ("min_delta", rule.min_delta),
                ("max_delta", rule.max_delta),
                ("max", rule.max),
                ("min", rule.min),
            )
            if value is not None
        ]
        for kind, threshold in bounds:
            against_baseline = (
                baseline is not None
                and metric.startswith(SESSION_PREFIX)
                and kind in ("min_delta", "max_delta")
                and (champion is None or metric not in champion)
                and metric in baseline
            )
            if against_baseline and baseline is not None:
                outcomes.append(_check_baseline(metric, kind, threshold, challenger, baseline))
            else:
                outcomes.append(_check(metric, kind, threshold, challenger, champion))
    quality = [o for o in outcomes if o.metric not in NOT_QUALITY]
    if champion is not None and not any(not o.skipped for o in quality):
        outcomes.append(
            RuleOutcome(
                QUALITY_GUARD,
                "measured",
                1.0,
                None,
                None,
                None,
                passed=True,
                skipped=True,
                message="no quality rule could be checked on this run ("
                + (", ".join(sorted({o.metric for o in quality})) or "none configured")
                + " not measured): not promoted on size or latency alone, kept as "
                "challenger; add labelled queries or events with a test period",
            )
        )
    return outcomes


def _with_aliases(metrics: dict[str, float]) -> dict[str, float]:
    """`search.full.<m>` for every `search.<m>` quality metric (re-scored full-catalog)."""
    aliases = {
        "search.full." + name.removeprefix("search."): value
        for name, value in metrics.items()
        if name.startswith("search.") and name not in NOT_QUALITY
    }
    return {**aliases, **metrics}


def _check(
    metric: str,
    kind: str,
    threshold: float,
    challenger: dict[str, float],
    champion: dict[str, float] | None,
) -> RuleOutcome:
    new = challenger.get(metric)
    old = None if champion is None else champion.get(metric)

    def outcome(passed: bool, message: str, *, skipped: bool = False) -> RuleOutcome:
        delta = None if new is None or old is None else new - old
        return RuleOutcome(metric, kind, threshold, new, old, delta, passed, skipped, message)

    if new is None:
        return outcome(True, f"{metric} is not measured on this run: rule skipped", skipped=True)
    if kind == "max":
        ok = new <= threshold
        return outcome(ok, f"{metric} {new:.4g} {'<=' if ok else '>'} max {threshold:g}")
    if kind == "min":
        ok = new >= threshold
        return outcome(ok, f"{metric} {new:.4g} {'>=' if ok else '<'} min {threshold:g}")
    if champion is None:
        return outcome(True, f"no champion to compare {metric} with: rule skipped", skipped=True)
    if old is None:
        return outcome(
            True, f"the champion has no {metric} on this split: rule skipped", skipped=True
        )
    delta = new - old
    ok = delta >= threshold if kind == "min_delta" else delta <= threshold
    sign = (">=" if ok else "<") if kind == "min_delta" else ("<=" if ok else ">")
    return outcome(
        ok,
        f"{metric}: challenger {new:.4f} vs champion {old:.4f}, delta {delta:+.4f} "
        f"{sign} {kind} {threshold:+g}",
    )


def _check_baseline(
    metric: str,
    kind: str,
    threshold: float,
    challenger: dict[str, float],
    baseline: dict[str, float],
) -> RuleOutcome:
    """A `session.*` delta rule without a champion: against the trivial rule's value."""
    new, old = challenger.get(metric), baseline[metric]
    if new is None:
        return RuleOutcome(
            metric, kind, threshold, None, None, None, True, True,
            f"{metric} is not measured on this run: rule skipped",
        )  # fmt: skip
    delta = new - old
    ok = delta >= threshold if kind == "min_delta" else delta <= threshold
    sign = (">=" if ok else "<") if kind == "min_delta" else ("<=" if ok else ">")
    return RuleOutcome(
        metric, kind, threshold, new, None, delta, ok, False,
        f"{metric}: challenger {new:.4f} vs {old:.4f} of the trivial rule (the session's "
        f"items again, then their followers; no champion yet), delta {delta:+.4f} {sign} "
        f"{kind} {threshold:+g}",
    )  # fmt: skip


def gate_k_values(config: ShelfwiseConfig) -> list[int]:
    """The cut-offs to score users and queries at: `evaluate.k_values` plus any K a
    (non-session) rule names."""
    ks = set(config.evaluate.k_values)
    for name in config.gate.rules:
        if GATE_METRIC.fullmatch(name) and "@" in name and not name.startswith(SESSION_PREFIX):
            ks.add(int(name.rsplit("@", 1)[1]))
    return sorted(ks)


def session_k_values(config: ShelfwiseConfig) -> list[int]:
    """The cut-offs to score held-out sessions at: `evaluate.k_values` plus any K a
    `session.*` rule names."""
    ks = set(config.evaluate.k_values)
    for name in config.gate.rules:
        if name.startswith(SESSION_PREFIX) and "@" in name:
            ks.add(int(name.rsplit("@", 1)[1]))
    return sorted(ks)


def decide(
    config: ShelfwiseConfig,
    rules: list[RuleOutcome],
    *,
    has_champion: bool,
) -> str:
    """The decision for checked rules (see the module table)."""
    if any(not rule.passed for rule in rules):
        return "refused"
    if not has_champion:
        return "first-champion"
    if any(rule.metric == QUALITY_GUARD for rule in rules):
        return "challenger"  # nothing but size or latency was checked
    return "promoted" if config.gate.on_pass == "champion" else "challenger"


def score_versions(
    config: ShelfwiseConfig,
    run_dir: Path,
    challenger_path: Path,
    champion_path: Path | None,
) -> tuple[dict[str, Any], dict[str, Any] | None, list[str]]:
    """Re-score the challenger (and champion) bundle on the run's frozen test split.

    On a session split the held-out sessions are scored too (`session.*` metrics, the
    served session path), and the challenger's result holds the trivial rule's numbers
    on the same cases under "baseline" (`session_rescore.baseline_metrics`).

    Returns:
        ({"metrics", "latencies", "curves", "baseline"} of the challenger, the same (with
        "baseline" None) for the champion or None, notes on anything not scored).
    """
    from shelfwise.compute import open_executor
    from shelfwise.package import read_repeat_policy
    from shelfwise.publish.rescore import folder_bytes, load_frozen_test, score_bundle
    from shelfwise.publish.session_rescore import (
        allows_repeats,
        baseline_metrics,
        load_frozen_sessions,
        score_sessions,
    )
    from shelfwise.runtime.engine import load_engine

    notes: list[str] = []
    features = run_dir / "features"
    test = load_frozen_test(
        features,
        test_history=config.evaluate.test_history,
        max_users=config.gate.max_users,
        max_queries=config.gate.max_queries,
        seed=config.seed,
        relevance_offset=config.evaluate.relevance_offset,
        # either bundle listing seen items: both are scored with repeat targets counted
        repeats=any(
            read_repeat_policy(path) == "allow"
            for path in (challenger_path, champion_path)
            if path is not None
        ),
    )
    sessions = load_frozen_sessions(
        features,
        targets=config.split.session_targets,
        max_cases=config.gate.max_users,
        seed=config.seed,
    )
    if not test.users and not test.queries and not (sessions and sessions.n_cases):
        notes.append("the run has no test users or labelled queries: quality rules skipped")
    if sessions is not None and not sessions.n_cases:
        notes.append("the session split holds out no session of two or more events: "
                     "session rules skipped")  # fmt: skip
    ks, session_ks = gate_k_values(config), session_k_values(config)

    executor = open_executor(config.compute)  # user blocks as Ray tasks with engine ray

    def scored(path: Path, *, with_baseline: bool = False) -> dict[str, Any]:
        engine = load_engine(path, verify=True)
        score = score_bundle(
            engine, test, ks, bundle_bytes=folder_bytes(path), executor=executor, bundle_path=path
        )
        metrics, baseline = dict(score.metrics), None
        if sessions is not None and sessions.n_cases:
            allow = allows_repeats(config, engine)
            metrics.update(
                score_sessions(
                    engine,
                    sessions,
                    session_ks,
                    allow_repeats=allow,
                    executor=executor,
                    bundle_path=path,
                )
            )
            if with_baseline:
                baseline = baseline_metrics(
                    features,
                    sessions,
                    session_ks,
                    targets=config.split.session_targets,
                    allow_repeats=allow,
                )
        return {
            "metrics": metrics,
            "latencies": score.latencies_ms,
            "curves": score.curves,
            "baseline": baseline,
        }

    challenger = scored(challenger_path, with_baseline=True)
    champion = None
    if champion_path is not None:
        try:
            champion = scored(champion_path)
        except ShelfwiseError as exc:
            notes.append(f"the champion could not be scored ({exc.code}: {exc.message})")
            _log.warning("gate: champion not scored: %s", exc.message)
    return challenger, champion, notes
