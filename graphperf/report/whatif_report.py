"""Rendering of a what-if (`graphperf.passes.whatif.WhatIfResult`): a terminal table and JSON.

JSON (schema ``graphperf.whatif/1``): ``{"schema", "before": <report>, "after": <report>,
"rewrites": [...], "refused": [...], "flags": [...], "diff": <Report.compare>, "sweep": {...}|null}``;
the two reports are exactly `report_to_dict` of the before and after reports. Renderers only read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional

from rich.console import Console
from rich.markup import escape

from .diff import Delta
from .json_report import report_to_dict
from .table import Col, fit_table
from .units import count_of, delta_seconds, seconds, si

__all__ = ["WHATIF_SCHEMA", "whatif_to_dict", "whatif_to_json", "render_whatif", "refused_where", "GroupChange",
           "group_changes", "by_change", "fuse_records", "pad_summary"]

WHATIF_SCHEMA = "graphperf.whatif/1"


@dataclass(frozen=True)
class GroupChange:
    rule: str
    node: str  # the fused node
    members: list[str]
    member_ops: list[str]
    before_s: Optional[float]
    after_s: Optional[float]
    note: str  # why a figure is unknown, or ""
    inputs: int
    outputs: int
    bytes_before: Optional[int] = None  # the members' bytes moved, each a kernel of its own
    bytes_after: Optional[int] = None  # the fused kernel's

    @property
    def delta(self) -> Optional[float]:
        return Delta(self.before_s, self.after_s).delta

    @property
    def bytes_saved(self) -> Optional[int]:
        """Bytes the fused kernel no longer moves (the intermediates' round trips); None when unknown."""
        return None if self.bytes_before is None or self.bytes_after is None else self.bytes_before - self.bytes_after


def fuse_records(result) -> list[dict]:
    return [r for r in result.rewrites if r.get("rewrite") == "fuse"]


def group_changes(result) -> list[GroupChange]:
    """Every fusion group of every rule, in the order the rules ran, with its before and after latency:
    before = the sum of its members' latencies in the before report (a member an earlier rule fused
    counts as that group's before; a member without a latency makes it unknown, never 0), after = its
    fused node's latency in the after report (unknown when a later rule fused it again)."""
    before: dict[str, Optional[float]] = {r.name: r.latency_s for r in result.before.nodes}
    after = {r.name: r.latency_s for r in result.after.nodes}
    moved = {r.name: None if r.flops is None else r.bytes_read + r.bytes_written for r in result.before.nodes}
    moved_after = {r.name: None if r.flops is None else r.bytes_read + r.bytes_written for r in result.after.nodes}
    fused_again: dict[str, str] = {}
    for rec in fuse_records(result):
        for g in rec.get("groups", []):
            for m in g.get("members", []):
                fused_again[m] = f"fused again by rule {rec.get('rule', '?')} into {g.get('node', '?')}"
    out = []
    for rec in fuse_records(result):
        rule = str(rec.get("rule", "?"))
        for g in rec.get("groups", []):
            members = list(g.get("members", []))
            missing = [m for m in members if before.get(m) is None]
            b = None if missing or not members else sum(before[m] for m in members)
            node = str(g.get("node", "?"))
            before[node] = b
            bb = None if any(moved.get(m) is None for m in members) or not members else sum(moved[m] for m in members)
            moved[node] = bb
            a = after.get(node)
            notes = []
            if missing:
                notes.append("before unknown: " + ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
                             + " have no latency in the before report")
            if a is None:
                notes.append(fused_again.get(node, "after unknown: the fused node has no latency in the after report"))
            out.append(GroupChange(rule, node, members, list(g.get("member_ops", [])), b, a, "; ".join(notes),
                                   len(g.get("inputs", [])), len(g.get("outputs", [])), bb,
                                   moved_after.get(node) if a is not None else None))
    return out


def by_change(rows: list[GroupChange]) -> list[GroupChange]:
    return sorted(rows, key=lambda g: (g.delta is None, -abs(g.delta or 0.0), g.node))



def whatif_to_dict(result) -> dict[str, Any]:
    """The ``graphperf.whatif/1`` document: both reports, the rewrites, the refusals, the diff, every fused group
    with its members and its time and bytes before and after (``fused_groups``), and the sweep."""
    groups = [{"node": g.node, "rule": g.rule, "members": g.members, "member_ops": g.member_ops,
               "before_s": g.before_s, "after_s": g.after_s, "bytes_before": g.bytes_before,
               "bytes_after": g.bytes_after, "bytes_saved": g.bytes_saved, "note": g.note}
              for g in group_changes(result)]
    return {"schema": WHATIF_SCHEMA, "before": report_to_dict(result.before), "after": report_to_dict(result.after),
            "rewrites": result.rewrites, "refused": [_plain(r) for r in result.refused], "flags": result.flags,
            "diff": result.compare().to_dict(), "fused_groups": groups, "sweep": result.sweep}


def _plain(refusal) -> dict[str, Any]:
    """A refusal as JSON writes it: a `passes.result.Refusal` through its `to_dict`, a plain dict as it is."""
    return refusal.to_dict() if hasattr(refusal, "to_dict") else refusal


def whatif_to_json(result) -> str:
    return json.dumps(whatif_to_dict(result), indent=1, allow_nan=False) + "\n"


def pad_summary(r: dict) -> str:
    """One line for a padding rewrite (passes/pad.py): each size, the values padded, the extra work."""
    sizes = "; ".join(f"{s['size']} -> {s['padded_size']} ({len(s['values'])} values: "
                      + ", ".join(v["name"] for v in s["values"][:3]) + (" ..." if len(s["values"]) > 3 else "")
                      + (f"; stops at {len(s['boundaries'])} views" if s["boundaries"] else "") + ")"
                      for s in r["sizes"])
    return (f"padding ({r['mode']}): {sizes or 'nothing padded'}; adds {si(r['extra_flops'], 'FLOP')}, "
            f"{si(r['extra_bytes'], 'B')} moved, {si(r['extra_weight_bytes'], 'B')} of weights")


def refused_where(r: dict) -> str:
    """Where a refused candidate sat: `producer -> consumer`, or its group/nodes (a padding size: the size)."""
    if "producer" in r:
        return f"{r['producer']} -> {r['consumer']}"
    if "node" in r:
        return str(r["node"])
    if "size" in r and "nodes" not in r:
        return f"size {r['size']}"
    nodes = r.get("nodes") or []
    shown = ", ".join(nodes[:4]) + (f", ... ({len(nodes)} nodes)" if len(nodes) > 4 else "")
    return f"{r['group']!r}: {shown}" if "group" in r else shown


def _ratio(d) -> str:
    return "-" if d.ratio is None else f"x{d.ratio:.3f}"


def render_whatif(result, console: Console, top: int = 10) -> None:
    """The what-if as terminal tables laid out for the console's width (`fit_table`): totals, ops and fused
    groups before and after with the latency change (`delta_seconds`: float noise is 0), the sweep."""
    diff = result.compare()
    width = console.width
    rows = []
    for key, fmt in (("latency_s", seconds), ("device_s", seconds), ("host_s", seconds), ("idle_s", seconds),
                     ("compute_s", seconds), ("memory_s", seconds),
                     ("flops", lambda v: si(v, "FLOP")), ("bytes", lambda v: si(v, "B")),
                     ("weight_bytes", lambda v: si(v, "B")), ("nodes", str), ("kernels", str)):
        d = diff.totals[key]
        rows.append((key, fmt(d.before), fmt(d.after), _ratio(d)))
    console.print(fit_table((Col("total"), Col("before", True), Col("after", True), Col("after/before", True)), rows,
                            width, title=f"what-if: {diff.before['model']} on {diff.before['target']} -> "
                                         f"{diff.after['target']} ({result.after.totals.get('mode', 'graph')} mode)",
                            title_justify="left"))
    cols = (Col("op"), Col("nodes", True), Col("latency before", True), Col("latency after", True),
            Col("latency change", True), Col("bytes before", True, drop=2), Col("bytes after", True, drop=1))
    rows = [(row.op, f"{row['nodes'].before} -> {row['nodes'].after}", seconds(row["latency_s"].before),
             seconds(row["latency_s"].after), delta_seconds(row["latency_s"].delta), si(row["bytes"].before, "B"),
             si(row["bytes"].after, "B"))
            for row in [r for r in diff.by_op if any(d.delta for d in r.figures.values())][:top]]
    console.print(fit_table(cols, rows, width, title="by op (largest latency change first)", title_justify="left"))
    groups = by_change(group_changes(result))
    if groups:
        cols = (Col("group"), Col("rule", drop=1, min_width=8), Col("members", min_width=16),
                Col("latency before", True), Col("latency after", True), Col("latency change", True),
                Col("bytes saved", True, drop=2))
        rows = [(g.node, g.rule, "+".join(g.member_ops), seconds(g.before_s), seconds(g.after_s),
                 delta_seconds(g.delta), si(g.bytes_saved, "B")) for g in groups[:top]]
        console.print(fit_table(cols, rows, width, title=f"by fused group (largest latency change first, "
                                                         f"{min(top, len(groups))} of {len(groups)})",
                                title_justify="left"))
    for r in result.rewrites:
        if r["rewrite"] == "fuse":
            console.print(f"fusion ({r['rule']}): {count_of(r['groups_formed'], 'group')} from "
                          f"{count_of(r['nodes_fused'], 'node')}")
        elif r["rewrite"] == "precision":
            console.print("precision: " + ", ".join(f"{k}={v} ({count_of(r['values_changed'][k], 'value')}, "
                                                    f"{si(r['bytes_before'][k], 'B')} -> {si(r['bytes_after'][k], 'B')})"
                                                    for k, v in r["spec"].items()))
        elif r["rewrite"] == "tile":
            nodes = r["nodes"]
            shown = ", ".join(f"{n['node']} {'x'.join(map(str, n['tile']))}" for n in nodes[:3])
            console.print(f"tiling ({r['mode']}): {count_of(len(nodes), 'node')} tiled" + (f"; e.g. {shown}" if nodes else ""))
        elif r["rewrite"] == "pad":
            console.print(pad_summary(r))
        elif r["rewrite"] == "set":
            console.print("target: " + ", ".join(f"{k}={v}" for k, v in r["fields"].items()))
    if result.refused:
        reasons: dict[str, int] = {}
        for r in result.refused:
            reasons[r["kind"]] = reasons.get(r["kind"], 0) + 1
        console.print(f"refused {count_of(len(result.refused), 'candidate')}: "
                      + "; ".join(f"{k} x{n}" for k, n in sorted(reasons.items(), key=lambda kv: -kv[1])))
        for r in result.refused[:top]:
            console.print(escape(f"  [{r['rule']}] {refused_where(r)}: {r['reason']}"))  # [rule] is not markup
    if result.flags:
        console.print(f"no peak: {len(result.flags)} matrix nodes; e.g. {result.flags[0]['reason']}")
    if result.sweep:
        field = result.sweep["field"]
        cols = (Col(field, True), Col("latency", True), Col("device", True, drop=2), Col("idle", True, drop=1),
                Col("compute", True), Col("memory", True), Col("by bound", min_width=16))
        rows = [(f"{row['value']:g}", seconds(row["latency_s"]), seconds(row.get("device_s")),
                 seconds(row.get("idle_s")), seconds(row["compute_s"]), seconds(row["memory_s"]),
                 ", ".join(f"{b} {v / row['latency_s']:.0%}" for b, v in row["latency_by_bound_s"].items()
                           if row["latency_s"] > 0))
                for row in result.sweep["rows"]]
        console.print(fit_table(cols, rows, width, title=f"sweep {field} ({result.sweep.get('mode', 'graph')} mode)",
                                title_justify="left"))
