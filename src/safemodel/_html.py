"""Small HTML fragments for notebook displays (``_repr_html_``), shared by every layer.

Base layer: imports nothing from safemodel. Everything from the data is escaped; the
fragments use inline styles and inline SVG only (no script, stylesheet or font from
elsewhere), so a notebook shows them the same offline and in a static export.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from safemodel._text import cell as text_cell

__all__ = ["STATUS_COLOURS", "badge", "bars", "box", "cell", "esc", "pairs", "table"]

STATUS_COLOURS = {
    "alert": "#c92a2a", "warn": "#d9480f", "ok": "#2b8a3e", "insufficient": "#868e96",
    "fail": "#c92a2a", "error": "#c92a2a",
}
_REFERENCE = "#adb5bd"
_TABLE = "border-collapse:collapse;margin:.25rem 0;font-size:.9em"
_CELL = "padding:.15rem .6rem;text-align:left;border-bottom:1px solid #dee2e6"
_NUMBER = _CELL.replace("text-align:left", "text-align:right") + \
    ";font-variant-numeric:tabular-nums"


def esc(value: Any) -> str:
    """``str(value)``, HTML-escaped (quotes too)."""
    return escape(str(value), quote=True)


def cell(value: Any) -> str:
    """One value as escaped table text (:func:`safemodel._text.cell`, HTML-escaped)."""
    return esc(text_cell(value))


def badge(status: str) -> str:
    """A coloured label for a verdict (``ok``, ``warn``, ``alert`` ...)."""
    colour = STATUS_COLOURS.get(status, "#495057")
    return (f'<span style="display:inline-block;padding:0 .45rem;border-radius:4px;'
            f'color:#fff;background:{colour};font-size:.85em;font-weight:600">'
            f"{esc(status)}</span>")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *,
          raw: Sequence[int] = (), numeric: Sequence[int] = ()) -> str:
    """A table; cells are escaped except the columns in ``raw`` (already HTML)."""
    head = "".join(f'<th style="{_CELL}">{esc(h)}</th>' for h in headers)
    body = "".join(
        "<tr>" + "".join(
            f'<td style="{_NUMBER if i in numeric else _CELL}">'
            f"{value if i in raw else cell(value)}</td>"
            for i, value in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f'<table style="{_TABLE}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def pairs(rows: Sequence[tuple[str, Any]], *, raw: Sequence[str] = ()) -> str:
    """A two-column key/value table; values of keys in ``raw`` are already HTML."""
    body = "".join(
        f'<tr><th style="{_CELL}">{esc(k)}</th>'
        f'<td style="{_CELL}">{v if k in raw else cell(v)}</td></tr>'
        for k, v in rows
    )
    return f'<table style="{_TABLE}"><tbody>{body}</tbody></table>'


def box(title: str, *parts: str, status: str | None = None) -> str:
    """A titled block holding already-built fragments."""
    heading = esc(title) + (f" {badge(status)}" if status else "")
    return ('<div style="font:13px/1.4 system-ui,sans-serif;border:1px solid #dee2e6;'
            'border-radius:6px;padding:.5rem .75rem;margin:.25rem 0;max-width:64rem">'
            f'<div style="font-weight:600;margin-bottom:.25rem">{heading}</div>'
            + "".join(parts) + "</div>")


def bars(reference: Sequence[float], current: Sequence[float], *, colour: str,
         labels: Sequence[str] = (), width: int = 120, height: int = 28) -> str:
    """A small inline SVG: reference (grey) and current (``colour``) share per bin.

    Bins empty on both sides are left out; each bar pair carries its label and shares
    as a tooltip.
    """
    ref_total = sum(reference) or 1
    cur_total = sum(current) or 1
    shown = [i for i, (a, b) in enumerate(zip(reference, current, strict=True)) if a or b]
    shares = [(reference[i] / ref_total, current[i] / cur_total) for i in shown]
    top = max((max(p) for p in shares), default=0.0) or 1.0
    step = width / max(len(shown), 1)
    bar = max(step / 2 - 0.5, 0.5)
    parts = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             'role="img" style="vertical-align:middle">']
    for j, (i, (ref, cur)) in enumerate(zip(shown, shares, strict=True)):
        label = esc(labels[i]) if i < len(labels) else str(i)
        for k, (share, fill) in enumerate(((ref, _REFERENCE), (cur, colour))):
            h = (height - 1) * share / top
            parts.append(
                f'<rect x="{j * step + k * bar:.1f}" y="{height - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{fill}"><title>{label}: '
                f'{"reference" if k == 0 else "current"} {share:.1%}</title></rect>')
    parts.append("</svg>")
    return "".join(parts)
