"""Rendering of a what-if (`graphperf.passes.whatif.WhatIfResult`): a terminal table and JSON.

JSON (schema ``graphperf.whatif/1``): ``{"schema", "before": <report>, "after": <report>,
"rewrites": [...], "refused": [...], "flags": [...], "diff": <Report.compare>, "sweep": {...}|null}``;
the two reports are exactly `report_to_dict` of the before and after reports. Renderers only read.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from .json_report import report_to_dict
from .units import seconds, si

__all__ = ["WHATIF_SCHEMA", "whatif_to_dict", "whatif_to_json", "render_whatif", "refused_where"]

WHATIF_SCHEMA = "graphperf.whatif/1"


def whatif_to_dict(result) -> dict[str, Any]:
    return {"schema": WHATIF_SCHEMA, "before": report_to_dict(result.before), "after": report_to_dict(result.after),
            "rewrites": result.rewrites, "refused": result.refused, "flags": result.flags,
            "diff": result.compare().to_dict(), "sweep": result.sweep}


def whatif_to_json(result) -> str:
    return json.dumps(whatif_to_dict(result), indent=1, allow_nan=False) + "\n"


def refused_where(r: dict) -> str:
    """Where a refused candidate sat: `producer -> consumer`, or its group/nodes."""
    if "producer" in r:
        return f"{r['producer']} -> {r['consumer']}"
    if "node" in r:
        return str(r["node"])
    nodes = r.get("nodes") or []
    shown = ", ".join(nodes[:4]) + (f", ... ({len(nodes)} nodes)" if len(nodes) > 4 else "")
    return f"{r['group']!r}: {shown}" if "group" in r else shown


def _ratio(d) -> str:
    return "-" if d.ratio is None else f"x{d.ratio:.3f}"


def render_whatif(result, console: Console, top: int = 10) -> None:
    diff = result.compare()
    t = Table(title=f"what-if: {diff.before['model']} on {diff.before['target']} -> {diff.after['target']}",
              title_justify="left")
    for col in ("total", "before", "after", "after/before"):
        t.add_column(col)
    for key, fmt in (("latency_s", seconds), ("compute_s", seconds), ("memory_s", seconds),
                     ("flops", lambda v: si(v, "FLOP")), ("bytes", lambda v: si(v, "B")),
                     ("weight_bytes", lambda v: si(v, "B")), ("nodes", str)):
        d = diff.totals[key]
        t.add_row(key, fmt(d.before), fmt(d.after), _ratio(d))
    console.print(t)
    ops = Table(title="by op (largest latency change first)", title_justify="left")
    for col in ("op", "nodes", "latency before", "latency after", "bytes before", "bytes after"):
        ops.add_column(col)
    for row in [r for r in diff.by_op if any(d.delta for d in r.figures.values())][:top]:
        ops.add_row(row.op, f"{row['nodes'].before} -> {row['nodes'].after}", seconds(row["latency_s"].before),
                    seconds(row["latency_s"].after), si(row["bytes"].before, "B"), si(row["bytes"].after, "B"))
    console.print(ops)
    for r in result.rewrites:
        if r["rewrite"] == "fuse":
            console.print(f"fusion ({r['rule']}): {r['groups_formed']} groups from {r['nodes_fused']} nodes")
        elif r["rewrite"] == "precision":
            console.print("precision: " + ", ".join(f"{k}={v} ({r['values_changed'][k]} values, "
                                                    f"{si(r['bytes_before'][k], 'B')} -> {si(r['bytes_after'][k], 'B')})"
                                                    for k, v in r["spec"].items()))
        elif r["rewrite"] == "tile":
            nodes = r["nodes"]
            shown = ", ".join(f"{n['node']} {'x'.join(map(str, n['tile']))}" for n in nodes[:3])
            console.print(f"tiling ({r['mode']}): {len(nodes)} nodes tiled" + (f"; e.g. {shown}" if nodes else ""))
        elif r["rewrite"] == "set":
            console.print("target: " + ", ".join(f"{k}={v}" for k, v in r["fields"].items()))
    if result.refused:
        reasons: dict[str, int] = {}
        for r in result.refused:
            reasons[r["kind"]] = reasons.get(r["kind"], 0) + 1
        console.print(f"refused {len(result.refused)} candidates: "
                      + "; ".join(f"{k} x{n}" for k, n in sorted(reasons.items(), key=lambda kv: -kv[1])))
        for r in result.refused[:top]:
            console.print(f"  [{r['rule']}] {refused_where(r)}: {r['reason']}")
    if result.flags:
        console.print(f"no peak: {len(result.flags)} matrix nodes; e.g. {result.flags[0]['reason']}")
    if result.sweep:
        s = Table(title=f"sweep {result.sweep['field']}", title_justify="left")
        for col in (result.sweep["field"], "latency", "compute", "memory", "by bound"):
            s.add_column(col)
        for row in result.sweep["rows"]:
            s.add_row(f"{row['value']:g}", seconds(row["latency_s"]), seconds(row["compute_s"]),
                      seconds(row["memory_s"]),
                      ", ".join(f"{b} {v / row['latency_s']:.0%}" for b, v in row["latency_by_bound_s"].items()
                                if row["latency_s"] > 0))
        console.print(s)
