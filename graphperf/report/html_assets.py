"""Building blocks of graphperf's HTML pages: inline CSS and JS, palettes, the page shell, and the
table and SVG chart primitives every page uses (`graphperf.report.html` builds the analyze report
from them, `html_whatif` and `html_correlate` the what-if and correlate pages).

Everything here is a constant or a pure function of its arguments, so a page built from the same
sections is byte-identical. Callers pass cell contents already escaped (`esc`); titles and labels
given as plain text are escaped here. Nothing is fetched at view time: no fonts, scripts or images from
the network. Every rule is scoped under ``.gp`` so a fragment (`page(..., fragment=True)`, used by
`Report._repr_html_` in notebooks) does not restyle the notebook around it.

The script only *enhances* a page that is complete without it: it makes ``table.sortable``
headers sort on click and records a self-check on ``<html>`` for tests and benchmarks:
``data-gp-status="ok"`` once it ran, ``data-gp-points`` (the number of ``circle.pt`` in each
``svg.gp-scatter``, comma-separated), ``data-gp-pairs`` (the number of ``g.pair`` in each
``svg.gp-pairs``, comma-separated), ``data-gp-errors`` (uncaught errors, if any) and
``data-gp-load-ms`` (navigation start to the load event).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Iterable, Optional, Sequence

from ..version import __version__
from .units import seconds, si

__all__ = ["CSS", "JS", "OP_PALETTE", "OTHER_COLOUR", "BOUND_COLOURS", "page", "Section", "esc", "sort_key", "pct",
           "table", "kv_table", "bar_cell", "LogScale", "loglog_frame", "hbar_chart", "paired_bars", "line_chart",
           "nice_ticks", "document"]

#: Colours for the op classes ranked by time (Tableau 10 order, then two more); the rest is OTHER.
OP_PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
              "#9c755f", "#17becf", "#bcbd22")
OTHER_COLOUR = "#a0a0a0"
#: Colours of the latency bounds (stacked bars).
BOUND_COLOURS = {"compute": "#4e79a7", "memory": "#f28e2b", "overhead": "#bab0ac"}


def _colour_rules() -> str:
    rules = [f".gp .c{i}{{fill:{c};background:{c}}}" for i, c in enumerate(OP_PALETTE)]
    rules.append(f".gp .cx{{fill:{OTHER_COLOUR};background:{OTHER_COLOUR}}}")
    rules += [f".gp svg circle.ring.{cls}{{stroke:{c}}}" for cls, c in
              [*((f"c{i}", c) for i, c in enumerate(OP_PALETTE)), ("cx", OTHER_COLOUR)]]
    rules += [f".gp .b-{b}{{fill:{c};background:{c}}}" for b, c in BOUND_COLOURS.items()]
    return "\n".join(rules)


CSS = """\
.gp{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2433;max-width:1280px;
 margin:0 auto;padding:8px 20px 40px}
