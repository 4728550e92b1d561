"""Render a :class:`~safemodel.monitoring.report.DriftReport` as one self-contained HTML page.

No script, no stylesheet or font from elsewhere: charts are inline SVG and every
name or label from the data is escaped, so the file reads the same offline.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from safemodel import _html

if TYPE_CHECKING:
    from safemodel.monitoring.report import DriftReport, FeatureDrift

__all__ = ["fragment", "render"]

_COLOURS = {"alert": "#c92a2a", "warn": "#d9480f", "ok": "#2b8a3e", "insufficient": "#868e96"}
_REFERENCE = "#adb5bd"

_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 64rem;
       color: #212529; padding: 0 1rem; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin: 0 0 .5rem; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { padding: .2rem .6rem; text-align: left; border-bottom: 1px solid #dee2e6; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
section { border: 1px solid #dee2e6; border-radius: 6px; padding: 1rem; margin: 1rem 0; }
.badge { display: inline-block; padding: 0 .5rem; border-radius: 4px; color: #fff;
         font-size: .85rem; font-weight: 600; }
.sub { color: #6c757d; }
.cols { display: flex; flex-wrap: wrap; gap: 1.5rem; align-items: flex-start; }
svg text { font: 10px system-ui, sans-serif; fill: #495057; }
"""


