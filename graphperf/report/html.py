"""HTML rendering of one or several `Report`s: one self-contained page, checked in a real browser.

The page holds a roofline chart for the target, time breakdowns by op and by module, the top
nodes (sortable), totals and coverage, unknown ops, the model, the target spec with its sources
and the counting conventions; with several reports (one per target, same model) it opens with a
side-by-side comparison and then gives each target its own sections.

Guarantees:

- one file, nothing fetched at view time: CSS and JS are inline, charts are SVG drawn here;
- the static parts (totals, tables, every chart point with a ``<title>`` tooltip) need no
  JavaScript; the inline script only sorts tables and records a self-check (`html_assets`);
- every string from the model or the target (node names, module paths, shapes, sources) is
  escaped with `html.escape`;
- deterministic: the same reports give the same bytes (no clock, fixed number formatting);
- it reads the report and computes no costs: the only derived figures are display ratios
  (achieved FLOP/s = flops / latency_s, shares), the target's ceilings (peak x efficiency) and which
  roofline points a fixed time sets (`fixed_time`: bound overhead, or a kernel floor of the target
  above the node's work), drawn as rings with the target fields named in their legend.

Adding a section: write a function returning a `html_assets.Section` from the building blocks in
`html_assets` (`hbar_chart`, `paired_bars`, `line_chart`, `table`, `LogScale` + `loglog_frame`) and
pass the sections to `render_sections` (or `html_assets.document` with the page's JSON schema); report/html_whatif.py (before/after bars per fusion group,
refused rewrites, sweep chart) and report/html_correlate.py (projected-vs-measured log-log scatter
with y=x and the 2x band, error statistics) are built that way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from collections.abc import Iterable
from typing import TYPE_CHECKING, Optional, Sequence, Union

from ..execution import host_costs
from ..kernel_time import kernel_params
from ..target import FIGURE_FIELDS
from .html_assets import (BOUND_COLOURS, OP_PALETTE, LogScale, Section, bar_cell, document, esc, hbar_chart,
                          kv_table, loglog_frame, pct, sort_key, table)
from .memory_fit import does_not_fit_note, fit_line
from .records import SCHEMA, NodeRecord
from .units import seconds, si

if TYPE_CHECKING:
    from .model import Report

__all__ = ["render_html", "render_sections", "report_sections", "comparison_section", "ceilings", "placeable",
           "DEFAULT_TOP"]

DEFAULT_TOP = 100
MODULE_ROWS = 40
_SHAPES_MAX = 160


# -- entry points -------------------------------------------------------------------------------


def render_html(reports: Union[Report, Sequence[Report]], *, top: int = DEFAULT_TOP, fragment: bool = False) -> str:
    """The page for one report, or a comparison page for several (same model, one per target)."""
    reports = list(reports) if isinstance(reports, Iterable) else [reports]  # a Report is not iterable
    if not reports:
        raise ValueError("render_html needs at least one report")
    first = reports[0]
    colours = op_colours(first)
    model = str(first.model.get("description") or first.model.get("name", "model"))
    if len(reports) == 1:
        title = f"{model} on {first.target.title}"
        sections = report_sections(first, top=top, colours=colours)
    else:
        title = f"{model} on " + ", ".join(r.target.name for r in reports)
        sections = [comparison_section(reports)]
        for r in reports:
            subs = report_sections(r, top=top, colours=colours, prefix=f"{r.target.name}-", level=3, shared=False)
            sections.append(Section(r.target.name, f"{r.target.title} ({r.target.name})",
                                    "".join(s.html() for s in subs), nav=r.target.name))
        sections += [model_section(first), conventions_section(first)]
    return render_sections(f"graphperf: {title}", sections, fragment=fragment)


def render_sections(title: str, sections: Sequence[Section], *, fragment: bool = False) -> str:
    """Header, navigation, the sections and a footer, wrapped in the self-contained page."""
    return document(title, sections, SCHEMA, fragment=fragment)


def report_sections(report: Report, *, top: int = DEFAULT_TOP, colours: Optional[dict[str, str]] = None,
                    prefix: str = "", level: int = 2, shared: bool = True) -> list[Section]:
    """Every section of one report; `shared=False` leaves out the model and conventions."""
    colours = colours if colours is not None else op_colours(report)
    out = [
        Section(prefix + "totals", "Totals and coverage", totals_body(report), level),
        Section(prefix + "roofline", "Roofline", roofline_body(report, colours), level),
        Section(prefix + "breakdown", "Where the time goes", breakdown_body(report, colours), level),
        Section(prefix + "top", "Top nodes", top_nodes_body(report, top), level),
        Section(prefix + "unknown", "Unknown ops", unknown_body(report), level),
        Section(prefix + "target", "Target", target_body(report.target), level),
    ]
    if shared:
        out += [model_section(report), conventions_section(report)]
    return out


# -- small helpers ------------------------------------------------------------------------------


def _shapes(items: list[str]) -> str:
    text = ", ".join(items)
    return text if len(text) <= _SHAPES_MAX else text[:_SHAPES_MAX - 3] + "..."


def placeable(r: NodeRecord) -> bool:
    """A node the log-log roofline can show: counted, with FLOPs, bytes and time all > 0."""
    return bool(r.flops) and bool((r.bytes_read or 0) + (r.bytes_written or 0)) and bool(r.latency_s)


def op_colours(report: Report) -> dict[str, str]:
    """CSS colour class per op: the ops with placeable nodes ranked by time take the palette."""
    plotted = {r.op for r in report.nodes if placeable(r)}
    ranked = [g["name"] for g in report.by_op if g["name"] in plotted]
    return {op: (f"c{i}" if i < len(OP_PALETTE) else "cx") for i, op in enumerate(ranked)}


# -- totals, unknown ops, model, target, conventions ---------------------------------------------


def totals_body(report: Report) -> str:
    t = report.totals
    lower = " <strong>(lower bound: nodes without a cost rule are left out)</strong>" \
        if t["latency_is_lower_bound"] else ""
    by_bound = ", ".join(f"{esc(b)} {seconds(s)} ({pct(s / t['latency_s'])})"
                         for b, s in t["latency_by_bound_s"].items() if s > 0 and t["latency_s"] > 0) or "-"
    unknown = ", ".join(f"{esc(op)} x{n}" for op, n in t["unknown_ops"].items()) or "none"
    rows = [
        ("projected latency", esc(does_not_fit_note(t)) + seconds(t["latency_s"]) + lower),
        ("time by bound", by_bound),
        ("sum of compute / memory time", f"{seconds(t['compute_s'])} / {seconds(t['memory_s'])}"),
        ("FLOPs", f"{si(t['flops'], 'FLOP')} ({si(t['matrix_flops'], 'FLOP')} on matrix units)"),
        ("transcendentals", si(t["transcendentals"], "")),
        ("bytes moved", f"{si(t['bytes'], 'B')} (read {si(t['bytes_read'], 'B')}, "
                        f"written {si(t['bytes_written'], 'B')})"),
        ("weights", f"{si(t['weight_bytes'], 'B')} ({si(t['parameters'], '')} parameters)"),
        ("graph inputs", si(t["input_bytes"], "B")),
        ("peak live activations", si(t["peak_activation_bytes"], "B")),
        ("memory", esc(fit_line(t))),
        ("coverage", f"{pct(t['coverage'])}: {t['counted_nodes']} of {t['nodes']} nodes have a cost rule"),
        ("unknown ops", unknown),
    ]
    return kv_table(rows)


def unknown_body(report: Report) -> str:
    if not report.unknown_ops:
        return "<p>None: every node has a cost rule (coverage 100%).</p>\n"
    reasons: dict[str, str] = {}
    for r in report.nodes:
        if r.flops is None:
            reasons.setdefault(r.op, r.unknown_reason)
    rows = [[(esc(op), None, "mono"), (str(n), sort_key(n), ""), (esc(reasons.get(op, "")), None, "wrap")]
            for op, n in report.unknown_ops.items()]
    return ('<p class="warn">These nodes have no cost rule: no FLOPs, bytes or time are invented for them, '
            "so the projected latency is a lower bound. Add a rule (README: 'Adding a cost rule').</p>\n"
            + table([("op", False), ("nodes", True), ("reason", False)], rows))


def _flat(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_flat(v)}" for k, v in value.items()) or "-"
    if isinstance(value, (list, tuple)):
        return ", ".join(_flat(v) for v in value) or "-"
    return str(value)


def model_section(report: Report) -> Section:
    return Section("model", "Model", kv_table((k, esc(_flat(v))) for k, v in report.model.items()))


#: What a boolean target field means, said as yes / no in the target table.
_SWITCHES = {
    "calibrated": ("measured on the device by graphperf calibrate", "datasheet figures"),
    "allow_tf32": ("float32 matmuls run on TF32 units",
                   "float32 matmuls run on the fp32 vector peak (PyTorch's default)"),
    "allow_tf32_conv": ("float32 convolutions run on TF32 units (PyTorch's cuDNN default)",
                        "float32 convolutions run on the fp32 vector peak"),
}


def switch_text(name: str, value: bool) -> str:
    """A boolean target field for people: "yes: <what it means>" or "no: <what happens instead>"."""
    yes, no = _SWITCHES.get(name, ("", ""))
    word, meaning = ("yes", yes) if value else ("no", no)
    return f"{word}: {meaning}" if meaning else word


def target_body(target) -> str:
    spec = target.to_dict()
    switches = [k for k, v in spec.items() if isinstance(v, bool)]  # calibrated, allow_tf32, ...
    head = [(k, esc(switch_text(k, spec[k]) if k in switches else _flat(spec[k])))
            for k in ("name", "label", "vendor", "kind", *switches, "reference_id", "path")
            if spec.get(k) not in (None, "")]
    if spec.get("overridden"):
        head.append(("overridden (--set)", esc(", ".join(spec["overridden"]))))
    rows = [[(esc(f), None, "mono"), (esc(f"{spec[f]:g}"), sort_key(spec[f]), ""),
             (esc(spec["sources"].get(f, "")), None, "wrap"), (esc(spec["derived"].get(f, "")), None, "wrap")]
            for f in FIGURE_FIELDS if spec.get(f) is not None]
    refs = "".join(f"<li><span class=mono>{esc(k)}</span>: {esc(v)}</li>" for k, v in spec["references"].items())
    notes = f"<pre>{esc(spec['notes'])}</pre>\n" if spec.get("notes") else ""
    return (kv_table(head) + "<p class=note>Every throughput is dense (no sparsity); units are in the field names "
            "(TFLOP/s, TOP/s, GB/s = 1e9 B/s, us). Sources and derivations as in the target file.</p>\n"
            + table([("field", False), ("value", True), ("source", False), ("derived", False)], rows, sortable=False)
            + notes + (f"<details><summary>References ({len(spec['references'])})</summary><ul class=note>{refs}</ul>"
                       "</details>\n" if refs else ""))


_CHART_NOTES = {
    "roofline": "each counted node is a point at (FLOPs / bytes moved, FLOPs / projected latency); solid lines "
                "are the target's dense peaks, dashed lines the peaks times the target's efficiencies (the roof "
                "the projection uses); rings are nodes whose time is set by a fixed time (the launch gap or the "
                "target's kernel floor), not by a roof: they sit below the roofs",
}


def conventions_section(report: Report) -> Section:
    items = {**report.conventions, **_CHART_NOTES}
    body = "<dl>\n" + "".join(f"<dt><strong>{esc(k)}</strong></dt><dd>{esc(v)}</dd>\n" for k, v in items.items()) + \
        "</dl>\n"
    return Section("conventions", "Conventions", body)


# -- breakdowns and top nodes --------------------------------------------------------------------


def _rollup(rows: list[dict], colours: Optional[dict[str, str]], limit: int, what: str) -> str:
    largest = max((g["latency_s"] for g in rows), default=0.0)
    cols = [(what, False), ("nodes", True), ("FLOPs", True), ("bytes", True), ("latency", True),
            ("share", True), ("time", False)]
    shown = rows[:limit]
    body = [[(esc(g["name"]), None, "mono"),
             (str(g["nodes"]) + (f" ({g['unknown_nodes']} unknown)" if g["unknown_nodes"] else ""), sort_key(g["nodes"]), ""),
             (si(g["flops"], "FLOP"), sort_key(g["flops"]), ""), (si(g["bytes"], "B"), sort_key(g["bytes"]), ""),
             (seconds(g["latency_s"]), sort_key(g["latency_s"]), ""), (pct(g["time_share"]), sort_key(g["time_share"]), ""),
             bar_cell(g["latency_s"], largest, "c0" if colours is None else colours.get(g["name"], "cx"))]
            for g in shown]
    rest = rows[limit:]
    foot = ""
    if rest:
        foot = (f"{len(rest)} more ({sum(g['nodes'] for g in rest)} nodes, "
                f"{pct(sum(g['time_share'] for g in rest))} of the time): see the JSON report")
    return table(cols, body, foot=foot)


def breakdown_body(report: Report, colours: dict[str, str]) -> str:
    t = report.totals
    total = t["latency_s"]
    segs, legend = [], []
    for b, s in t["latency_by_bound_s"].items():
        if s <= 0 or total <= 0 or b not in BOUND_COLOURS:
            continue
        segs.append(f'<span class="b-{esc(b)}" style="width:{100 * s / total:.2f}%" title="{esc(b)} {seconds(s)}"></span>')
        legend.append(f'<span class="sw b-{esc(b)}"></span>{esc(b)}-bound {seconds(s)} ({pct(s / total)})')
    stack = f'<div class="stack">{"".join(segs)}</div><div class="legend">{"".join(legend)}</div>\n' if segs else ""
    return ("<h4>By bound</h4>\n" + stack
            + "<h4>By op</h4>\n" + _rollup(report.by_op, colours, 10 ** 9, "op")
            + "<h4>By module (repeated layers rolled up)</h4>\n" + _rollup(report.by_module, None, MODULE_ROWS, "module"))


def top_nodes_body(report: Report, top: int) -> str:
    known = [r for r in report.nodes if r.latency_s]  # counted and taking time (not free views)
    ranked = sorted(known, key=lambda r: (-r.latency_s, r.name))[:top]
    total = report.totals["latency_s"] or 1.0
    cols = [("#", True), ("node", False), ("op", False), ("module", False), ("inputs -> outputs", False),
            ("FLOPs", True), ("bytes", True), ("FLOP/B", True), ("achieved FLOP/s", True), ("latency", True),
            ("share", True), ("bound", False)]
    rows = []
    for i, r in enumerate(ranked, 1):
        moved = r.bytes_read + r.bytes_written
        rate = r.flops / r.latency_s if r.latency_s else None
        rows.append([(str(i), str(i), ""), (esc(r.name), None, "mono wrap"), (esc(r.op), None, "mono"),
                     (esc(r.module or "-"), None, "mono"),
                     (esc(f"{_shapes(r.inputs)} -> {_shapes(r.outputs)}"), None, "mono wrap"),
                     (si(r.flops, "FLOP"), sort_key(r.flops), ""), (si(moved, "B"), sort_key(moved), ""),
                     ("-" if r.intensity is None else f"{r.intensity:.3g}", sort_key(r.intensity), ""),
                     ("-" if rate is None else si(rate, "FLOP/s"), sort_key(rate), ""),
                     (seconds(r.latency_s), sort_key(r.latency_s), ""), (pct(r.latency_s / total), sort_key(r.latency_s), ""),
                     (esc(r.bound), None, "")])
    caption = (f"the {len(ranked)} slowest of the {len(known)} nodes that take time, by projected latency"
               + ("; the JSON and CSV reports hold every node" if len(known) > len(ranked) else "")
               + "; click a header to sort")
    return table(cols, rows, caption=caption)


# -- charts ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ceiling:
    label: str  # what runs at this roof, e.g. "bf16/fp16 matrix"
    flops_per_s: float
    bytes_per_s: float  # the bandwidth this roof pairs with: peak, or peak x memory_efficiency
    efficiency: Optional[float]  # None for a peak; the factor applied for an achievable roof
    detail: str  # the target fields it comes from

    @property
    def derated(self) -> bool:
        return self.efficiency is not None

    @property
    def text(self) -> str:
        value = si(self.flops_per_s, "FLOP/s")
        return f"{self.label} peak {value}" if self.efficiency is None else f"{self.label} x {self.efficiency:g} = {value}"


_MATRIX_FIELDS = ("matrix_fp4_tflops", "matrix_fp8_tflops", "matrix_int8_tops", "matrix_bf16_tflops",
                  "matrix_fp16_tflops", "matrix_tf32_tflops", "matrix_fp32_tflops", "matrix_fp64_tflops")
_DTYPE_SHORT = {"float64": "fp64", "float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}


def _short(f: str) -> str:
    return f.removeprefix("matrix_").removesuffix("_tflops").removesuffix("_tops")


def ceilings(report: Report) -> list[Ceiling]:
    """Peak roofs for every matrix peak and the fp32 vector peak (equal peaks merged), and achievable
    roofs (peak x efficiency) for the matrix peaks the nodes used and for the fp32 vector peak."""
    t = report.target
    bw, bw_eff = t.hbm_gbps * 1e9, t.hbm_gbps * 1e9 * t.memory_efficiency
    peaks: dict[float, list[str]] = {}
    for f in _MATRIX_FIELDS:
        if getattr(t, f) is not None:
            peaks.setdefault(getattr(t, f) * 1e12, []).append(f)
    peaks.setdefault(t.vector_fp32_tflops * 1e12, []).append("vector_fp32_tflops")
    out = []
    for value, fields in sorted(peaks.items(), reverse=True):
        mat = "/".join(_short(f) for f in fields if f.startswith("matrix_"))
        label = " + ".join(x for x in ((mat + " matrix") if mat else "",
                                       "fp32 vector" if "vector_fp32_tflops" in fields else "") if x)
        out.append(Ceiling(label, value, bw, None, ", ".join(f"{f} = {getattr(t, f):g}" for f in fields)))
    achievable = []
    used = {(p.field, p.dtype if p.on_vector_unit else "", p.efficiency_field): p
            for p in (r.peak for r in report.nodes) if p is not None}
    for key in sorted(used):
        p = used[key]  # the peak and efficiency the projection ran these nodes at (graphperf/peaks.py)
        family = "" if p.efficiency_field == "matrix_efficiency" else f" ({p.family})"
        if not p.on_vector_unit:
            achievable.append(Ceiling(f"{_short(p.field)} matrix{family}", p.rate_flops, bw_eff, p.efficiency,
                                      f"{p.field} {getattr(t, p.field):g} x {p.efficiency_field}"))
        else:  # no matrix unit for the dtype: the vector unit runs the matmul, at the matrix efficiency
            dtype = p.dtype
            achievable.append(Ceiling(f"{_DTYPE_SHORT.get(dtype, dtype)} matmul on vector{family}",
                                      p.rate_flops, bw_eff, p.efficiency,
                                      f"vector peak for {dtype} x {p.efficiency_field}"))
    achievable.append(Ceiling("fp32 vector", t.vector_fp32_tflops * 1e12 * t.vector_efficiency, bw_eff,
                              t.vector_efficiency, f"vector_fp32_tflops {t.vector_fp32_tflops:g} x vector_efficiency"))
    return out + sorted(achievable, key=lambda c: (-c.flops_per_s, c.label))


W, H = 1210, 560
_BOX = (96, 16, 900, 506)  # plot area: left, top, right, bottom; ceiling labels go right of it


def roofline_body(report: Report, colours: dict[str, str]) -> str:
    t = report.target
    roofs = ceilings(report)
    pts = [r for r in report.nodes if placeable(r)]
    ridges = [c.flops_per_s / c.bytes_per_s for c in roofs]
    xs = [r.intensity for r in pts] + ridges
    ys = [r.flops / r.latency_s for r in pts] + [c.flops_per_s for c in roofs]
    x = LogScale(min(xs) / 2, max(xs) * 2, _BOX[0], _BOX[2])
    y = LogScale(min(ys) / 3, max(ys) * 2, _BOX[3], _BOX[1])
    svg = [f'<svg class="gp-scatter roofline" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" '
           f'data-expected-points="{len(pts)}" xmlns="http://www.w3.org/2000/svg">',
           f"<title>Roofline of {esc(t.label)}: {len(pts)} nodes</title>",
           loglog_frame(x, y, "arithmetic intensity (FLOP per byte moved)", "achieved FLOP/s (FLOPs / projected latency)",
                        "", "FLOP/s")]
    labels = []
    for c in roofs:
        ridge = c.flops_per_s / c.bytes_per_s
        x0 = max(x.lo, y.lo / c.bytes_per_s)
        xr = min(ridge, x.hi)
        d = ""
        if x0 < xr:
            d = f"M{x(x0):.1f},{y(c.bytes_per_s * x0):.1f} L{x(xr):.1f},{y(c.bytes_per_s * xr):.1f} "
        if ridge < x.hi:
            d += ("L" if d else "M") + f"{x(max(ridge, x.lo)):.1f},{y(c.flops_per_s):.1f} L{x.px1:.1f},{y(c.flops_per_s):.1f}"
        cls = "roof derated" if c.derated else "roof"
        svg.append(f'<path class="{cls}" d="{d}"><title>{esc(c.text)} ({esc(c.detail)}); '
                   f'ridge at {ridge:.3g} FLOP/B</title></path>')
        labels.append([y(c.flops_per_s) + 4, y(c.flops_per_s), c.text, cls.replace("roof", "lab")])
    labels.sort(key=lambda l: l[0])
    for i in range(1, len(labels)):  # stack labels that would overlap, with a leader line to their roof
        labels[i][0] = max(labels[i][0], labels[i - 1][0] + 12)
    for py, ly, text, cls in labels:
        svg.append(f'<path class="grid" d="M{x.px1:.1f},{ly:.1f} L{x.px1 + 8:.1f},{py - 4:.1f}"/>'
                   f'<text class="{cls}" x="{x.px1 + 10:.1f}" y="{py:.1f}">{esc(text)}</text>')
    for bw, derated in ((t.hbm_gbps * 1e9, False), (t.hbm_gbps * 1e9 * t.memory_efficiency, True)):
        xa = max(x.lo, y.lo / bw) * 3.0
        if xa * bw < y.hi and xa < x.hi:
            angle = math.degrees(math.atan2(y(bw * xa * 10) - y(bw * xa), x(xa * 10) - x(xa)))
            text = (f"HBM x {t.memory_efficiency:g} = {si(bw, 'B/s')}" if derated else f"HBM {si(bw, 'B/s')} peak")
            svg.append(f'<text class="lab{" derated" if derated else ""}" transform="translate({x(xa):.1f} '
                       f'{y(bw * xa) + (12 if derated else -4):.1f}) rotate({angle:.1f})">{esc(text)}</text>')
    total = report.totals["latency_s"] or 1.0
    longest = max((r.latency_s for r in pts), default=1.0)
    floors = floor_fields(t)
    fixed: dict[str, list[str]] = {"launch": [], "floor": []}  # the target field that set each ring's time
    for r in sorted(pts, key=lambda r: (-r.latency_s, r.name)):
        rate = r.flops / r.latency_s
        radius = 2.5 + 9.5 * math.sqrt(r.latency_s / longest)
        kind, field, why = fixed_time(r, floors)
        if kind:
            fixed[kind].append(field)
        tip = (f"{r.name}\n{r.op} ({r.source_op})" + (f" in {r.module}" if r.module else "")
               + f"\n{_shapes(r.inputs)} -> {_shapes(r.outputs)}\n{si(r.flops, 'FLOP')}, "
               f"{si(r.bytes_read + r.bytes_written, 'B')}, {r.intensity:.3g} FLOP/B\n"
               f"{seconds(r.latency_s)} ({pct(r.latency_s / total)}), {r.bound}-bound, {si(rate, 'FLOP/s')}"
               + (f"\n{kind}-bound: {why}" if kind else ""))
        ring = f" ring {kind}" if kind else ""
        svg.append(f'<circle class="pt {colours.get(r.op, "cx")}{ring}" cx="{x(r.intensity):.1f}" cy="{y(rate):.1f}" '
                   f'r="{radius:.1f}"><title>{esc(tip)}</title></circle>')
    svg.append("</svg>")
    return ("\n".join(svg) + "\n" + _legend(pts, colours) + _fixed_legend(report, fixed, floors) + _left_off(report, pts)
            + _roof_table(roofs))


#: The target fields of the size-aware kernel model's fixed device time per kernel class (graphperf/kernel_time.py).
_FLOOR_FIELDS = (("stream", "kernel_floor_us"), ("matrix", "matrix_floor_us"), ("strided", "kernel_floor_strided_us"),
                 ("row", "kernel_floor_row_us"))


def floor_fields(target) -> dict[str, float]:
    """The kernel floors the projection used (`kernel_time.kernel_params`), target field -> seconds: the fields the
    target sets (an unset one takes kernel_floor_us); empty on a plain-roofline target."""
    params = kernel_params(target)
    if params is None:
        return {}
    by_class = {**params.floor_s, "matrix": params.matrix_floor_s}
    return {name: by_class[klass] for klass, name in _FLOOR_FIELDS if getattr(target, name) is not None}


def fixed_time(r: NodeRecord, floors: dict[str, float]) -> tuple[str, str, str]:
    """(kind, target field, why) for a counted node: kind "launch" when the device waited for the launch (the
    report's bound is overhead), "floor" when the fixed kernel floor it ran (one of `floors`, matched by value)
    exceeds its work max(compute_s, memory_s), else ("", "", ""); the FLOP/s these nodes reach is set by a time,
    not by a roof."""
    if r.bound == "overhead":
        wait = r.latency_s - (r.device_s or 0.0)
        return "launch", "launch_overhead_us", f"waited {seconds(wait)} for the launch, ran {seconds(r.device_s)}"
    if not floors or r.device_s is None or r.compute_s is None or r.memory_s is None:
        return "", "", ""
    work = max(r.compute_s, r.memory_s)
    extra = r.device_s - work
    for name, floor_s in floors.items():
        if math.isclose(extra, floor_s, rel_tol=1e-6) and floor_s > work:
            return "floor", name, f"{name} = {floor_s * 1e6:g} us fixed, work {seconds(work)}"
    return "", "", ""


def _fixed_legend(report: Report, fixed: dict[str, list[str]], floors: dict[str, float]) -> str:
    """The legend of the rings: which target figure sets their time, and why no line on the chart shows it."""
    t = report.target
    items = []
    if fixed["launch"]:
        mode = report.totals.get("mode", "graph")
        host_us = host_costs(t, mode).kernel_s * 1e6
        host = {"eager": f"; eager host issue host_eager_us = {host_us:g} us per op",
                "compiled": f"; compiled wrapper compiled_launch_us = {host_us:g} us per kernel"}.get(mode, "")
        items.append(("launch", f"launch-bound ({_nodes(len(fixed['launch']))}): the device waits longer for the launch than the "
                     f"kernel runs: launch_overhead_us = {t.launch_overhead_us:g} us between kernels{host}"))
    if fixed["floor"]:
        figures = ", ".join(f"{name} = {floors[name] * 1e6:g} us ({_nodes(fixed['floor'].count(name))})"
                            for name in floors if name in fixed["floor"])
        items.append(("floor", f"floor-bound ({_nodes(len(fixed['floor']))}): time = the fixed kernel floor, above "
                               f"the node's work: {figures}"))
    if not items:
        return ""
    rings = "".join(f'<span class="sw ring {kind}"></span>{esc(text)}' for kind, text in items)
    return (f'<div class="legend roof-fixed">{rings}<br>Rings: a fixed time t caps '
            "a node at FLOPs / t, which depends on the node's size, not on its intensity, so no line on this chart can "
            "show it; these nodes sit below the roofs by the ratio of that time to their work.</div>\n")


def _nodes(n: int) -> str:
    return f"{n} node" if n == 1 else f"{n} nodes"


def _legend(pts: list[NodeRecord], colours: dict[str, str]) -> str:
    counts: dict[str, int] = {}
    for r in pts:
        counts[r.op] = counts.get(r.op, 0) + 1
    named = [(op, cls) for op, cls in colours.items() if cls != "cx" and op in counts]
    items = "".join(f'<span class="sw {cls}"></span>{esc(op)} ({counts[op]})' for op, cls in named)
    others = sorted(op for op, cls in colours.items() if cls == "cx" and op in counts)
    if others:
        items += ('<span class="sw cx"></span>other: ' + ", ".join(f"{esc(op)} ({counts[op]})" for op in others))
    return ('<div class="legend">Colour: op; area: projected time; hover a point for its node. Solid lines: the '
            "target's dense peaks; dashed: peak x efficiency, the roof the projection uses. "
            f"{items}</div>\n")


def _left_off(report: Report, pts: list[NodeRecord]) -> str:
    reasons = {"unknown": [], "free": [], "no_flops": [], "no_bytes": []}
    for r in report.nodes:
        if placeable(r):
            continue
        if r.flops is None:
            reasons["unknown"].append(r)
        elif r.bound == "free":
            reasons["free"].append(r)
        elif not r.flops:
            reasons["no_flops"].append(r)
        else:
            reasons["no_bytes"].append(r)
    words = {"unknown": "have no cost rule (no figures to place)",
             "free": "are free views or reshapes (no work, no time)",
             "no_flops": "move bytes but do no FLOPs (intensity 0 has no place on a log axis)",
             "no_bytes": "do FLOPs but move no bytes (infinite intensity)"}
    total = report.totals["latency_s"]
    items = []
    for key, nodes in reasons.items():
        if not nodes:
            continue
        ops: dict[str, int] = {}
        for r in nodes:
            ops[r.op] = ops.get(r.op, 0) + 1
        time_s = sum(r.latency_s or 0.0 for r in nodes)
        share = f", {seconds(time_s)} ({pct(time_s / total)} of the time)" if time_s and total else ""
        listed = ", ".join(f"{esc(op)} x{n}" for op, n in sorted(ops.items()))
        items.append(f"<li>{len(nodes)} {words[key]}: {listed}{share}</li>")
    head = f"<p class=note>{len(pts)} of {len(report.nodes)} nodes are plotted."
    if not items:
        return head + "</p>\n"
    return (head + " Left off (they still count in the totals, breakdowns and tables):</p>\n<ul class=note>"
            + "".join(items) + "</ul>\n")


def _roof_table(roofs: list[Ceiling]) -> str:
    rows = [[(esc(c.label), None, ""), ("peak" if c.efficiency is None else f"x {c.efficiency:g}", None, ""),
             (si(c.flops_per_s, "FLOP/s"), sort_key(c.flops_per_s), ""), (si(c.bytes_per_s, "B/s"), sort_key(c.bytes_per_s), ""),
             (f"{c.flops_per_s / c.bytes_per_s:.3g}", sort_key(c.flops_per_s / c.bytes_per_s), ""), (esc(c.detail), None, "wrap")]
            for c in roofs]
    return ("<h4>Ceilings</h4>\n" + table([("roof", False), ("peak or efficiency", False), ("compute", True), ("bandwidth", True),
                                           ("ridge FLOP/B", True), ("from", False)], rows, sortable=False))


# -- several targets ---------------------------------------------------------------------------


def comparison_section(reports: Sequence[Report]) -> Section:
    """Totals per target side by side, latency bars split by bound, and latency per op per target."""
    fastest = min((r.totals["latency_s"] for r in reports if r.totals["latency_s"] > 0), default=1.0)
    cols = [("target", False), ("device", False), ("latency", True), ("vs fastest", True), ("FLOP/s", True),
            ("compute", True), ("memory", True), ("overhead", True), ("matrix peak", True), ("HBM GB/s", True),
            ("eff. m / v / mem", False)]
    rows, bars = [], []
    for r in reports:
        t, tg = r.totals, r.target
        lat = t["latency_s"]
        share = {b: (s / lat if lat else 0.0) for b, s in t["latency_by_bound_s"].items()}
        rate = t["flops"] / lat if lat else None
        rows.append([(f'<a href="#{esc(tg.name)}">{esc(tg.name)}</a>', None, "mono"), (esc(tg.label), None, ""),
                     (seconds(lat) + (" (lower bound)" if t["latency_is_lower_bound"] else "")
                      + (" (does not fit in memory)" if t.get("fits") is False else ""), sort_key(lat), ""),
                     (f"{lat / fastest:.2f}x", sort_key(lat / fastest), ""),
                     ("-" if rate is None else si(rate, "FLOP/s"), sort_key(rate), "")]
                    + [(pct(share.get(b, 0.0)), sort_key(share.get(b, 0.0)), "") for b in ("compute", "memory", "overhead")]
                    + [_peak_used(r), (f"{tg.hbm_gbps:g}", sort_key(tg.hbm_gbps), ""),
                       (f"{tg.matrix_efficiency:.3g} / {tg.vector_efficiency:.3g} / {tg.memory_efficiency:.3g}", None, "")])
        bars.append((tg.name, [(s, f"b-{b}", f"{tg.name}: {b}-bound {seconds(s)}")
                               for b, s in t["latency_by_bound_s"].items() if b in BOUND_COLOURS]))
    legend = "".join(f'<span class="sw b-{b}"></span>{b}-bound' for b in BOUND_COLOURS)
    caption = ("latency: projected; FLOP/s: achieved (FLOPs / latency); compute, memory, overhead: the latency's "
               "share by bound; matrix peak: the TFLOP/s that ran most matrix FLOPs; eff.: the target's matrix, vector "
               "and memory efficiencies; click a header to sort")
    body = (table(cols, rows, caption=caption, fit=True) + "<h4>Projected latency by bound</h4>\n" + hbar_chart(bars)
            + f'<div class="legend">{legend}</div>\n' + "<h4>Latency per op on each target</h4>\n" + _op_matrix(reports))
    same = {r.totals["flops"] for r in reports}
    note = "" if len(same) == 1 else \
        '<p class="warn">The reports do not hold the same FLOPs: they were not made from one graph.</p>\n'
    return Section("comparison", "Targets side by side", note + body)


def _peak_used(report: Report) -> tuple[str, Optional[str], str]:
    """The matrix peak that ran most of the matrix FLOPs, as a table cell."""
    work: dict[str, int] = {}
    peaks = {}
    for r in report.nodes:
        if r.peak is not None and r.matrix_flops:
            work[r.peak.label] = work.get(r.peak.label, 0) + r.matrix_flops
            peaks[r.peak.label] = r.peak
    if not work:
        return ("-", None, "")
    peak = peaks[max(sorted(work), key=lambda k: work[k])]
    if peak.on_vector_unit:
        return (esc(peak.label), None, "")
    return (f"{esc(_short(peak.field))} {peak.peak_flops / 1e12:g} T", sort_key(peak.peak_flops / 1e12), "")


def _op_matrix(reports: Sequence[Report]) -> str:
    per = [{g["name"]: g for g in r.by_op} for r in reports]
    ops = [g["name"] for g in reports[0].by_op]
    cols = [("op", False), ("nodes", True)] + [(r.target.name, True) for r in reports]
    rows = []
    for op in ops[:30]:
        row = [(esc(op), None, "mono"), (str(per[0][op]["nodes"]), sort_key(per[0][op]["nodes"]), "")]
        for p in per:
            g = p.get(op)
            row.append(("-", None, "") if g is None else
                       (f"{seconds(g['latency_s'])} ({pct(g['time_share'])})", sort_key(g["latency_s"]), ""))
        rows.append(row)
    foot = f"{len(ops) - 30} more ops: see each target's breakdown" if len(ops) > 30 else ""
    return table(cols, rows, foot=foot)
