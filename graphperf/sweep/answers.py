"""What a sweep answers beyond its rows: the Pareto fronts the spec names and each workload's sensitivity to each
swept knob, and the HTML page that shows them (`graphperf sweep ... --html page.html`).

- A Pareto front of columns (x, y), both minimized, is the set of points no other point beats on both: sorted
  by x, each keeps the lowest y seen so far (ties on x keep the lowest y).
- The sensitivity of a workload's latency to a target field is its elasticity at the baseline (the target's own
  value b): ``(ln t(b(1+h)) - ln t(b(1-h))) / (ln(1+h) - ln(1-h))`` with h = 1%, each t projected as a sweep
  point is (the same functions as `graphperf analyze`), the other shape axes at their first value.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np

from ..report.units import seconds
from .spec import SHAPE_AXES, SweepSpec

__all__ = ["pareto_front", "elasticities", "render_sweep_html", "STEP"]

#: The relative step of the elasticity's central difference.
STEP = 0.01


def pareto_front(rows: Sequence[dict[str, Any]], x: str, y: str) -> list[dict[str, Any]]:
    """The rows no other row beats on both `x` and `y` (both minimized), sorted by `x`. A `SweepTable` is
    sorted as columns (the same order and ties), so only the front's rows are built."""
    from .table import SweepTable

    if isinstance(rows, SweepTable):
        xs, ys = (np.asarray(rows.columns[c], dtype=np.float64) for c in (x, y))
        order = np.lexsort((ys, xs))  # by x, then y; stable, as sorted() is
        ordered = ys[order]
        best = np.concatenate(([np.inf], np.minimum.accumulate(ordered)[:-1]))
        return [rows[int(i)] for i in order[ordered < best]]
    ordered = sorted(rows, key=lambda r: (float(r[x]), float(r[y])))
    front, best = [], math.inf
    for r in ordered:
        if float(r[y]) < best:
            front.append(r)
            best = float(r[y])
    return front


def elasticities(spec: SweepSpec, cache: Optional[str] = None) -> list[dict[str, Any]]:
    """One row per workload: {workload, target, mode, FIELD: elasticity, ...} for every numeric target.FIELD
    axis whose baseline the target states (module docstring)."""
    from ..target import load_target
    from .evaluate import evaluate, prepare

    knobs = [k for k in spec.axes if k.startswith("target.")
             and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in spec.axes[k])]
    if not knobs:
        return []
    target = load_target(str(spec.axes["target"][0]))
    mode = str(spec.axes.get("mode", ["graph"])[0])
    out = []
    for workload in spec.axes["workload"]:
        shape = {k: (workload if k == "workload" else spec.axes[k][0]) for k in SHAPE_AXES if k in spec.axes}
        prep = prepare(shape, cache)
        row: dict[str, Any] = {"workload": workload, "target": target.name, "mode": mode}
        for knob in knobs:
            field = knob.removeprefix("target.")
            base = getattr(target, field)
            if base is None:
                row[knob] = None
                continue
            lat = [evaluate(prep, target.with_overrides(**{field: base * f}), mode)["latency_s"]
                   for f in (1 + STEP, 1 - STEP)]
            row[knob] = (math.log(lat[0]) - math.log(lat[1])) / (math.log(1 + STEP) - math.log(1 - STEP))
        out.append(row)
    return out


def render_sweep_html(spec: SweepSpec, rows: Sequence[dict[str, Any]], sensitivity: Sequence[dict[str, Any]]) -> str:
    """The page: the grid, each Pareto front (a line over x and its points), and the elasticity table."""
    from ..report.html_assets import Section, document, esc, kv_table, line_chart, sort_key, table

    axes = ", ".join(f"{k} ({len(v)})" for k, v in spec.axes.items())
    sections = [Section("grid", "Sweep", kv_table([("spec", esc(spec.source)), ("axes", esc(axes)),
                                                   ("points", esc(f"{len(rows):,}"))]))]
    for i, (x, y) in enumerate(spec.pareto):
        front = pareto_front(rows, x, y)
        fmt = seconds if y.endswith("_s") else (lambda v: f"{v:g}")
        chart = line_chart([float(r[x]) for r in front], [("front", "pareto", [float(r[y]) for r in front])], x, y,
                           y_fmt=fmt)
        shown = [k for k in spec.axes if len(spec.axes[k]) > 1 and k not in (x, y)]
        cols = [(x, True), (y, True)] + [(k, False) for k in shown]
        body = [[(esc(f"{float(r[x]):g}"), sort_key(float(r[x])), ""), (esc(fmt(float(r[y]))), sort_key(float(r[y])), "")]
                + [(esc(str(r[k])), None, "") for k in shown] for r in front]
        note = (f"<p class=note>{len(front)} of {len(rows):,} points are on the front: no other point has both a lower "
                f"{esc(x)} and a lower {esc(y)}.</p>\n")
        sections.append(Section(f"pareto-{i}", f"Pareto front: {y} against {x}", note + chart + table(cols, body)))
    if sensitivity:
        knobs = [k for k in sensitivity[0] if k.startswith("target.")]
        cols = [("workload", False), ("target", False), ("mode", False)] + [(f"d ln t / d ln {k}", True) for k in knobs]
        body = [[(esc(str(r[c])), None, "") for c in ("workload", "target", "mode")]
                + [(("-" if r[k] is None else f"{r[k]:+.3f}"), sort_key(r[k]), "") for k in knobs] for r in sensitivity]
        note = ("<p class=note>Elasticity of the projected latency at the target's own value of each field (central "
                f"difference, +-{STEP:.0%}): -1 means the latency falls in proportion to the field (bound by it), 0 "
                "that the field does not matter there.</p>\n")
        sections.append(Section("sensitivity", "Sensitivity", note + table(cols, body)))
    return document(f"graphperf sweep: {spec.source}", sections, "graphperf sweep table")
