"""Report sections about what ships: search, gate, latency, bundle size, compression."""

from __future__ import annotations

from typing import Final

import numpy as np

from shelfwise.report import _plots
from shelfwise.report._bundle import BundleSizes
from shelfwise.report._html import (
    Markup,
    Num,
    escape,
    fmt,
    fmt_bytes,
    image,
    join,
    not_run,
    paragraph,
    signed,
    table,
)
from shelfwise.report._schemas import CompressionReport, GateReport
from shelfwise.report._search import SearchSummary

_DECISION_CLASS: Final = {"promoted": "pass", "first-champion": "pass", "refused": "fail"}
_LOWER_IS_BETTER: Final = ("latency", "_ms", "_mb", "bytes", "size", "loss")
_PERCENTILES: Final = (50, 90, 95, 99)


def _higher_is_better(metric: str) -> bool:
    return not any(marker in metric for marker in _LOWER_IS_BETTER)


def render_search(search: SearchSummary) -> Markup:
    """Variants (served one starred) and relevance by query bucket."""
    if search.status != "evaluated":
        return paragraph(f"Search not evaluated: {search.reason or search.status}.", "muted")
    parts: list[Markup] = [
        paragraph(
            f"Labels: {search.labels or '?'}; served {search.served or '?'} by "
            f"{search.select_metric or '?'}"
            + (f": {search.selection_reason}." if search.selection_reason else "."),
            "muted",
        )
    ]
    columns: list[tuple[str, str]] = []
    for mode in ("rerank", "full"):
        names = sorted(
            {name for v in search.variants.values() for name in (v.get(mode) or {})},
            key=lambda n: (n != "mrr", n.partition("@")[0], int(n.partition("@")[2] or 0)),
        )
        columns.extend((mode, name) for name in names)
    latency = search.latency_ms or {}
    rows = [
        (
            f"★ {variant}" if variant == search.served else variant,
            values.get("queries"),
            *((values.get(mode) or {}).get(name) for mode, name in columns),
            latency.get(variant),
        )
        for variant, values in search.variants.items()
    ]
    parts.append(
        table(
            ("variant", "queries", *(f"{mode} {name}" for mode, name in columns), "ms/query"),
            rows,
            caption="rerank: order each query's judged items; full: retrieve from the catalog",
        )
    )
    parts.append(Markup("<h3>Relevance by query bucket</h3>"))
    if search.buckets:
        variants = list(search.buckets[0].values)
        parts.append(
            table(
                ("dimension", "bucket", "queries", *variants),
                [
                    (row.dimension, row.bucket, row.queries, *row.values.values())
                    for row in search.buckets
                ],
                caption=f"mean {search.bucket_metric} per bucket",
            )
        )
        panels = []
        for dimension in dict.fromkeys(row.dimension for row in search.buckets):
            mine = {row.bucket: row.values for row in search.buckets if row.dimension == dimension}
            panels.append(_plots.Bars(title=dimension, values=mine))
        parts.append(
            image(
                _plots.grouped_bars(panels, ylabel=search.bucket_metric or "ndcg@10"),
                "search relevance by query bucket",
            )
        )
    if search.buckets_note:
        parts.append(paragraph(search.buckets_note, "muted" if search.buckets else "not-run"))
    if search.worst:
        parts.append(Markup("<h3>Lowest-scoring queries of the served variant</h3>"))
        parts.append(table(("query", search.bucket_metric or "metric"), search.worst))
    return join(parts)


def render_gate(gate: GateReport) -> Markup:
    """The decision, both versions, every rule with both numbers, side-by-side metrics."""
    css = _DECISION_CLASS.get(gate.decision, "")
    challenger = gate.challenger
    champion = gate.champion
    parts = [
        Markup(f'<p><span class="badge {css}">{escape(gate.decision)}</span></p>'),
        table(
            ("", "version", "run"),
            [
                (
                    "challenger",
                    *((challenger.version, challenger.run_id) if challenger else ("–", None)),
                ),
                (
                    "champion",
                    *((champion.version, champion.run_id) if champion else ("none yet", None)),
                ),
            ],
        ),
    ]
    if gate.rules:
        rule_rows = [
            (
                rule.metric,
                rule.rule,
                rule.threshold,
                rule.challenger,
                rule.champion,
                signed(rule.delta, higher_is_better=_higher_is_better(rule.metric)),
                Markup(
                    f'<span class="{"pass" if rule.passed else "fail"}">'
                    f"{'pass' if rule.passed else 'FAIL'}</span>"
                ),
                rule.message,
            )
            for rule in gate.rules
        ]
        parts.append(Markup("<h3>Rules</h3>"))
        parts.append(
            table(
                (
                    "metric",
                    "rule",
                    "threshold",
                    "challenger",
                    "champion",
                    "delta",
                    "result",
                    "message",
                ),
                rule_rows,
            )
        )
    ours = gate.metrics.challenger
    theirs = gate.metrics.champion or {}
    if ours or theirs:
        rows: list[tuple[object, ...]] = []
        for name in sorted({*ours, *theirs}):
            new, old = ours.get(name), theirs.get(name)
            delta = new - old if new is not None and old is not None else None
            rows.append((name, new, old, signed(delta, higher_is_better=_higher_is_better(name))))
        parts.append(Markup("<h3>Side by side (same frozen test split)</h3>"))
        parts.append(table(("metric", "challenger", "champion", "delta"), rows))
    panels: dict[str, dict[str, dict[int, float]]] = {"NDCG@K": {}, "Recall@K": {}}
    for side, curves in gate.curves.items():
        panels["NDCG@K"][side] = {int(k): v for k, v in curves.ndcg.items() if k.isdigit()}
        panels["Recall@K"][side] = {int(k): v for k, v in curves.recall.items() if k.isdigit()}
    if any(series for panel in panels.values() for series in panel.values()):
        parts.append(
            image(
                _plots.metric_at_k(panels, highlight=["challenger"], title="(test)"),
                "NDCG@K and Recall@K, challenger vs champion",
            )
        )
    return join(parts)


