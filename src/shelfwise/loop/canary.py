"""`shelfwise canary judge`: promote or roll back the challenger on live numbers.

KPIs per model version come from the server's Prometheus metrics: served lists
(`shelfwise_serve_served_lists_total`), attributed clicks and purchases
(`shelfwise_serve_attributed_events_total`, events that carry a served `request_id`),
lists with at least one attributed click or purchase
(`shelfwise_serve_attributed_lists_total`), requests and errors
(`shelfwise_serve_model_requests_total`, `..._model_errors_total`),
and latency (`shelfwise_serve_model_duration_seconds`). Two sources:

- a Prometheus server (`canary.prometheus_url`): increases over `canary.window`,
  summed over every replica — the production way;
- one server's `/metrics` (`--metrics-url`): its counters since each version was loaded.

The tested rates are per-list Bernoulli shares: lists clicked (purchased from) over
lists served, whose variance p(1 − p) is exact. Clicks per list are not Bernoulli (a
list can get several clicks, and shoppers differ): their variance is larger than the
counts' test assumes (0.25 against 0.16 in `benchmarks/experiments.py --interleaving`),
which made it reach a false significant verdict 7% of the time at α = 0.05 under repeated
looks (tests/unit/loop/test_canary_overdispersion.py shows both). Clicks and purchases
per list stay in the report. Servers from before the list counter (no
`shelfwise_serve_attributed_lists_total` for a version that has clicks) are judged on
the counts as before, with a note in the verdict to upgrade them.

Verdict (`canary.*` settings): `wait` until each side served `min_lists` lists;
`rollback` when the challenger's CTR or conversion is significantly lower than the
champion's (the mixture SPRT of `shelfwise.experiments`: valid however often the
CronJob looks, wrong at most `alpha` of the time), its error rate is higher by more
than `max_error_rate_delta`, or its p99 latency is above `max_p99_ratio` × the
champion's; `promote` once the primary KPI (`primary_metric`) is significantly better
(or, with `non_inferiority_margin`, significantly no worse than that margin); `wait`
while neither is significant. Promote moves `champion` (servers following the registry swap);
rollback removes the `challenger` alias. Every verdict is recorded with its numbers:
the challenger's `shelfwise.canary` tag, the registry's alias history, and
`<home>/canary/decisions.jsonl`.
"""

from __future__ import annotations

import json
import math
import time
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from shelfwise.config import CanaryConfig, ShelfwiseConfig
from shelfwise.errors import MetricsUnavailableError, RegistryError
from shelfwise.experiments.sequential import SequentialResult, compare_rates

_LISTS: Final = "shelfwise_serve_served_lists"
_ATTRIBUTED: Final = "shelfwise_serve_attributed_events"
_ATTRIBUTED_LISTS: Final = "shelfwise_serve_attributed_lists"
_REQUESTS: Final = "shelfwise_serve_model_requests"
_ERRORS: Final = "shelfwise_serve_model_errors"
_DURATION: Final = "shelfwise_serve_model_duration_seconds"
# a verdict's last reason when the servers do not count lists clicked
OVERDISPERSION_NOTE: Final = (
    "over-dispersion not accounted for: upgrade the servers (no "
    "shelfwise_serve_attributed_lists_total from them, so events per list were tested with "
    "the Bernoulli variance, which understates the variance of clicks per list and makes "
    "false verdicts likelier than α)"
)


@dataclass(frozen=True)
class Kpis:
    """Live numbers of one model version."""

    lists: float = 0.0
    clicks: float = 0.0
    purchases: float = 0.0
    requests: float = 0.0
    errors: float = 0.0
    p99_seconds: float | None = None
    clicked_lists: float | None = None  # None: the servers do not count them (older)
    purchased_lists: float | None = None

    @property
    def ctr(self) -> float | None:
        """Attributed clicks per served list."""
        return self.clicks / self.lists if self.lists else None

    @property
    def conversion(self) -> float | None:
        """Attributed purchases per served list."""
        return self.purchases / self.lists if self.lists else None

    @property
    def clicked_share(self) -> float | None:
        """Lists with at least one attributed click per served list (the tested CTR)."""
        if self.clicked_lists is None or not self.lists:
            return None
        return self.clicked_lists / self.lists

    @property
    def purchased_share(self) -> float | None:
        """Lists with at least one attributed purchase per served list."""
        if self.purchased_lists is None or not self.lists:
            return None
        return self.purchased_lists / self.lists

    @property
    def error_rate(self) -> float | None:
        """Errors per answered or failed request."""
        total = self.requests + self.errors
        return self.errors / total if total else None


