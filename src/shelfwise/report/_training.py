"""Report sections about data and training: run, data, validation, metrics, trials, click model."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shelfwise.report import _plots
from shelfwise.report._collect import ClickModel, DataSummary, ModelMetrics, RunInfo, Tuning
from shelfwise.report._html import (
    Markup,
    Num,
    details,
    escape,
    fmt,
    image,
    join,
    paragraph,
    signed,
    table,
)

_METRIC_ORDER = ("ndcg", "recall", "precision", "hit", "mrr", "map", "coverage", "avg_popularity")
_CLASSIFIER_COLUMNS = (
    "auc",
    "log_loss",
    "threshold",
    "precision",
    "recall",
    "f1",
    "rows",
    "positives",
    "positive_rate",
)


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "–"
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def render_run(info: RunInfo) -> Markup:
    """Run identity and the stage table (time, peak memory, reuse, summary)."""
    duration = None
    if info.started_at is not None and info.updated_at is not None:
        duration = Num(info.updated_at - info.started_at, 1)
    facts = table(
        ("run", "status", "started", "duration (s)", "model version", "code", "config hash"),
        [
            (
                info.run_id,
                info.status,
                _when(info.started_at),
                duration,
                info.bundle_version,
                info.code_version,
                (info.config_hash or "")[:12] or None,
            )
        ],
    )
    stages = table(
        ("stage", "seconds", "peak memory (MB)", "reused from", "summary"),
        [
            (
                row.stage,
                Num(row.seconds, 2),
                Num(row.peak_memory_mb, 0),
                row.reused_from,
                row.summary,
            )
            for row in info.stages
        ],
    )
    return join([facts, Markup("<h3>Stages</h3>"), stages])


def render_data(data: DataSummary) -> Markup:
    """Rows read per source and the prepared data's shape."""
    sources = table(
        ("source", "format", "rows read", "unparsable"),
        [(s.source, s.file_format, s.rows_read, s.parse_rejected) for s in data.sources],
    )
    parts = [sources]
    if data.shape:
        parts.append(Markup("<h3>Prepared data</h3>"))
        parts.append(table(list(data.shape), [list(data.shape.values())]))
    if data.split:
        split = {
            key: _when(float(value)) if key.endswith("cutoff") and value is not None else value
            for key, value in data.split.items()
        }
        parts.append(table([f"split {key}" for key in split], [list(split.values())]))
    if data.catalog_derived:
        parts.append(
            paragraph("The catalog was derived from the events (no catalog file).", "muted")
        )
    parts.extend(paragraph(f"warning: {warning}", "bad") for warning in data.warnings)
    return join(parts)


def render_validation(data: DataSummary) -> Markup:
    """Rows in = accepted + quarantined per source, and the quarantine reasons."""
    checked = [s for s in data.sources if s.rows_in is not None]
    if not checked:
        return paragraph("not run: validate/report.json not found", "not-run")
    threshold = data.max_rejected_share
    rows = []
    for source in checked:
        share = source.rejected_share
        over = threshold is not None and share is not None and share > threshold
        shown = Markup(f'<span class="{"fail" if over else ""}">{escape(fmt(share))}</span>')
        rows.append(
            (
                source.source,
                source.rows_in,
                source.accepted,
                source.quarantined,
                source.merged,
                shown,
            )
        )
    caption = None
    if threshold is not None:
        caption = f"a source stops the run above {threshold:.2%} rejected (data.max_rejected_share)"
    parts = [
        table(
            ("source", "rows in", "accepted", "quarantined", "merged", "rejected share"),
            rows,
            caption=caption,
        )
    ]
    reasons = [
        (source.source, reason, count)
        for source in checked
        for reason, count in sorted(source.by_reason.items(), key=lambda item: (-item[1], item[0]))
    ]
    parts.append(Markup("<h3>Quarantined by reason</h3>"))
    parts.append(
        table(("source", "reason", "rows"), reasons)
        if reasons
        else paragraph("No row was quarantined.", "muted")
    )
    return join(parts)


def _metric_key(name: str) -> tuple[int, int, str]:
    base, _, k = name.partition("@")
    order = _METRIC_ORDER.index(base) if base in _METRIC_ORDER else len(_METRIC_ORDER)
    return (order, int(k) if k.isdigit() else 0, name)


