"""Rich tables and lines the CLI prints: stage progress, metrics, model versions."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from shelfwise.pipeline import StageEvent

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
    """Recommendation metrics on the test split, one row per model, the served one starred."""
    test: dict[str, dict[str, float]] = metrics.get("recommendation", {}).get("test", {})
    if not test:
        return None
    selected = metrics.get("selected", {}).get("recommender")
    users = metrics.get("recommendation", {}).get("users", {}).get("test", 0)
    table = Table(title=f"Recommendation, test split ({users:,} users, full ranking)")
    table.add_column("model")
    names = [f"{m}@{k}" for k in k_values for m in ("recall", "ndcg", "mrr", "hit", "precision")]
    names.append(f"coverage@{max(k_values)}")
    for name in names:
        table.add_column(name, justify="right")
    for model, values in test.items():
        label = f"★ {model}" if model == selected else f"  {model}"
        table.add_row(label, *(f"{values.get(name, float('nan')):.4f}" for name in names))
    return table


def search_table(metrics: dict[str, Any], k_values: list[int]) -> Table | None:
    """Search metrics on labelled queries, rerank and full-catalog modes."""
    search: dict[str, dict[str, Any]] = metrics.get("search", {})
    if not search:
        return None
    table = Table(title="Search, labelled queries")
    table.add_column("model")
    table.add_column("queries", justify="right")
    columns = [(mode, f"ndcg@{k}") for mode in ("rerank", "full") for k in k_values]
    columns += [("rerank", "mrr"), ("full", "mrr")]
    for mode, name in columns:
        table.add_column(f"{mode} {name}", justify="right")
    for model, values in search.items():
        cells = [f"{values.get(mode, {}).get(name, float('nan')):.4f}" for mode, name in columns]
        table.add_row(model, f"{values.get('queries', 0):,}", *cells)
    return table


def versions_table(rows: list[dict[str, Any]]) -> Table:
    """`shelfwise models`: one row per bundle version."""
    table = Table(title="Model versions (newest last)")
    for column in ("version", "created", "recommender", "search", "headline metrics", "path"):
        table.add_column(column)
    for row in rows:
        headline = ", ".join(f"{k} {v:.4f}" for k, v in row["headline"].items())
        table.add_row(
            str(row["version"]),
            row["created"],
            row["components"].get("recommender", "–"),
            row["components"].get("search", "–"),
            headline or "–",
            row["path"],
        )
    return table
