"""HTML page of a correlation (`graphperf.correlate.Correlation`): `graphperf correlate --format html`.

The page holds the error statistics, a log-log scatter of projected against measured time with one
point per matched row (the rows of `Correlation.rows`: a graph node, or the nodes a fused profiled
kernel covers) around the y = x line and its 2x band, the biggest outliers, every matched row, the
profiled events that matched no graph node (with their time and reason), the projected nodes that
were not measured, and what was profiled.

Guarantees (as the analyze page, `graphperf.report.html`): one self-contained file, nothing fetched
at view time; the tables, the statistics and every point's ``<title>`` tooltip need no JavaScript;
every string from the model and the profile is escaped; the same correlation gives the same bytes.
It reads the correlation and computes nothing but display figures: a row's error (p - m) / m and
ratio p / m. A row that a log axis cannot place (projected unknown or 0, measured 0) is left off the
chart and named under it, never drawn at a made-up value. onnxruntime measures whole microseconds, so
rows often share a measured value: those are drawn spread within +-0.4 us of it (`spread_x`, said under
the chart), their tooltips and tables keep the recorded value.
"""

from __future__ import annotations

from collections import Counter
from typing import Optional

from ..correlate.match import SCHEMA, Correlation, Row
from .html_assets import (BOUND_COLOURS, LogScale, Section, document, esc, kv_table, loglog_frame, pct, sort_key,
                          table)
from .units import seconds

__all__ = ["render_correlate_html", "correlate_sections", "plotted_rows", "spread_x", "DEFAULT_TOP"]

DEFAULT_TOP = 20  # outlier rows; the "every row" table holds all
_SIDE = 560  # the plot area is a square: y = x is its diagonal
_BOX = (96, 16, 96 + _SIDE, 16 + _SIDE)  # left, top, right, bottom


def plotted_rows(c: Correlation) -> list[Row]:
    """The rows the log-log chart places: projected and measured time both known and > 0."""
    return [r for r in c.rows if r.projected_s and r.measured_s > 0]


#: onnxruntime records event durations in whole microseconds: a measured time is known to this step.
ORT_RESOLUTION_S = 1e-6
_SPREAD = 0.8  # the part of one resolution step that rows sharing a measured value are spread across


def spread_x(pts: list[Row], resolution_s: float) -> dict[int, float]:
    """The x (measured time) each row is drawn at, by id(row): rows that share a measured value, which a profile of
    whole microseconds makes common, are spread evenly across the middle 80% of one resolution step around it (in
    order of projected time, then name), so they do not hide each other; a row alone keeps its value. Deterministic:
    the same rows give the same positions. `resolution_s` 0 spreads nothing."""
    shared: dict[float, list[Row]] = {}
    for r in pts:
        shared.setdefault(r.measured_s, []).append(r)
    out = {}
    for value, rows in shared.items():
        rows.sort(key=lambda r: (r.projected_s, r.name))
        for i, r in enumerate(rows):
            offset = ((i + 0.5) / len(rows) - 0.5) * _SPREAD * resolution_s if len(rows) > 1 else 0.0
            out[id(r)] = value + offset
    return out


def render_correlate_html(c: Correlation, *, top: int = DEFAULT_TOP, fragment: bool = False) -> str:
    title = f"graphperf correlate: {c.model} on {c.target} vs measured"
    return document(title, correlate_sections(c, top=top), SCHEMA, fragment=fragment)


def correlate_sections(c: Correlation, *, top: int = DEFAULT_TOP) -> list[Section]:
    return [Section("stats", "Error statistics", stats_body(c)),
            Section("scatter", "Projected vs measured", scatter_body(c), nav="Scatter"),
            Section("outliers", "Biggest outliers", outliers_body(c, top), nav="Outliers"),
            Section("rows", "Every matched row", rows_table(c.rows, "matched rows in graph order")),
            Section("unmatched", "Unmatched profiled events", unmatched_body(c), nav="Unmatched"),
            Section("profile", "Profile", profile_body(c))]