@dataclass
class Verdict:
    """A canary judgement and every number behind it."""

    decision: str  # "promote" | "rollback" | "wait"
    champion: str
    challenger: str
    kpis: dict[str, dict[str, Any]]
    reasons: list[str] = field(default_factory=list)
    at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def kpis_from_text(text: str) -> dict[str, Kpis]:
    """Per-version KPIs from one server's Prometheus text exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    totals: dict[str, dict[str, float]] = {}
    buckets: dict[str, dict[float, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            version = sample.labels.get("model_version")
            if version is None:
                continue
            slot = totals.setdefault(version, {})
            if sample.name == f"{_LISTS}_total":
                slot["lists"] = slot.get("lists", 0.0) + sample.value
            elif sample.name == f"{_ATTRIBUTED}_total":
                kind = {"click": "clicks", "purchase": "purchases"}.get(
                    sample.labels.get("event_type", "")
                )
                if kind:
                    slot[kind] = slot.get(kind, 0.0) + sample.value
            elif sample.name == f"{_ATTRIBUTED_LISTS}_total":
                kind = _LIST_KINDS.get(sample.labels.get("event_type", ""))
                if kind:
                    slot[kind] = slot.get(kind, 0.0) + sample.value
            elif sample.name == f"{_REQUESTS}_total":
                slot["requests"] = slot.get("requests", 0.0) + sample.value
            elif sample.name == f"{_ERRORS}_total":
                slot["errors"] = slot.get("errors", 0.0) + sample.value
            elif sample.name == f"{_DURATION}_bucket":
                bound = float(sample.labels["le"])
                per_version = buckets.setdefault(version, {})
                per_version[bound] = per_version.get(bound, 0.0) + sample.value
    return {
        version: Kpis(
            **_with_list_counts(values), p99_seconds=_quantile(buckets.get(version, {}), 0.99)
        )
        for version, values in totals.items()
    }


_LIST_KINDS: Final = {"click": "clicked_lists", "purchase": "purchased_lists"}


def _with_list_counts(values: dict[str, float]) -> dict[str, float]:
    """`values` with zero lists clicked (purchased) where nothing was clicked (bought).

    A labelled counter has no series until its first increment, so a missing list count
    means "none" only when the version has no such event either; with events and no
    list count, the servers predate the counter and it stays absent (None).
    """
    filled = dict(values)
    for events, lists in (("clicks", "clicked_lists"), ("purchases", "purchased_lists")):
        if lists not in filled and filled.get(events, 0.0) <= 0:
            filled[lists] = 0.0
    return filled


def kpis_from_prometheus(url: str, window: str) -> dict[str, Kpis]:
    """Per-version KPIs summed over replicas from a Prometheus server's query API."""

    def total(metric: str, labels: str = "") -> str:
        return f"sum by (model_version) (increase({metric}_total{labels}[{window}]))"

    queries = {
        "lists": total(_LISTS),
        "clicks": total(_ATTRIBUTED, '{event_type="click"}'),
        "purchases": total(_ATTRIBUTED, '{event_type="purchase"}'),
        "clicked_lists": total(_ATTRIBUTED_LISTS, '{event_type="click"}'),
        "purchased_lists": total(_ATTRIBUTED_LISTS, '{event_type="purchase"}'),
        "requests": total(_REQUESTS),
        "errors": total(_ERRORS),
        "p99_seconds": "histogram_quantile(0.99, sum by (model_version, le) "
        f"(rate({_DURATION}_bucket[{window}])))",
    }
    values: dict[str, dict[str, float]] = {}
    for name, query in queries.items():
        for version, value in _instant_query(url, query).items():
            if math.isfinite(value):
                values.setdefault(version, {})[name] = value
    # replicas of mixed ages during a rollout: lists served or clicked through an old
    # one are never counted as clicked, so both shares read low; each list is still one
    # Bernoulli trial and every replica serves both versions (the canary splits users),
    # so the test stays valid, only less powerful until the rollout ends
    return {version: Kpis(**_with_list_counts(numbers)) for version, numbers in values.items()}