def render_latency(gate: GateReport) -> Markup:
    """Percentiles per side and the histogram of per-request latency."""
    samples = {side: values for side, values in gate.latency_ms.items() if values}
    if not samples:
        return not_run("gate/gate.json has no latency samples")
    rows = []
    for side, values in samples.items():
        data = np.asarray(values, dtype=np.float64)
        rows.append(
            (
                side,
                int(data.size),
                Num(float(data.mean()), 2),
                *(Num(float(np.percentile(data, p)), 2) for p in _PERCENTILES),
                Num(float(data.max()), 2),
            )
        )
    return join(
        [
            table(
                ("model", "requests", "mean", *(f"p{p}" for p in _PERCENTILES), "max"),
                rows,
                caption="milliseconds per scored request",
            ),
            image(_plots.latency_histogram(samples), "latency histogram, challenger vs champion"),
        ]
    )


def render_bundle(bundle: BundleSizes) -> Markup:
    """Size per component (table and bar chart)."""
    total = bundle.total_bytes
    rows = [
        (
            component.name,
            ", ".join(component.roles) or None,
            component.files,
            fmt_bytes(component.size_bytes),
            component.size_bytes,
            f"{component.size_bytes / total:.1%}" if total else None,
        )
        for component in bundle.components
    ]
    rows.append(
        ("total", None, sum(c.files for c in bundle.components), fmt_bytes(total), total, None)
    )
    return join(
        [
            table(
                ("component", "serves", "files", "size", "bytes", "share"),
                rows,
                caption=bundle.path,
            ),
            image(
                _plots.size_bars({c.name: c.size_bytes for c in bundle.components}),
                "bundle size per component",
            ),
        ]
    )


def render_compression(report: CompressionReport) -> Markup:
    """Every variant of every model: size, ratio, quality, loss, latency, budget, kept."""
    if not report.components:
        return not_run("compress/compression.json lists no component")
    metric = report.primary_metric
    rows: list[tuple[object, ...]] = []
    points: list[_plots.TradeOffPoint] = []
    for name, component in sorted(report.components.items()):
        base = component.baseline
        kept = component.chosen == "baseline"
        rows.append(
            (
                name,
                "baseline",
                "–",
                fmt_bytes(base.size_bytes),
                Num(1.0, 1),
                base.metric,
                "0.00%",
                Num(base.latency_ms, 2),
                None,
                _kept(kept),
                "",
            )
        )
        if base.metric is not None:
            points.append(
                _plots.TradeOffPoint(name, "baseline", base.size_bytes, base.metric, True, kept)
            )
        for variant in component.variants:
            kept = variant.name == component.chosen
            within = variant.within_budget
            rows.append(
                (
                    name,
                    variant.name,
                    variant.kind,
                    fmt_bytes(variant.size_bytes),
                    Num(variant.compression_ratio, 1),
                    variant.metric,
                    f"{variant.relative_loss:.2%}" if variant.relative_loss is not None else None,
                    Num(variant.latency_ms, 2),
                    Markup(
                        f'<span class="{"pass" if within else "fail"}">{escape(fmt(within))}</span>'
                    )
                    if within is not None
                    else None,
                    _kept(kept),
                    variant.notes,
                )
            )
            if variant.metric is not None:
                points.append(
                    _plots.TradeOffPoint(
                        name, variant.name, variant.size_bytes, variant.metric, False, kept
                    )
                )
    parts = [
        table(
            (
                "model",
                "variant",
                "kind",
                "size",
                "ratio",
                metric,
                "relative loss",
                "latency ms",
                "within budget",
                "kept",
                "notes",
            ),
            rows,
            caption=_budget_caption(report, metric),
        )
    ]
    if points:
        parts.append(
            image(_plots.trade_off(points, metric=metric), "size vs quality of every variant")
        )
    return join(parts)


def _kept(kept: bool) -> Markup:
    return Markup('<span class="pass">★ kept</span>') if kept else Markup("")


__all__ = [
    "render_bundle",
    "render_compression",
    "render_gate",
    "render_latency",
    "render_search",
]


def _budget_caption(report: CompressionReport, metric: str) -> str:
    """Both budgets a kept variant meets: quality and latency (compress.max_latency_*)."""
    text = (
        f"budgets: at most {report.budget_relative:.1%} relative loss of {metric} on the "
        "validation split"
    )
    latency = report.latency_budget
    if latency.get("max_ratio") is not None:
        text += f", latency at most {latency['max_ratio']:g}× the baseline's"
        if latency.get("tolerance_ms"):
            text += f" (+{latency['tolerance_ms']:g} ms tolerance)"
    if latency.get("max_ms") is not None:
        text += f" and at most {latency['max_ms']:g} ms"
    return text + "; the smallest variant within both is kept"