# -- formatting ---------------------------------------------------------------------------------


def _pct(x: Optional[float]) -> str:
    return "-" if x is None else pct(x)


def _signed(x: Optional[float]) -> str:
    return "-" if x is None else f"{x:+.1%}"


def _error(r: Row) -> Optional[float]:
    return None if r.projected_s is None or not r.measured_s else (r.projected_s - r.measured_s) / r.measured_s


def _bound_class(bound: str) -> str:
    return f"b-{bound}" if bound in BOUND_COLOURS else "cx"


# -- sections -----------------------------------------------------------------------------------


def stats_body(c: Correlation) -> str:
    s = c.stats
    rows = [
        ("rows in the statistics", f"{s['rows']} (a row: a graph node, or the nodes one profiled kernel covers)"),
        ("median |error|", _pct(s.get("median_ape"))),
        ("p90 |error|", _pct(s.get("p90_ape"))),
        ("within 2x", _pct(s.get("within_2x")) + " of the rows have projected / measured in [0.5, 2]"),
        ("time-weighted error", _pct(s.get("time_weighted_error")) + " (sum |p - m| / sum m: big nodes dominate)"),
        ("whole-model error", f"{_signed(s.get('whole_model_error'))}: projected {seconds(s.get('projected_total_s'))} "
                              f"vs measured {seconds(s.get('measured_total_s'))} (sum of every profiled node's median, "
                              "matched or not)"),
        (f"rows measured >= 20 us ({s.get('rows_20us', 0)})", "median |error| " + _pct(s.get("median_ape_20us"))),
        ("unmatched profiled time", f"{seconds(s.get('unmatched_s'))} in {len(c.unmatched)} events"),
        ("projected, not measured", f"{seconds(s.get('unmeasured_projected_s'))} in {len(c.unmeasured)} nodes"),
        ("model_run median", seconds(s.get("run_median_s"))),
    ]
    if s.get("measured_kernel_s") is not None:
        rows.append(("device time per step", f"{_signed(s.get('device_error'))}: projected device "
                                             f"{seconds(s.get('projected_device_s'))} vs measured kernels "
                                             f"{seconds(s.get('measured_kernel_s'))}"))
    if s.get("measured_wall_s") is not None:
        rows.append((f"wall time per step ({s.get('mode')} mode)",
                     f"{_signed(s.get('wall_error'))}: projected {seconds(s.get('projected_wall_s'))} vs measured "
                     f"{seconds(s.get('measured_wall_s'))} ({s.get('wall_measured_as')})"))
    warn = ""
    if c.unknown:
        warn = (f'<p class="warn">{len(c.unknown)} rows hold a node without a cost rule and are left out of the '
                f"statistics: {esc(', '.join(c.unknown))}.</p>\n")
    return (kv_table((k, esc(v)) for k, v in rows) + warn
            + "<p class=note>Error of a row: (projected - measured) / measured; |error| is its absolute value. "
            "Percentiles use linear interpolation.</p>\n")


