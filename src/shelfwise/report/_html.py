"""HTML building blocks: escaped text, tables, embedded images, the page shell.

Everything that comes from run files (model names, queries, messages) goes through
`html.escape`; only strings wrapped in `Markup` (built here from escaped parts) are
inserted as they are. The page has inline CSS, no script and no external reference,
so it opens offline.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

_CSS: Final = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1200px; padding: 0 1rem; color: #1d2330; line-height: 1.4; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.25rem; border-bottom: 1px solid #d6dae3; padding-bottom: 0.2rem;
     margin-top: 2.2rem; }
h3 { font-size: 1.05rem; margin-top: 1.2rem; }
nav ol { columns: 3; font-size: 0.9rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0; }
th, td { border: 1px solid #d6dae3; padding: 0.25rem 0.5rem; text-align: left;
         vertical-align: top; }
th { background: #f1f3f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
caption { caption-side: bottom; text-align: left; color: #5b6375; font-size: 0.8rem;
          padding-top: 0.2rem; }
.not-run { color: #7a8194; font-style: italic; }
.pass, .good { color: #1b7f3b; } .fail, .bad { color: #b3261e; }
.badge { display: inline-block; padding: 0.1rem 0.6rem; border-radius: 0.8rem;
         font-weight: 600; background: #eef0f5; }
.badge.pass { background: #dcf3e3; } .badge.fail { background: #fbe1df; }
.muted { color: #5b6375; font-size: 0.85rem; }
figure { margin: 0.8rem 0; } img { max-width: 100%; height: auto; }
details summary { cursor: pointer; margin: 0.4rem 0; }
"""


class Markup(str):
    """A string that is already safe HTML (built from escaped parts)."""

    __slots__ = ()


def escape(value: object) -> Markup:
    """`value` as text that is safe inside an element or a quoted attribute."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape(str(value), quote=True))


def fmt(value: object, digits: int = 4) -> str:
    """A table value as text: floats with `digits` decimals, ints with separators."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if value != 0 and abs(value) < 10 ** (-digits):
            return f"{value:.{digits - 1}e}"
        return f"{value:,.{digits}f}"
    return str(value)


def fmt_bytes(size: float) -> str:
    """A byte count as B / KB / MB / GB (powers of 1024)."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if abs(value) < 1024 or unit == "GB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{value:,.1f} GB"  # pragma: no cover - loop always returns


def signed(value: float | None, digits: int = 4, *, higher_is_better: bool = True) -> Markup:
    """A delta with its sign, coloured good/bad by direction (`–` when unknown)."""
    if value is None or math.isnan(value):
        return Markup("–")
    text = f"{value:+.{digits}f}"
    if value == 0:
        return escape(text)
    good = (value > 0) is higher_is_better
    return Markup(f'<span class="{"good" if good else "bad"}">{escape(text)}</span>')


@dataclass(frozen=True)
class Num:
    """A number shown with `digits` decimals (right-aligned like any number)."""

    value: float | int | None
    digits: int = 2


def _cell(value: object) -> Markup:
    if isinstance(value, Num):
        return Markup(f'<td class="num">{escape(fmt(value.value, value.digits))}</td>')
    if isinstance(value, Markup):
        return Markup(f"<td>{value}</td>")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Markup(f'<td class="num">{escape(fmt(value))}</td>')
    return Markup(f"<td>{escape(fmt(value))}</td>")


def table(
    headers: Sequence[object],
    rows: Iterable[Sequence[object]],
    *,
    caption: str | None = None,
) -> Markup:
    """A table; numbers right-aligned, every text cell escaped (Markup cells kept)."""
    head = "".join(f"<th>{escape(header)}</th>" for header in headers)
    body = "".join("<tr>" + "".join(_cell(value) for value in row) + "</tr>" for row in rows)
    note = f"<caption>{escape(caption)}</caption>" if caption else ""
    return Markup(
        f'<div class="scroll"><table>{note}<thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def image(png_base64: str, alt: str) -> Markup:
    """An embedded PNG (a `data:` URI; no file next to the report)."""
    return Markup(
        f'<figure><img src="data:image/png;base64,{png_base64}" alt="{escape(alt)}"></figure>'
    )


def paragraph(text: object, css_class: str | None = None) -> Markup:
    """A paragraph of escaped text."""
    attribute = f' class="{escape(css_class)}"' if css_class else ""
    return Markup(f"<p{attribute}>{escape(text)}</p>")


def not_run(reason: str) -> Markup:
    """The placeholder of a section whose input is missing."""
    return paragraph(f"not run: {reason}", "not-run")


def details(summary: str, content: Markup) -> Markup:
    """A collapsed block (native `<details>`; no script)."""
    return Markup(f"<details><summary>{escape(summary)}</summary>{content}</details>")


def join(parts: Iterable[Markup]) -> Markup:
    """Concatenate safe fragments."""
    return Markup("".join(parts))


@dataclass(frozen=True)
class Section:
    """One titled part of the report."""

    anchor: str
    title: str
    body: Markup


def page(title: str, subtitle: str, sections: Sequence[Section]) -> str:
    """The whole document: head with inline CSS, a table of contents, the sections."""
    contents = "".join(
        f'<li><a href="#{escape(section.anchor)}">{escape(section.title)}</a></li>'
        for section in sections
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="muted">{escape(subtitle)}</p>',
        f"<nav><ol>{contents}</ol></nav>",
    ]
    parts.extend(
        f'<section id="{escape(section.anchor)}"><h2>{escape(section.title)}</h2>'
        f"{section.body}</section>"
        for section in sections
    )
    parts.append("</body></html>\n")
    return "\n".join(parts)


__all__ = [
    "Markup",
    "Num",
    "Section",
    "details",
    "escape",
    "fmt",
    "fmt_bytes",
    "image",
    "join",
    "not_run",
    "page",
    "paragraph",
    "signed",
    "table",
]