.gp h1{font-size:22px;margin:12px 0 2px}
.gp h2{font-size:18px;margin:28px 0 8px;padding-top:8px;border-top:1px solid #d8dce3}
.gp h3{font-size:15px;margin:18px 0 6px}
.gp .sub{color:#5a6275;margin:0 0 8px}
.gp nav{margin:8px 0;font-size:13px}
.gp nav a{margin-right:12px;color:#2f5fa7;text-decoration:none}
.gp .tw{overflow-x:auto;max-width:100%}
.gp .tw.fit th{white-space:normal}
.gp table{border-collapse:collapse;margin:6px 0 10px;font-size:13px}
.gp th,.gp td{padding:3px 8px;border-bottom:1px solid #e6e9ee;text-align:left;vertical-align:top}
.gp th{background:#f3f5f8;font-weight:600;white-space:nowrap}
.gp td.n,.gp th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.gp td.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
.gp td.wrap{max-width:420px;overflow-wrap:anywhere}
.gp caption{text-align:left;caption-side:top;padding:2px 0}
.gp tfoot td{color:#5a6275;font-style:italic}
.gp table.kv th{text-align:left;background:none;font-weight:600;padding-right:16px}
.gp table.sortable[data-gp-wired] th{cursor:pointer}
.gp table.sortable th[aria-sort=ascending]::after{content:" \\25B2";font-size:10px}
.gp table.sortable th[aria-sort=descending]::after{content:" \\25BC";font-size:10px}
.gp .barcell{width:220px}
.gp .bar{display:inline-block;height:10px;vertical-align:middle}
.gp .stack{display:flex;height:18px;width:100%;max-width:640px;border:1px solid #d8dce3;margin:4px 0}
.gp .stack span{display:block;height:100%}
.gp .sw{display:inline-block;width:11px;height:11px;border-radius:50%;margin:0 4px 0 10px;vertical-align:-1px}
.gp .legend{font-size:12px;margin:4px 0 8px;line-height:1.9}
.gp .note{color:#5a6275;font-size:13px;max-width:980px}
.gp .warn{background:#fff4e0;border-left:4px solid #f28e2b;padding:6px 10px;max-width:980px}
.gp pre{white-space:pre-wrap;font-size:12px;background:#f6f7f9;padding:8px;max-width:980px}
.gp svg{display:block;max-width:100%;height:auto}
.gp svg text{font:11px system-ui,sans-serif;fill:#1d2433}
.gp svg .grid{stroke:#e6e9ee;stroke-width:1}
.gp svg .axis{stroke:#5a6275;stroke-width:1;fill:none}
.gp svg .roof{fill:none;stroke:#1d2433;stroke-width:1.3}
.gp svg .roof.derated{stroke:#c0392b;stroke-dasharray:6 4}
.gp svg text.lab{font-size:10.5px}
.gp svg text.lab.derated{fill:#c0392b}
.gp svg circle.pt{fill-opacity:.72;stroke:#fff;stroke-width:.6}
.gp svg circle.pt:hover{stroke:#000;stroke-width:2;fill-opacity:1}
.gp svg circle.pt.ring{fill-opacity:.15;stroke-width:1.8;stroke-dasharray:3 2}
.gp svg circle.pt.ring.launch{stroke-dasharray:1 2}
.gp .sw.ring{background:none;border:1.8px dashed #1d2433;width:8px;height:8px}
.gp .sw.ring.launch{border-style:dotted}
.gp svg rect.seg:hover{opacity:.8}
.gp .before{fill:#a0a0a0;background:#a0a0a0}
.gp .after{fill:#4e79a7;background:#4e79a7}
.gp svg .band{fill:#59a14f;fill-opacity:.12;stroke:none}
.gp svg .diag{stroke:#1d2433;stroke-width:1.2;fill:none}
.gp svg .diag.x2{stroke:#59a14f;stroke-dasharray:5 4}
.gp svg .line{fill:none;stroke-width:2}
.gp svg .line.dash{stroke-dasharray:6 4;stroke-width:1.5}
.gp svg .s0{stroke:#4e79a7}.gp svg circle.s0{fill:#4e79a7}
.gp svg .s1{stroke:#f28e2b}.gp svg circle.s1{fill:#f28e2b}
.gp svg .s2{stroke:#59a14f}.gp svg circle.s2{fill:#59a14f}
.gp svg circle.mark{stroke:#fff;stroke-width:.8}
.gp .lk{display:inline-block;width:18px;height:0;border-top:2px solid;margin:0 4px 0 10px;vertical-align:3px}
.gp .lk.s0{border-color:#4e79a7}.gp .lk.s1{border-color:#f28e2b}.gp .lk.s2{border-color:#59a14f}
.gp .lk.dash{border-top-style:dashed}
""" + _colour_rules() + "\n"


JS = """\
(function () {
  var root = document.documentElement, errors = [];
  function note(msg) {
    errors.push(String(msg));
    root.setAttribute('data-gp-errors', errors.join(' | '));
  }
  window.addEventListener('error', function (e) { note(e.message || e); });
  window.addEventListener('load', function () {
    root.setAttribute('data-gp-load-ms', performance.now().toFixed(1));
  });
  function key(cell) {
    var v = cell.getAttribute('data-v');
    if (v !== null && v !== '') { var f = parseFloat(v); if (!isNaN(f)) return f; }
    return cell.textContent.trim().toLowerCase();
  }
  function cmp(a, b) {
    if (typeof a === typeof b) return a < b ? -1 : a > b ? 1 : 0;
    return typeof a === 'number' ? -1 : 1;
  }
  function wire(table) {
    if (table.hasAttribute('data-gp-wired')) return;
    table.setAttribute('data-gp-wired', '1');
    var heads = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(heads, function (th, col) {
      th.title = 'sort by ' + th.textContent.trim();
      th.addEventListener('click', function () {
        var body = table.tBodies[0];
        var desc = th.getAttribute('aria-sort') !== 'descending';
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', desc ? 'descending' : 'ascending');
        var rows = Array.prototype.slice.call(body.rows).map(function (r, i) {
          return [key(r.cells[col]), i, r];
        });
        rows.sort(function (a, b) { return (desc ? -cmp(a[0], b[0]) : cmp(a[0], b[0])) || a[1] - b[1]; });
        rows.forEach(function (r) { body.appendChild(r[2]); });
      });
    });
  }
  try {
    Array.prototype.forEach.call(document.querySelectorAll('.gp table.sortable'), wire);
    var counts = Array.prototype.map.call(document.querySelectorAll('.gp svg.gp-scatter'), function (svg) {
      return svg.querySelectorAll('circle.pt').length;
    });
    root.setAttribute('data-gp-points', counts.join(','));
    var pairs = Array.prototype.map.call(document.querySelectorAll('.gp svg.gp-pairs'), function (svg) {
      return svg.querySelectorAll('g.pair').length;
    });
    root.setAttribute('data-gp-pairs', pairs.join(','));
    root.setAttribute('data-gp-status', 'ok');
  } catch (e) {
    note(e);
  }
})();
"""


def page(title: str, body_parts: Sequence[str], *, fragment: bool = False) -> str:
    """Wrap rendered sections in one self-contained document (or a notebook fragment).

    `title` is plain text (escaped here); `body_parts` are HTML already escaped by their renderer.
    """
    body = "".join(body_parts)
    if fragment:
        return f'<div class="gp">{body}</div>\n<style>\n{CSS}</style>\n<script>\n{JS}</script>\n'
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{escape(title)}</title>\n<style>\n{CSS}</style>\n</head>\n"
            f"<body>\n<div class=\"gp\">\n{body}</div>\n<script>\n{JS}</script>\n</body>\n</html>\n")


# -- sections, tables and charts ----------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """One part of the page: `body` is HTML already escaped by the function that built it."""

    id: str
    title: str
    body: str
    level: int = 2
    nav: str = ""  # the link text in the page's navigation; the title when empty

    def html(self) -> str:
        h = f"h{self.level}"
        return f'<section id="{escape(self.id)}">\n<{h}>{escape(self.title)}</{h}>\n{self.body}</section>\n'


def esc(value) -> str:
    return escape(str(value))


def sort_key(value) -> str:
    """A sort key for data-v: compact and deterministic."""
    if value is None:
        return ""
    return str(value) if isinstance(value, int) else f"{value:.6g}"


def pct(x: float) -> str:
    return f"{x:.1%}"


def table(columns: Sequence[tuple[str, bool]], rows: Iterable[Sequence[tuple[str, Optional[str], str]]], *,
          sortable: bool = True, foot: str = "", caption: str = "", fit: bool = False) -> str:
    """A table: `columns` are (title, numeric); each cell is (html, sort key or None, extra class). `fit=True`
    lets the headers wrap, for a wide table that must fit the page's width (it scrolls, in its box, if not)."""
    head = "".join(f'<th{" class=n" if num else ""}>{esc(t)}</th>' for t, num in columns)
    body = []
    for row in rows:
        cells = []
        for (content, key, cls), (_, num) in zip(row, columns):
            classes = " ".join(c for c in (("n" if num else ""), cls) if c)
            attrs = (f' class="{classes}"' if classes else "") + (f' data-v="{esc(key)}"' if key is not None else "")
            cells.append(f"<td{attrs}>{content}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption class=note>{caption}</caption>" if caption else ""
    tfoot = f'<tfoot><tr><td colspan="{len(columns)}">{foot}</td></tr></tfoot>' if foot else ""
    cls = ' class="sortable"' if sortable else ""
    box = "tw fit" if fit else "tw"
    return (f'<div class="{box}"><table{cls}>{cap}<thead><tr>{head}</tr></thead><tbody>\n' + "\n".join(body)
            + f"\n</tbody>{tfoot}</table></div>\n")


def kv_table(rows: Iterable[tuple[str, str]]) -> str:
    return '<table class="kv"><tbody>\n' + "\n".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in rows) + \
        "\n</tbody></table>\n"


def bar_cell(value: float, largest: float, cls: str) -> tuple[str, Optional[str], str]:
    width = 100.0 * value / largest if largest > 0 else 0.0
    return (f'<span class="bar {cls}" style="width:{width:.1f}%"></span>', sort_key(value), "barcell")


class LogScale:
    """A base-10 axis from decade `10**e0` to `10**e1` mapped onto pixels [px0, px1]."""

    def __init__(self, lo: float, hi: float, px0: float, px1: float):
        self.e0 = math.floor(math.log10(lo))
        self.e1 = max(math.ceil(math.log10(hi)), self.e0 + 1)
        self.px0, self.px1 = px0, px1

    @property
    def lo(self) -> float:
        return 10.0 ** self.e0

    @property
    def hi(self) -> float:
        return 10.0 ** self.e1

    def __call__(self, v: float) -> float:
        return self.px0 + (math.log10(v) - self.e0) / (self.e1 - self.e0) * (self.px1 - self.px0)

    def ticks(self) -> list[float]:
        step = max(1, math.ceil((self.e1 - self.e0) / 10))
        return [10.0 ** e for e in range(self.e0, self.e1 + 1, step)]


def loglog_frame(x: LogScale, y: LogScale, x_title: str, y_title: str, x_unit: str = "", y_unit: str = "",
                 fmt=None) -> str:
    """Grid lines, axes, decade tick labels and axis titles of a log-log chart (SVG fragment). Tick labels
    are `si(value, unit)`, or `fmt(value)` when given (e.g. `seconds`)."""
    parts = []
    for v in x.ticks():
        px = x(v)
        label = fmt(v) if fmt else si(v, x_unit)
        parts.append(f'<line class="grid" x1="{px:.1f}" y1="{y.px1:.1f}" x2="{px:.1f}" y2="{y.px0:.1f}"/>'
                     f'<text x="{px:.1f}" y="{y.px0 + 16:.1f}" text-anchor="middle">{esc(label)}</text>')
    for v in y.ticks():
        py = y(v)
        label = fmt(v) if fmt else si(v, y_unit)
        parts.append(f'<line class="grid" x1="{x.px0:.1f}" y1="{py:.1f}" x2="{x.px1:.1f}" y2="{py:.1f}"/>'
                     f'<text x="{x.px0 - 6:.1f}" y="{py + 4:.1f}" text-anchor="end">{esc(label)}</text>')
    parts.append(f'<rect class="axis" x="{x.px0:.1f}" y="{y.px1:.1f}" width="{x.px1 - x.px0:.1f}" '
                 f'height="{y.px0 - y.px1:.1f}"/>')
    parts.append(f'<text x="{(x.px0 + x.px1) / 2:.1f}" y="{y.px0 + 36:.1f}" text-anchor="middle">{esc(x_title)}</text>')
    parts.append(f'<text transform="translate(14 {(y.px0 + y.px1) / 2:.1f}) rotate(-90)" '
                 f'text-anchor="middle">{esc(y_title)}</text>')
    return "\n".join(parts) + "\n"


def hbar_chart(rows: Sequence[tuple[str, Sequence[tuple[float, str, str]]]], fmt=seconds, width: int = 760) -> str:
    """Horizontal stacked bars: rows of (label, [(value, css class, tooltip)]), one linear scale."""
    left, right, row_h = 170, 110, 26
    biggest = max((sum(v for v, _, _ in segs) for _, segs in rows), default=0.0) or 1.0
    scale = (width - left - right) / biggest
    out = [f'<svg class="gp-bars" viewBox="0 0 {width} {row_h * len(rows) + 8}" width="{width}" '
           f'height="{row_h * len(rows) + 8}" xmlns="http://www.w3.org/2000/svg">']
    for i, (label, segs) in enumerate(rows):
        yy, xx = 4 + i * row_h, float(left)
        out.append(f'<text x="{left - 8}" y="{yy + 15}" text-anchor="end">{esc(label)}</text>')
        for value, cls, tip in segs:
            if value <= 0:
                continue
            out.append(f'<rect class="seg {cls}" x="{xx:.1f}" y="{yy}" width="{value * scale:.1f}" height="{row_h - 6}">'
                       f"<title>{esc(tip)}</title></rect>")
            xx += value * scale
        out.append(f'<text x="{xx + 6:.1f}" y="{yy + 15}">{esc(fmt(sum(v for v, _, _ in segs)))}</text>')
    return "\n".join(out) + "\n</svg>\n"


def paired_bars(rows: Sequence[tuple[str, Optional[float], Optional[float], str]], fmt=seconds,
                names: tuple[str, str] = ("before", "after"), width: int = 860) -> str:
    """Before/after bars: rows of (label, before, after, tooltip), one ``g.pair`` per row on one linear
    scale. A value of None is unknown: no bar, the word "unknown" (never drawn as zero)."""
    left, right, row_h, bar_h = 270, 170, 30, 10
    biggest = max((v for _, b, a, _ in rows for v in (b, a) if v is not None), default=0.0) or 1.0
    scale = (width - left - right) / biggest
    height = row_h * len(rows) + 8
    out = [f'<svg class="gp-pairs" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
           f'data-expected-pairs="{len(rows)}" xmlns="http://www.w3.org/2000/svg">']
    for i, (label, before, after, tip) in enumerate(rows):
        yy = 4 + i * row_h
        short = label if len(label) <= 36 else label[:35] + "\u2026"  # the tooltip holds it whole
        out.append(f'<g class="pair"><title>{esc(tip)}</title>'
                   f'<text x="{left - 8}" y="{yy + 15}" text-anchor="end">{esc(short)}</text>')
        for k, (value, cls) in enumerate(((before, "before"), (after, "after"))):
            by = yy + 2 + k * (bar_h + 2)
            text = f"{names[k]} {fmt(value)}" if value is not None else f"{names[k]} unknown"
            w = 0.0 if value is None else value * scale
            if w > 0:
                out.append(f'<rect class="seg {cls}" x="{left}" y="{by}" width="{w:.1f}" height="{bar_h}"/>')
            out.append(f'<text x="{left + w + 6:.1f}" y="{by + 9}">{esc(text)}</text>')
        out.append("</g>")
    return "\n".join(out) + "\n</svg>\n"


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5, 5 x 10^k steps) covering [lo, hi] with at most about `count` steps."""
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / count
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if (hi - lo) / (m * mag) <= count)
    first = math.floor(lo / step + 1e-9) * step
    ticks, k = [], 0
    while first + k * step <= hi + step * 1e-9:
        ticks.append(float(f"{first + k * step:.10g}"))
        k += 1
    if ticks[-1] < hi:
        ticks.append(float(f"{first + k * step:.10g}"))
    return ticks


def line_chart(xs: Sequence[float], series: Sequence[tuple[str, str, Sequence[Optional[float]]]], x_title: str,
               y_title: str, x_fmt=lambda v: f"{v:g}", y_fmt=seconds, width: int = 860, height: int = 380) -> str:
    """Lines over one linear x axis: `series` are (name, css classes, y per x); y starts at 0. Every point
    is a ``circle.mark`` with a tooltip; a None y leaves a gap in its line."""
    box = (96, 14, width - 24, height - 52)  # left, top, right, bottom
    ys = [y for _, _, vals in series for y in vals if y is not None]
    xt = nice_ticks(min(xs), max(xs)) if len(set(xs)) > 1 else [xs[0] - 1, xs[0], xs[0] + 1]
    yt = nice_ticks(0.0, max(ys, default=0.0) or 1.0)

    def px(v: float) -> float:
        return box[0] + (v - xt[0]) / (xt[-1] - xt[0]) * (box[2] - box[0])

    def py(v: float) -> float:
        return box[3] - (v - yt[0]) / (yt[-1] - yt[0]) * (box[3] - box[1])

    out = [f'<svg class="gp-line" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
           f'xmlns="http://www.w3.org/2000/svg">']
    for v in xt:
        out.append(f'<line class="grid" x1="{px(v):.1f}" y1="{box[1]}" x2="{px(v):.1f}" y2="{box[3]}"/>'
                   f'<text x="{px(v):.1f}" y="{box[3] + 16}" text-anchor="middle">{esc(x_fmt(v))}</text>')
    for v in yt:
        out.append(f'<line class="grid" x1="{box[0]}" y1="{py(v):.1f}" x2="{box[2]}" y2="{py(v):.1f}"/>'
                   f'<text x="{box[0] - 6}" y="{py(v) + 4:.1f}" text-anchor="end">{esc(y_fmt(v))}</text>')
    out.append(f'<rect class="axis" x="{box[0]}" y="{box[1]}" width="{box[2] - box[0]}" height="{box[3] - box[1]}"/>')
    out.append(f'<text x="{(box[0] + box[2]) / 2:.1f}" y="{box[3] + 36}" text-anchor="middle">{esc(x_title)}</text>')
    out.append(f'<text transform="translate(14 {(box[1] + box[3]) / 2:.1f}) rotate(-90)" '
               f'text-anchor="middle">{esc(y_title)}</text>')
    for name, cls, vals in series:
        runs, cur = [], []
        for x, y in zip(xs, vals):
            if y is None:
                runs, cur = runs + ([cur] if cur else []), []
            else:
                cur.append(f"{px(x):.1f},{py(y):.1f}")
        runs += [cur] if cur else []
        out += [f'<polyline class="line {cls}" points="{" ".join(r)}"/>' for r in runs]
        colour = cls.split()[0]
        out += [f'<circle class="mark {colour}" cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5">'
                f"<title>{esc(f'{name} at {x_fmt(x)}: {y_fmt(y)}')}</title></circle>"
                for x, y in zip(xs, vals) if y is not None]
    legend = "".join(f'<span class="lk {cls}"></span>{esc(name)}' for name, cls, _ in series)
    return "\n".join(out) + f'\n</svg>\n<div class="legend">{legend}</div>\n'


def document(title: str, sections: Sequence[Section], schema: str, *, fragment: bool = False) -> str:
    """Header (title, navigation), the sections and a footer naming the JSON schema the figures follow,
    wrapped in the self-contained page (`page`)."""
    nav = " ".join(f'<a href="#{escape(s.id)}">{escape(s.nav or s.title)}</a>' for s in sections)
    head = f"<header>\n<h1>{escape(title)}</h1>\n<nav>{nav}</nav>\n</header>\n"
    foot = (f'<p class="note">graphperf {escape(__version__)}; figures as in the JSON output ({escape(schema)}); '
            "a static page: nothing is fetched, tables and charts work without JavaScript.</p>\n")
    return page(title, [head, *(s.html() for s in sections), foot], fragment=fragment)