def _instant_query(url: str, query: str) -> dict[str, float]:
    address = f"{url.rstrip('/')}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
    try:
        with urllib.request.urlopen(address, timeout=10) as response:  # noqa: S310 - operator URL
            body = json.loads(response.read())
    except (OSError, ValueError) as exc:
        raise MetricsUnavailableError(f"cannot query Prometheus at {url}: {exc}") from None
    if body.get("status") != "success":
        raise MetricsUnavailableError(f"Prometheus refused the query: {body.get('error')}")
    return {
        str(item["metric"].get("model_version", "")): float(item["value"][1])
        for item in body["data"]["result"]
    }


def fetch_text(url: str) -> str:
    """A server's /metrics text."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - operator URL
            return str(response.read().decode("utf-8"))
    except OSError as exc:
        raise MetricsUnavailableError(f"cannot read {url}: {exc}") from None


def judge(champion: Kpis, challenger: Kpis, rules: CanaryConfig) -> tuple[str, list[str]]:
    """The verdict for two versions' KPIs (see the module docstring).

    The primary KPI (`canary.primary_metric`) and the other rate are compared by the
    mixture SPRT (`shelfwise.experiments.sequential`), whose verdicts stay valid however
    often this runs; error rate and p99 are guardrails with fixed limits.
    """
    if champion.lists < rules.min_lists or challenger.lists < rules.min_lists:
        return "wait", [
            f"served lists: champion {champion.lists:.0f}, challenger {challenger.lists:.0f}; "
            f"each side needs {rules.min_lists}"
        ]
    reasons = _guardrails(champion, challenger, rules)
    tests = {name: _compare(champion, challenger, name, rules) for name in ("ctr", "conversion")}
    notes = (
        [OVERDISPERSION_NOTE] if any(per_list is False for _, per_list in tests.values()) else []
    )
    for name, (result, per_list) in tests.items():
        if result is not None and result.high < 0:  # significantly worse
            reasons.append(
                f"{name} {result.rate_b:.4f} < champion {result.rate_a:.4f}{_unit(name, per_list)}"
                f": lift {_lift(result)} (always-valid p = {result.p_value:.3g}, "
                f"α = {rules.alpha:g})"
            )
    if reasons:
        return "rollback", reasons + notes
    primary, per_list = tests[rules.primary_metric]
    if primary is None:
        return "wait", [f"no {rules.primary_metric} on the champion yet: nothing to compare"]
    unit = _unit(rules.primary_metric, per_list)
    margin = rules.non_inferiority_margin * primary.rate_a
    if primary.low > -margin:
        kind = "better" if margin == 0 else f"no worse than −{rules.non_inferiority_margin:.1%}"
        return "promote", [
            f"{rules.primary_metric} significantly {kind}: {primary.rate_b:.4f} vs "
            f"{primary.rate_a:.4f}{unit}, lift {_lift(primary)} (always-valid p = "
            f"{primary.p_value:.3g}, α = {rules.alpha:g}); guardrails hold",
            *notes,
        ]
    return "wait", [
        f"{rules.primary_metric} {primary.rate_b:.4f} vs {primary.rate_a:.4f}{unit}: lift "
        f"{_lift(primary)}, not yet significant at α = {rules.alpha:g} after "
        f"{primary.n:,} lists per side",
        *notes,
    ]


def _compare(
    champion: Kpis, challenger: Kpis, name: str, rules: CanaryConfig
) -> tuple[SequentialResult | None, bool]:
    """The sequential comparison of one rate, and whether it used the per-list counts.

    The result is None when neither side has an event yet.
    """
    events = {"ctr": "clicks", "conversion": "purchases"}[name]
    lists = {"ctr": "clicked_lists", "conversion": "purchased_lists"}[name]
    base_lists, new_lists = getattr(champion, lists), getattr(challenger, lists)
    per_list = base_lists is not None and new_lists is not None
    if per_list:  # one Bernoulli trial per list: p(1 - p) is its exact variance
        base, new = float(base_lists), float(new_lists)
    else:  # older servers: events per list, whose variance p(1 - p) understates
        base, new = getattr(champion, events), getattr(challenger, events)
    if base <= 0 and new <= 0:
        return None, per_list
    rate = max(base / champion.lists, 1.0 / champion.lists)
    result = compare_rates(
        base, champion.lists, new, challenger.lists, mde=rules.mde * rate, alpha=rules.alpha
    )
    return result, per_list


def _unit(name: str, per_list: bool) -> str:
    if not per_list:
        return ""
    return " (share of lists clicked)" if name == "ctr" else " (share of lists bought from)"


def _lift(result: SequentialResult) -> str:
    low, high = result.relative_low, result.relative_high
    if low is None or high is None:
        return f"{result.difference:+.4f} [{result.low:+.4f}, {result.high:+.4f}]"
    return f"{result.difference / result.rate_a:+.1%} [{low:+.1%}, {high:+.1%}]"


def _guardrails(champion: Kpis, challenger: Kpis, rules: CanaryConfig) -> list[str]:
    reasons: list[str] = []
    old_errors, new_errors = champion.error_rate or 0.0, challenger.error_rate or 0.0
    if new_errors > old_errors + rules.max_error_rate_delta:
        reasons.append(
            f"error rate {new_errors:.4f} > champion {old_errors:.4f} "
            f"+ {rules.max_error_rate_delta:g}"
        )
    if (
        champion.p99_seconds
        and challenger.p99_seconds
        and (challenger.p99_seconds > rules.max_p99_ratio * champion.p99_seconds)
    ):
        reasons.append(
            f"p99 {challenger.p99_seconds * 1000:.1f} ms > {rules.max_p99_ratio:g} × champion "
            f"{champion.p99_seconds * 1000:.1f} ms"
        )
    return reasons


def judge_canary(
    config: ShelfwiseConfig, *, metrics_url: str | None = None, apply: bool = True
) -> Verdict:
    """Judge the registry's challenger against its champion and act on the verdict.

    Raises:
        RegistryError: no champion or no challenger.
        MetricsUnavailableError: the KPI source cannot be read.
    """
    from shelfwise.registry import CHALLENGER, CHAMPION, open_registry

    registry = open_registry(config)
    champion, challenger = registry.by_alias(CHAMPION), registry.by_alias(CHALLENGER)
    if champion is None or challenger is None:
        raise RegistryError(
            "canary judgement needs a champion and a challenger; `shelfwise models` shows "
            "the aliases (`shelfwise retrain` makes a challenger)"
        )
    if config.canary.prometheus_url and metrics_url is None:
        kpis = kpis_from_prometheus(config.canary.prometheus_url, config.canary.window)
    elif metrics_url is not None:
        kpis = kpis_from_text(fetch_text(metrics_url))
    else:
        raise MetricsUnavailableError(
            "no KPI source: set canary.prometheus_url or pass --metrics-url http://server/metrics"
        )
    old, new = kpis.get(champion.version, Kpis()), kpis.get(challenger.version, Kpis())
    decision, reasons = judge(old, new, config.canary)
    verdict = Verdict(
        decision,
        champion.version,
        challenger.version,
        {
            side: {
                **asdict(k),
                "ctr": k.ctr,
                "conversion": k.conversion,
                "clicked_share": k.clicked_share,
                "purchased_share": k.purchased_share,
                "error_rate": k.error_rate,
            }
            for side, k in (("champion", old), ("challenger", new))
        },
        reasons,
    )
    if apply:
        _apply(config, registry, verdict)
    return verdict


def _apply(config: ShelfwiseConfig, registry: Any, verdict: Verdict) -> None:
    summary = f"canary {verdict.decision}: " + "; ".join(verdict.reasons)
    if verdict.decision == "promote":
        registry.promote(verdict.challenger, summary)
    elif verdict.decision == "rollback":
        registry.drop_challenger(summary)
    if verdict.decision != "wait":
        registry.set_tag(verdict.challenger, "shelfwise.canary", summary[:250])
    folder = config.state_dir() / "canary"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "decisions.jsonl").open("a", encoding="utf-8") as log:
        log.write(json.dumps(verdict.to_json()) + "\n")


def _quantile(buckets: dict[float, float], q: float) -> float | None:
    """Prometheus-style quantile from cumulative histogram buckets (linear within a bucket)."""
    if not buckets:
        return None
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower
            width = count - below
            return lower + (bound - lower) * ((rank - below) / width if width else 0.0)
        lower, below = bound, count
    return lower


__all__ = [
    "OVERDISPERSION_NOTE",
    "Kpis",
    "Verdict",
    "judge",
    "judge_canary",
    "kpis_from_prometheus",
    "kpis_from_text",
]