def render_metrics(metrics: ModelMetrics) -> Markup:
    """All models at each K on valid and test, then NDCG@K and Recall@K curves on test."""
    selected = str(metrics.selected.get("recommender", ""))
    primary = str(metrics.selected.get("primary_metric", ""))
    parts: list[Markup] = []
    if selected:
        parts.append(
            paragraph(
                f"Served: {selected} (best {primary} on {metrics.selected.get('split', 'valid')}, "
                f"{fmt(metrics.selected.get('value'))}). ★ marks it.",
                "muted",
            )
        )
    for split in ("valid", "test"):
        models = metrics.splits.get(split) or {}
        if not models:
            continue
        names = sorted({name for values in models.values() for name in values}, key=_metric_key)
        rows = [
            (f"★ {model}" if model == selected else model, *(values.get(n) for n in names))
            for model, values in sorted(models.items())
        ]
        users = metrics.users.get(split)
        parts.append(Markup(f"<h3>{escape(split)}</h3>"))
        parts.append(
            table(
                ("model", *names),
                rows,
                caption=f"{users:,} users" if users is not None else None,
            )
        )
    curves_split = "test" if metrics.splits.get("test") else "valid"
    models = metrics.splits.get(curves_split) or {}
    panels: dict[str, dict[str, dict[int, float]]] = {}
    for metric, title in (("ndcg", "NDCG@K"), ("recall", "Recall@K")):
        panels[title] = {
            model: {
                int(name.partition("@")[2]): value
                for name, value in values.items()
                if name.startswith(metric + "@") and name.partition("@")[2].isdigit()
            }
            for model, values in models.items()
        }
    if any(series for panel in panels.values() for series in panel.values()):
        parts.append(Markup("<h3>NDCG@K and Recall@K curves</h3>"))
        parts.append(
            image(
                _plots.metric_at_k(panels, highlight=[selected], title=f"({curves_split})"),
                f"NDCG@K and Recall@K of every model on {curves_split}",
            )
        )
    blend = metrics.blend
    if blend.get("candidates"):
        parts.append(
            paragraph(
                f"Blend of {', '.join(map(str, blend['candidates']))}: valid "
                f"{fmt(blend.get('valid_value'))} vs best single "
                f"{fmt(blend.get('best_single_valid_value'))}; "
                f"{'kept' if blend.get('kept') else 'not kept'}.",
                "muted",
            )
        )
    return join(parts)


def _params(params: dict[str, Any]) -> str:
    return (
        ", ".join(f"{key}={fmt(value, 4)}" for key, value in sorted(params.items())) or "defaults"
    )


def render_trials(tuning: Tuning) -> Markup:
    """Best result per family, a trials plot, and every trial (collapsed)."""
    metric = tuning.metric or "metric"
    parts: list[Markup] = []
    if tuning.best:
        rows = [
            (
                family,
                best.get("baseline_value"),
                best.get("value"),
                signed(_delta(best.get("value"), best.get("baseline_value"))),
                best.get("trials"),
                Num(_number(best.get("seconds")), 2),
                _params(dict(best.get("params") or {})),
            )
            for family, best in sorted(tuning.best.items())
        ]
        parts.append(
            table(
                ("family", "defaults", "best", "gain", "trials", "seconds", "best params"),
                rows,
                caption=f"{metric} on the validation split",
            )
        )
    series: dict[str, list[tuple[int, float]]] = {}
    for trial in tuning.trials:
        if trial.value is None:
            continue
        number = (
            0
            if trial.number == "baseline"
            else int(trial.number) + 1
            if trial.number.isdigit()
            else None
        )
        if number is not None:
            series.setdefault(trial.family, []).append((number, trial.value))
    if series:
        parts.append(image(_plots.trials(series, metric=metric), f"{metric} per AutoML trial"))
    rows_all = [
        (t.family, t.number, _params(t.params), t.value, Num(t.seconds, 3), t.state)
        for t in tuning.trials
    ]
    parts.append(
        details(
            f"All {len(tuning.trials)} trials",
            table(("family", "trial", "params", metric, "seconds", "state"), rows_all),
        )
    )
    return join(parts)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _delta(new: object, old: object) -> float | None:
    if isinstance(new, int | float) and isinstance(old, int | float):
        return float(new) - float(old)
    return None


def render_click_model(click: ClickModel) -> Markup:
    """Classifier metrics per model on test (and held-out users), ROC and PR curves."""
    parts: list[Markup] = [
        paragraph(
            f"Selected: {click.selected or '–'} on {click.retriever or '?'} candidates; "
            f"re-ranking {'on' if click.kept else 'off'}.",
            "muted",
        )
    ]
    rows = []
    for name, values in sorted(click.metrics.items()):
        label = f"★ {name}" if name == click.selected else name
        test = values.get("test", {})
        holdout = values.get("holdout", {})
        rows.append((label, *(test.get(c) for c in _CLASSIFIER_COLUMNS), holdout.get("auc")))
    parts.append(table(("model", *(f"test {c}" for c in _CLASSIFIER_COLUMNS), "holdout auc"), rows))
    if click.rerank_test:
        before = click.rerank_test.get("retriever", {})
        after = click.rerank_test.get("reranked", {})
        names = sorted(set(before) & set(after), key=_metric_key)
        parts.append(
            table(
                ("ranking on test", *names),
                [
                    ("retriever order", *(before[n] for n in names)),
                    ("click model order", *(after[n] for n in names)),
                    ("delta", *(signed(after[n] - before[n]) for n in names)),
                ],
            )
        )
    if click.curves:
        parts.append(
            image(
                _plots.roc_pr(click.curves, click.aucs, click.base_rate),
                "ROC and precision-recall curves of the click model on test users",
            )
        )
    else:
        parts.append(
            paragraph("No curve points (ranking/curves.json missing or one class).", "muted")
        )
    return join(parts)


__all__ = [
    "render_click_model",
    "render_data",
    "render_metrics",
    "render_run",
    "render_trials",
    "render_validation",
]