def scatter_body(c: Correlation) -> str:
    pts = plotted_rows(c)
    if not pts:
        return "<p>No row has both a projected and a measured time above 0: nothing to plot.</p>\n" + _left_off(c, pts)
    resolution_s = ORT_RESOLUTION_S if c.measured_by == "onnxruntime" else 0.0
    drawn_x = spread_x(pts, resolution_s)
    values = [v for r in pts for v in (r.projected_s, r.measured_s, drawn_x[id(r)])]
    lo, hi = min(values) / 1.5, max(values) * 1.5
    x = LogScale(lo, hi, _BOX[0], _BOX[2])
    y = LogScale(lo, hi, _BOX[3], _BOX[1])
    lo, hi = x.lo, x.hi
    width, height = _BOX[2] + 150, _BOX[3] + 50
    svg = [f'<svg class="gp-scatter correlate" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
           f'role="img" data-expected-points="{len(pts)}" xmlns="http://www.w3.org/2000/svg">',
           f"<title>Projected vs measured time of {len(pts)} rows</title>",
           loglog_frame(x, y, f"measured time ({c.measured_by} median)", f"projected time ({c.target})", fmt=seconds)]

    def xy(a: float, b: float) -> str:
        return f"{x(a):.1f},{y(b):.1f}"

    band = [xy(lo, 2 * lo), xy(hi / 2, hi), xy(hi, hi), xy(hi, hi / 2), xy(2 * lo, lo), xy(lo, lo)]
    svg.append(f'<polygon class="band" points="{" ".join(band)}"><title>within 2x: projected / measured in '
               "[0.5, 2]</title></polygon>")
    svg.append(f'<path class="diag x2" d="M{xy(lo, 2 * lo)} L{xy(hi / 2, hi)} M{xy(2 * lo, lo)} L{xy(hi, hi / 2)}"/>')
    svg.append(f'<path class="diag" d="M{xy(lo, lo)} L{xy(hi, hi)}"><title>y = x: projected = measured</title></path>')
    svg.append(f'<text class="lab" x="{x.px1 + 6:.1f}" y="{y(hi) + 4:.1f}">y = x</text>'
               f'<text class="lab" x="{x.px1 + 6:.1f}" y="{y(hi / 2) + 4:.1f}">projected = measured / 2</text>'
               f'<text class="lab" x="{x(hi / 2) - 4:.1f}" y="{y(hi) - 4:.1f}" text-anchor="middle">'
               "projected = 2 x measured</text>")
    for r in sorted(pts, key=lambda r: (-r.measured_s, r.name)):
        nodes = f" ({len(r.nodes)} nodes: {', '.join(r.nodes)})" if len(r.nodes) > 1 else ""
        tip = (f"{r.name}{nodes}\nop {r.op}, {r.bound}-bound\nprojected {seconds(r.projected_s)}, measured "
               f"{seconds(r.measured_s)}\nerror {_signed(_error(r))} (projected / measured {r.ratio:.3g})\n"
               f"profiled as {', '.join(r.events)}")
        cx = x(drawn_x[id(r)])
        svg.append(f'<circle class="pt {_bound_class(r.bound)}" cx="{cx:.1f}" cy="{y(r.projected_s):.1f}" '
                   f'r="5"><title>{esc(tip)}</title></circle>')
    svg.append("</svg>")
    bounds = sorted({r.bound for r in pts})
    legend = "".join(f'<span class="sw {_bound_class(b)}"></span>{esc(b)}-bound' for b in bounds)
    shared = Counter(r.measured_s for r in pts)
    spread = sum(n for n in shared.values() if n > 1) if resolution_s else 0
    note = (f"<p class=note>{c.measured_by} records whole microseconds: {spread} points that share a measured value "
            f"with another are spread evenly across +-{_SPREAD / 2 * resolution_s * 1e6:g} us of it, in order of projected "
            "time, so none hides another; the tooltip gives the recorded value.</p>\n") if spread else ""
    return ("\n".join(svg) + f'\n<div class="legend">Colour: the bound of the row\'s slowest projected node; '
            "above the diagonal the projection is slower than measured, below it faster; the shaded band is "
            f"within 2x. Hover a point for its row. {legend}</div>\n" + note + _left_off(c, pts))


def _left_off(c: Correlation, pts: list[Row]) -> str:
    placed = {id(r) for r in pts}
    off = [r for r in c.rows if id(r) not in placed]
    head = f"<p class=note>{len(pts)} of {len(c.rows)} matched rows are plotted."
    if not off:
        return head + "</p>\n"
    why: dict[str, list[Row]] = {}
    for r in off:
        key = ("have no projection (a node without a cost rule; not in the statistics)" if r.projected_s is None else
               "are projected 0 (free views: no work, no time; in the statistics at error -100%)"
               if not r.projected_s else "are measured 0 (not in the statistics)")
        why.setdefault(key, []).append(r)
    items = [f"<li>{len(rows)} {key}, measured {seconds(sum(r.measured_s for r in rows))} in all: "
             + ", ".join(f"<span class=mono>{esc(r.name)}</span> ({esc(r.op)})" for r in rows) + "</li>"
             for key, rows in why.items()]
    return head + " Left off (a log axis has no place for them):</p>\n<ul class=note>" \
        + "".join(items) + "</ul>\n"


