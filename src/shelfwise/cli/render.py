"""Rich tables and lines the CLI prints: stage progress, metrics, model versions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from shelfwise.pipeline import StageEvent

if TYPE_CHECKING:
    from pathlib import Path

    from shelfwise.monitor import DriftReport
    from shelfwise.publish.gate import GateResult
    from shelfwise.registry import ModelVersion

_STATUS_STYLE = {
    "done": "[green]✓[/green]",
    "cached": "[cyan]↺[/cyan]",
    "resumed": "[cyan]↺[/cyan]",
}


def stage_line(console: Console, event: StageEvent) -> None:
    """Print one line per finished stage (starts show as a spinner, see `StageSpinner`)."""
    if event.status == "started":
        return
    mark = _STATUS_STYLE.get(event.status, "•")
    timing = f"{event.seconds:6.1f}s" if event.status == "done" else "     – "
    memory = f"{event.peak_memory_mb:7.0f} MB" if event.peak_memory_mb else "         "
    console.print(f" {mark} {event.stage:<10} {timing} {memory}  {event.summary}")


def metrics_table(metrics: dict[str, Any], k_values: list[int]) -> Table | None:
    """Recommendation metrics on the test split: one row per metric, one column per model.

    The served model is starred.
    """
    test: dict[str, dict[str, float]] = metrics.get("recommendation", {}).get("test", {})
    if not any(test.values()):
        return None
    selected = metrics.get("selected", {}).get("recommender")
    users = metrics.get("recommendation", {}).get("users", {}).get("test", 0)
    table = Table(title=f"Recommendation · test · {users:,} users", title_justify="left")
    table.add_column("metric")
    models = list(test)
    for model in models:
        table.add_column(f"★ {model}" if model == selected else model, justify="right")
    names = [f"{m}@{k}" for k in k_values for m in ("recall", "ndcg", "mrr", "hit", "precision")]
    names.append(f"coverage@{max(k_values)}")
    for name in names:
        table.add_row(name, *(f"{test[model].get(name, float('nan')):.4f}" for model in models))
    return table


def search_table(metrics: dict[str, Any], k_values: list[int]) -> Table | None:
    """Search metrics on labelled queries (rerank the judged items; full catalog)."""
    search: dict[str, dict[str, Any]] = metrics.get("search", {})
    if not search:
        return None
    models = list(search)
    queries = max(int(values.get("queries", 0)) for values in search.values())
    table = Table(title=f"Search · {queries:,} labelled queries", title_justify="left")
    table.add_column("metric")
    for model in models:
        table.add_column(model, justify="right")
    names = [f"ndcg@{k}" for k in k_values] + ["mrr"]
    for mode in ("rerank", "full"):
        for name in names:
            cells = [f"{search[m].get(mode, {}).get(name, float('nan')):.4f}" for m in models]
            table.add_row(f"{mode} {name}", *cells)
    return table


def gate_table(gate: GateResult) -> Table:
    """The promotion gate's rules: challenger vs champion, pass or fail."""
    champion = gate.champion["version"] if gate.champion else "none"
    table = Table(
        title=f"Promotion gate: version {gate.challenger['version']} vs champion {champion}"
    )
    for column in ("metric", "rule", "challenger", "champion", "delta", "result"):
        table.add_column(column)
    for rule in gate.rules:
        result = "skipped" if rule.skipped else ("pass" if rule.passed else "[red]FAIL[/red]")
        table.add_row(
            rule.metric,
            f"{rule.rule} {rule.threshold:g}",
            _number(rule.challenger),
            _number(rule.champion),
            "–" if rule.delta is None else f"{rule.delta:+.4f}",
            result,
        )
    return table


def registry_table(model_name: str, versions: list[ModelVersion]) -> Table:
    """`shelfwise models` with the registry: one row per registered version."""
    table = Table(title=f"Model {model_name}: versions (newest last)")
    for column in (
        "version", "aliases", "created (UTC)", "gate", "canary", "ndcg@10", "recall@20",
        "p99 ms", "data", "run",
    ):  # fmt: skip
        table.add_column(column)
    for version in versions:
        metrics = version.metrics
        table.add_row(
            version.version,
            ", ".join(version.aliases) or "–",
            version.created_at.strftime("%Y-%m-%d %H:%M"),
            version.tags.get("shelfwise.gate", "–"),
            version.tags.get("shelfwise.canary", "–").split(":")[0],
            _number(_first(metrics, "gate/challenger/ndcg_at_10", "headline/ndcg_at_10")),
            _number(_first(metrics, "gate/challenger/recall_at_20", "headline/recall_at_20")),
            _number(metrics.get("gate/challenger/p99_latency_ms"), digits=1),
            version.tags.get("shelfwise.data_fingerprint", "")[:12] or "–",
            version.run_id or "–",
        )
    return table


def alias_log_table(entries: list[dict[str, Any]]) -> Table:
    """The latest alias moves, oldest first."""
    table = Table(title="Alias history (latest moves)")
    for column in ("at (UTC)", "alias", "from", "to", "why"):
        table.add_column(column)
    for entry in entries:
        table.add_row(
            str(entry.get("at", "")),
            str(entry.get("alias", "")),
            str(entry.get("old") or "–"),
            str(entry.get("new") or "–"),
            str(entry.get("reason", "")),
        )
    return table


def _first(metrics: dict[str, float], *names: str) -> float | None:
    for name in names:
        if name in metrics:
            return metrics[name]
    return None


def _number(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def drift_table(report: DriftReport, log_dir: Path) -> Table:
    """`shelfwise monitor drift` for people."""
    colour = {"ok": "green", "warn": "yellow", "drift": "red"}.get(report.status, "white")
    table = Table(
        title=f"Drift: [{colour}]{report.status}[/{colour}] · {report.events:,} events, "
        f"{report.users:,} users in the window · {log_dir}"
    )
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("reading")
    rows = [
        ("item popularity PSI", report.item_psi, "< 0.1 stable, > 0.25 shifted"),
        ("score PSI (top-1)", report.score_psi, "< 0.1 stable, > 0.25 shifted"),
        ("unseen users", report.unseen_user_share, "share of active users"),
        ("unseen items", report.unseen_item_share, "share of events"),
        ("query OOV rate", report.query_oov_rate, "tokens not in the catalog text"),
    ]
    for name, value, reading in rows:
        table.add_row(name, "–" if value is None else f"{value:.4f}", reading)
    if report.catalog_added is not None:
        table.add_row(
            "catalog changes",
            f"+{report.catalog_added} / -{report.catalog_removed}",
            "items added / removed since training",
        )
    for reason in report.reasons:
        table.add_row("[yellow]why[/yellow]", "", reason)
    return table