def render(report: DriftReport) -> str:
    """The whole page."""
    ordered = report.by_severity()
    summary = "\n".join(
        f"<tr><td><a href='#r{i}'>{escape(r.name)}</a></td><td>{r.role}</td>"
        f"<td>{_badge(r.status)}</td><td>{escape(r.test or '')}</td>"
        f"<td class='n'>{_p(r.p_value)}</td><td class='n'>{_num(r.psi)}</td>"
        f"<td class='n'>{_num(r.js)}</td></tr>"
        for i, r in enumerate(ordered)
    )
    sections = "\n".join(_section(i, r) for i, r in enumerate(ordered))
    verdict = (
        f"{len(report.alerts)} alert(s), {len(report.warnings)} warning(s)"
        if report.alerts or report.warnings
        else "no significant drift above the effect-size floors"
    )
    share = (
        ""
        if report.drift_share is None
        else f" Drift share: {report.drift_share:.0%} of the columns."
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>safemodel drift report</title>
<style>{_CSS}</style>
</head>
<body>
<h1>Drift report</h1>
<p>{report.rows} row(s) compared with {report.reference_rows} reference row(s):
<strong>{verdict}</strong>.{share}
<span class="sub">A verdict needs a test that is significant after Holm correction over
every test of the report (chance of any false alarm &le; {report.alpha:g}) and an effect
size at a floor: PSI &ge; {report.warn:g} warns, &ge; {report.alert:g} alerts (a rate:
0.5 and 1 percentage point); at least {report.min_rows} rows.</span></p>
<table>
<tr><th>name</th><th>role</th><th>status</th><th>decided by</th><th>p (corrected)</th>
<th>PSI</th><th>JS distance</th></tr>
{summary}
</table>
{sections}
</body>
</html>
"""


def fragment(report: DriftReport) -> str:
    """The notebook display: one row per column and score, worst first, with the
    verdict, the statistics and a small reference-vs-current chart (inline SVG)."""
    rows = [
        (r.name, r.role, _html.badge(r.status), r.rows, r.test or "", r.p_value,
         r.effect_size, r.psi, r.missing_rate,
         _html.bars(r.reference_counts, r.current_counts, colour=_COLOURS[r.status],
                    labels=r.bins))
        for r in report.by_severity()
    ]
    verdict = (f"{len(report.alerts)} alert(s), {len(report.warnings)} warning(s)"
               if report.alerts or report.warnings else "no drift")
    intro = (f"<div>{report.rows} row(s) against {report.reference_rows} reference row(s): "
             f"<strong>{verdict}</strong>. A verdict needs a significant test (Holm-corrected "
             f"at alpha {report.alpha:g}) and an effect at a floor (PSI warn "
             f"{report.warn:g}, alert {report.alert:g}; for the mean and variance tests "
             "the shift and variance ratio a normal column has at that PSI); at least "
             f"{report.min_rows} rows. "
             "Bars: reference (grey) and current share per bin.</div>")
    table = _html.table(
        ["name", "role", "status", "rows", "deciding test", "p-value", "effect", "PSI",
         "missing", "reference vs current"], rows, raw=[2, 9], numeric=[3, 5, 6, 7, 8])
    status = "alert" if report.alerts else "warn" if report.warnings else "ok"
    return _html.box("Drift report", intro, table, status=status)


def _section(i: int, r: FeatureDrift) -> str:
    rows = [
        ("rows", str(r.rows)),
        ("PSI", _num(r.psi)),
        ("chance PSI", _num(r.chance_psi)),
        ("JS distance", _num(r.js)),
        ("missing", _pct(r.missing_rate)),
        ("unexpected missing", _pct(r.unexpected_missing_rate)),
    ]
    if r.kind == "categorical":
        rows.append(("unseen category", _pct(r.unseen_rate)))
    if r.kind == "number":
        rows += [("out of range", _pct(r.out_of_range_rate)), ("invalid", _pct(r.invalid_rate))]
    rows += [
        (f"test {t.name}", f"p={_p(t.adjusted)} {t.effect.replace('_', ' ')} "
         f"{t.effect_size:+.4f} &rarr; {t.verdict}")
        for t in r.tests
    ]  # fmt: skip
    table = "".join(f"<tr><th>{k}</th><td class='n'>{v}</td></tr>" for k, v in rows)
    return f"""<section id="r{i}">
<h2>{escape(r.name)} {_badge(r.status)} <span class="sub">{r.role}, {r.kind}</span></h2>
<div class="cols"><table>{table}</table>
{_chart(r)}</div>
</section>"""


def _chart(r: FeatureDrift) -> str:
    """Grouped bars: reference vs current share per bin (bins empty on both sides hidden)."""
    shown = [
        i
        for i, (a, b) in enumerate(zip(r.reference_counts, r.current_counts, strict=True))
        if a or b
    ]
    ref_total = sum(r.reference_counts) or 1
    cur_total = sum(r.current_counts) or 1
    shares = [(r.reference_counts[i] / ref_total, r.current_counts[i] / cur_total) for i in shown]
    top = max((max(pair) for pair in shares), default=0.0) or 1.0
    group, bar, height, left, bottom = 34, 13, 140, 72, 90
    width = left + group * max(len(shown), 1) + 10
    colour = _COLOURS[r.status]
    parts = [
        f'<svg role="img" width="{width}" height="{height + bottom + 20}" '
        f'viewBox="0 0 {width} {height + bottom + 20}">',
        f"<title>{escape(r.name)}: reference vs current distribution</title>",
        f'<rect x="{left}" y="4" width="10" height="10" fill="{_REFERENCE}"/>'
        f'<text x="{left + 14}" y="13">reference</text>'
        f'<rect x="{left + 80}" y="4" width="10" height="10" fill="{colour}"/>'
        f'<text x="{left + 94}" y="13">current</text>',
        f'<line x1="{left}" y1="{height + 20}" x2="{width - 5}" y2="{height + 20}" '
        'stroke="#adb5bd"/>',
        f'<text x="{left - 4}" y="{24}" text-anchor="end">{top:.0%}</text>',
        f'<text x="{left - 4}" y="{height + 20}" text-anchor="end">0%</text>',
    ]
    for j, ((ref, cur), i) in enumerate(zip(shares, shown, strict=True)):
        x = left + j * group + 3
        for k, (share, fill) in enumerate(((ref, _REFERENCE), (cur, colour))):
            h = height * share / top
            parts.append(
                f'<rect x="{x + k * (bar + 1)}" y="{height + 20 - h:.1f}" width="{bar}" '
                f'height="{h:.1f}" fill="{fill}"><title>{escape(r.bins[i])}: '
                f"{'reference' if k == 0 else 'current'} {share:.1%}</title></rect>"
            )
        label = r.bins[i] if len(r.bins[i]) <= 18 else r.bins[i][:17] + "\u2026"
        cx, cy = x + bar, height + 30
        parts.append(
            f'<text x="{cx}" y="{cy}" text-anchor="end" '
            f'transform="rotate(-45 {cx} {cy})">{escape(label)}</text>'
        )
    if not shown:
        parts.append(f'<text x="{left + 10}" y="{height / 2}">no data</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _badge(status: str) -> str:
    return f'<span class="badge" style="background:{_COLOURS[status]}">{status}</span>'


def _num(value: float | None) -> str:
    return "&mdash;" if value is None else f"{value:.4f}"


def _p(value: float | None) -> str:
    return "&mdash;" if value is None else f"{value:.3g}"


def _pct(value: float | None) -> str:
    return "&mdash;" if value is None else f"{value:.2%}"