def rows_table(rows: list[Row], caption: str) -> str:
    cols = [("node", False), ("op", False), ("bound", False), ("projected", True), ("measured", True),
            ("projected / measured", True), ("error", True), ("profiled as", False), ("graph nodes", True)]
    body = [[(esc(r.name), None, "mono wrap"), (esc(r.op), None, "mono"), (esc(r.bound), None, ""),
             (seconds(r.projected_s), sort_key(r.projected_s), ""), (seconds(r.measured_s), sort_key(r.measured_s), ""),
             ("-" if r.ratio is None else f"{r.ratio:.3g}", sort_key(r.ratio), ""),
             (_signed(_error(r)), sort_key(_error(r)), ""), (esc(", ".join(r.events)), None, "mono wrap"),
             (str(len(r.nodes)), sort_key(len(r.nodes)), "")] for r in rows]
    return table(cols, body, caption=esc(caption) + "; click a header to sort")


def outliers_body(c: Correlation, top: int) -> str:
    rows = c.outliers(top)
    if not rows:
        return "<p>No row has a projection.</p>\n"
    return rows_table(rows, f"the {len(rows)} rows with the largest |projected - measured|")


def unmatched_body(c: Correlation) -> str:
    out = []
    if c.unmatched:
        ranked = sorted(c.unmatched, key=lambda u: (-u.get("measured_s", 0.0), str(u.get("name"))))
        rows = [[(esc(u.get("name", "-")), None, "mono wrap"), (esc(u.get("op", "-")), None, "mono"),
                 (seconds(u.get("measured_s")), sort_key(u.get("measured_s")), ""),
                 (esc(u.get("reason", "-")), None, "wrap")] for u in ranked]
        out.append(f"<p>{len(c.unmatched)} profiled events map to no graph node; their "
                   f"{seconds(c.stats.get('unmatched_s'))} is in the measured total, not in the rows.</p>\n"
                   + table([("profiled node", False), ("op", False), ("measured", True), ("reason", False)], rows))
    else:
        out.append("<p>None: every profiled event maps to a graph node.</p>\n")
    out.append(f"<h3>Projected nodes with no profiled event ({len(c.unmeasured)})</h3>\n")
    if c.unmeasured:
        ranked = sorted(c.unmeasured, key=lambda u: (-(u.get("projected_s") or 0.0), str(u.get("name"))))
        rows = [[(esc(u.get("name", "-")), None, "mono wrap"), (esc(u.get("op", "-")), None, "mono"),
                 (seconds(u.get("projected_s")), sort_key(u.get("projected_s")), ""), (esc(u.get("bound", "-")), None, "")]
                for u in ranked]
        out.append(f"<p class=note>{esc(c.unmeasured_cause)}: their projected time is in the "
                   "projected total only.</p>\n"
                   + table([("node", False), ("op", False), ("projected", True), ("bound", False)], rows))
    else:
        out.append("<p>None: every graph node that does work was measured.</p>\n")
    return "".join(out)


def profile_body(c: Correlation) -> str:
    p = c.profile
    rows = [("model", esc(c.model)), ("target", esc(c.target))]
    rows += [(k, esc(v)) for k, v in p.items() if v is not None]
    runs, warm = p.get("runs"), p.get("warmup_runs")
    if isinstance(runs, int) and isinstance(warm, int):
        rows.append(("measured runs", f"{runs - warm} (median per node; {warm} warm-up skipped)"))
    return kv_table(rows)
