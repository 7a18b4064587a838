"""The report's figures, drawn with matplotlib's object API and returned as base64 PNG.

No pyplot: each figure is a `Figure` on its own Agg canvas, so nothing touches global
state and the functions are safe to call from any thread. Text from run files (model
and query names) is passed through `_label` so a `$` never starts mathtext.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from shelfwise.report._html import fmt_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI: Final = 90
_COLOURS: Final = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#393b79",
    "#637939",
)


def _label(text: object) -> str:
    """Plain text for matplotlib: `$` escaped so no mathtext is parsed."""
    return str(text).replace("$", r"\$")


def _colour(index: int) -> str:
    return _COLOURS[index % len(_COLOURS)]


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Figure) -> str:
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def metric_at_k(
    panels: Mapping[str, Mapping[str, Mapping[int, float]]],
    *,
    highlight: Sequence[str] = (),
    title: str = "",
) -> str:
    """One panel per metric (e.g. NDCG@K, Recall@K), one line per model over K."""
    figure = _figure(5.0 * max(len(panels), 1), 4.2)
    names = sorted({name for series in panels.values() for name in series})
    for position, (metric, series) in enumerate(panels.items(), start=1):
        axes = figure.add_subplot(1, max(len(panels), 1), position)
        for index, name in enumerate(names):
            points = sorted(series.get(name, {}).items())
            if not points:
                continue
            strong = name in highlight
            axes.plot(
                [k for k, _ in points],
                [value for _, value in points],
                marker="o",
                color=_colour(index),
                linewidth=2.6 if strong else 1.2,
                label=_label(f"★ {name}" if strong else name),
            )
        ks = sorted({k for name in names for k in series.get(name, {})})
        if ks:
            axes.set_xticks(ks)
        axes.set_xlabel("K")
        axes.set_ylabel(_label(metric))
        axes.set_title(_label(f"{metric} {title}".strip()))
        axes.grid(alpha=0.3)
        if position == len(panels):
            axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return _png(figure)


def roc_pr(
    curves: Mapping[str, Mapping[str, Mapping[str, Sequence[float]]]],
    aucs: Mapping[str, float | None],
    base_rate: float | None,
) -> str:
    """ROC and precision-recall side by side, one line per model."""
    from shelfwise.evaluate.classifier import draw_curves

    figure = _figure(10.0, 4.4)
    panels = (("roc", "ROC (test users)"), ("pr", "Precision-recall (test users)"))
    for position, (kind, title) in enumerate(panels, start=1):
        axes = figure.add_subplot(1, 2, position)
        ordered = dict(sorted(curves.items()))
        draw_curves(axes, kind, ordered, aucs, base_rate, colour=_colour, label=_label, fontsize=7)
        axes.set_title(title)
    return _png(figure)


@dataclass(frozen=True)
class Bars:
    """Grouped bars of one panel: category -> series -> value."""

    title: str
    values: Mapping[str, Mapping[str, float | None]]


def grouped_bars(panels: Sequence[Bars], *, ylabel: str) -> str:
    """One panel per `Bars`, categories on x, one bar per series."""
    figure = _figure(4.2 * max(len(panels), 1), 3.8)
    series = sorted({name for panel in panels for row in panel.values.values() for name in row})
    width = 0.8 / max(len(series), 1)
    for position, panel in enumerate(panels, start=1):
        axes = figure.add_subplot(1, max(len(panels), 1), position)
        categories = list(panel.values)
        for index, name in enumerate(series):
            heights = [panel.values[category].get(name) or 0.0 for category in categories]
            offsets = [c + (index - (len(series) - 1) / 2) * width for c in range(len(categories))]
            axes.bar(offsets, heights, width=width, color=_colour(index), label=_label(name))
        axes.set_xticks(range(len(categories)), [_label(c) for c in categories])
        axes.set_title(_label(panel.title))
        axes.set_ylabel(_label(ylabel))
        axes.set_ylim(0, 1.05)
        axes.grid(axis="y", alpha=0.3)
        if position == len(panels):
            axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return _png(figure)


def latency_histogram(samples: Mapping[str, Sequence[float]]) -> str:
    """Overlaid latency histograms (shared bins), p99 marked per side."""
    import numpy as np

    figure = _figure(7.0, 3.8)
    axes = figure.add_subplot()
    values = [np.asarray(v, dtype=np.float64) for v in samples.values() if len(v)]
    everything = np.concatenate(values) if values else np.zeros(1)
    bins = np.histogram_bin_edges(everything, bins=40).tolist()
    for index, (name, sample) in enumerate(samples.items()):
        if not len(sample):
            continue
        data = np.asarray(sample, dtype=np.float64)
        colour = _colour(index)
        axes.hist(
            data,
            bins=bins,
            histtype="stepfilled",
            alpha=0.35,
            color=colour,
            edgecolor=colour,
            label=_label(f"{name} (n={data.size})"),
        )
        p99 = float(np.percentile(data, 99))
        axes.axvline(
            p99, color=colour, linestyle="--", linewidth=1, label=f"{_label(name)} p99 {p99:.1f} ms"
        )
    axes.set_xlabel("latency per request (ms)")
    axes.set_ylabel("requests")
    axes.legend(fontsize=7)
    axes.grid(alpha=0.3)
    return _png(figure)


def size_bars(sizes: Mapping[str, int]) -> str:
    """Horizontal bars: megabytes per component, largest on top."""
    figure = _figure(7.0, 0.45 * max(len(sizes), 2) + 1.2)
    axes = figure.add_subplot()
    names = list(sizes)[::-1]
    megabytes = [sizes[name] / 2**20 for name in names]
    axes.barh([_label(name) for name in names], megabytes, color=_colour(0))
    for position, name in enumerate(names):
        axes.annotate(
            " " + fmt_bytes(sizes[name]), (sizes[name] / 2**20, position), va="center", fontsize=7
        )
    axes.set_xlabel("MB on disk")
    axes.set_xlim(0, max(megabytes, default=1.0) * 1.25 or 1.0)
    axes.grid(axis="x", alpha=0.3)
    return _png(figure)


@dataclass(frozen=True)
class TradeOffPoint:
    """One variant on the size/quality plane."""

    component: str
    variant: str
    size_bytes: int
    metric: float
    baseline: bool
    chosen: bool


def trade_off(points: Sequence[TradeOffPoint], *, metric: str) -> str:
    """Size (log x) against quality relative to each component's uncompressed baseline
    (components measure different things: NDCG for recommenders, recall@10 against exact
    search for vector indexes), one colour per component; the kept variant ringed."""
    figure = _figure(7.5, 4.5)
    axes = figure.add_subplot()
    components = sorted({point.component for point in points})
    for index, component in enumerate(components):
        mine = [point for point in points if point.component == component]
        colour = _colour(index)
        base = next((p.metric for p in mine if p.baseline and p.metric), None)
        for point in mine:
            quality = point.metric / base if base else point.metric
            axes.scatter(
                [max(point.size_bytes, 1) / 2**20],
                [quality],
                color=colour,
                marker="s" if point.baseline else "o",
                s=60 if point.chosen else 30,
                edgecolors="black" if point.chosen else "none",
                linewidths=1.5,
            )
            axes.annotate(
                _label(point.variant),
                (max(point.size_bytes, 1) / 2**20, quality),
                fontsize=6,
                xytext=(3, 3),
                textcoords="offset points",
            )
        axes.scatter([], [], color=colour, label=_label(component))
    axes.set_xscale("log")
    axes.set_xlabel("size (MB, log scale); squares: baseline, ringed: kept")
    axes.set_ylabel(f"quality / uncompressed ({_label(metric)}; 1 = no loss)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    return _png(figure)


def trials(values: Mapping[str, Sequence[tuple[int, float]]], *, metric: str) -> str:
    """AutoML trials: value per trial number, one line per model family."""
    figure = _figure(7.5, 3.8)
    axes = figure.add_subplot()
    for index, (family, points) in enumerate(sorted(values.items())):
        if not points:
            continue
        axes.plot(
            [n for n, _ in points],
            [v for _, v in points],
            marker=".",
            color=_colour(index),
            label=_label(family),
        )
    from matplotlib.ticker import MaxNLocator

    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("trial (0 = untuned defaults)")
    axes.set_ylabel(_label(metric))
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return _png(figure)


__all__ = [
    "Bars",
    "TradeOffPoint",
    "grouped_bars",
    "latency_histogram",
    "metric_at_k",
    "roc_pr",
    "size_bars",
    "trade_off",
    "trials",
]
