"""Terminal rendering with rich: totals, coverage, top nodes, by-op and by-module roll-ups, unknown ops, findings."""

from __future__ import annotations

from rich.console import Console, Group
from rich.table import Table

from .memory_fit import does_not_fit_note, fit_line
from .model import Report
from .units import seconds, si

__all__ = ["launch_bound_note", "render_table"]


def _totals(report: Report) -> Table:
    t = report.totals
    table = Table(title=f"{report.model.get('description', report.model.get('name'))} on {report.target.label}",
                  show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    lower = " (lower bound: unknown ops excluded)" if t["latency_is_lower_bound"] else ""
    table.add_row("projected latency", does_not_fit_note(t) + seconds(t["latency_s"]) + lower + f" ({t['mode']} mode)")
    table.add_row("device / host / idle", f"device {seconds(t['device_s'])}, host issue {seconds(t['host_s'])}, "
                                          f"device idle {seconds(t['idle_s'])}, wall {seconds(t['latency_s'])}")
    note = launch_bound_note(t)
    if note:
        table.add_row("launch-bound", note)
    shares = ", ".join(f"{b} {s / t['latency_s']:.0%}" for b, s in t["latency_by_bound_s"].items()
                       if t["latency_s"] > 0 and s > 0)
    table.add_row("time by bound", shares or "-")
    table.add_row("FLOPs", f"{si(t['flops'], 'FLOP')} ({si(t['matrix_flops'], 'FLOP')} on matrix units)")
    table.add_row("transcendentals", si(t["transcendentals"], ""))
    table.add_row("bytes moved", si(t["bytes"], "B"))
    table.add_row("weights", f"{si(t['weight_bytes'], 'B')} ({si(t['parameters'], '')} parameters)")
    table.add_row("peak live activations", si(t["peak_activation_bytes"], "B"))
    table.add_row("memory", fit_line(t))
    table.add_row("coverage", f"{t['coverage']:.1%} of {t['nodes']} nodes have a cost rule")
    if t["unknown_ops"]:
        table.add_row("unknown ops", ", ".join(f"{op} x{n}" for op, n in t["unknown_ops"].items()))
    return table


def launch_bound_note(totals: dict) -> str:
    """One line when the device idles more than half the wall: by how much, and what a CUDA graph would take."""
    if not totals.get("launch_bound") or not totals["latency_s"]:
        return ""
    line = f"device idle {totals['idle_s'] / totals['latency_s']:.0%} of the wall"
    graph_s = totals["graph_mode_latency_s"]
    if totals["mode"] != "graph" and 0 < graph_s < totals["latency_s"]:
        how = "--mode graph" if totals["mode"] == "eager" else "torch.compile mode='reduce-overhead'"
        line += (f"; a CUDA graph ({how}) would take {seconds(graph_s)} instead of "
                 f"{seconds(totals['latency_s'])} ({totals['latency_s'] / graph_s:.1f}x)")
    return line


def _rollup(title: str, rows: list[dict], limit: int) -> Table:
    table = Table(title=title, title_justify="left")
    for col in ("name", "nodes", "FLOPs", "bytes", "latency", "share"):
        table.add_column(col, justify="left" if col == "name" else "right")
    for g in rows[:limit]:
        table.add_row(g["name"], str(g["nodes"]), si(g["flops"], "FLOP"), si(g["bytes"], "B"),
                      seconds(g["latency_s"]), f"{g['time_share']:.1%}")
    return table


def _top_nodes(report: Report, limit: int) -> Table:
    table = Table(title=f"top {limit} nodes by projected latency", title_justify="left")
    for col in ("node", "op", "module", "output", "FLOPs", "bytes", "FLOP/B", "device", "latency", "bound"):
        table.add_column(col, justify="right" if col in ("FLOPs", "bytes", "FLOP/B", "device", "latency") else "left",
                         no_wrap=True)
    known = [r for r in report.nodes if r.latency_s is not None]
    for r in sorted(known, key=lambda r: (-r.latency_s, r.name))[:limit]:
        table.add_row(r.name, r.op, r.module or "-", ",".join(r.outputs), si(r.flops, "FLOP"),
                      si(r.bytes_read + r.bytes_written, "B"),
                      "-" if r.intensity is None else f"{r.intensity:.3g}", seconds(r.device_s), seconds(r.latency_s),
                      r.bound)
    return table


def _findings(report: Report, limit: int) -> Table:
    """The misaligned GEMMs (graphperf/alignment.py): up to `limit` nodes and one --pad that fixes them all."""
    found = [f for f in report.findings if f["kind"] == "misaligned_gemm"]
    pads: dict[int, int] = {}
    for f in found:
        for p in f["pad"]:
            pads[p["size"]] = max(pads.get(p["size"], 1), p["multiple"])
    more = f"; {len(found) - limit} more in --format json" if len(found) > limit else ""
    table = Table(title=f"{len(found)} misaligned GEMM{'' if len(found) == 1 else 's'}: rows not a multiple of 16 bytes "
                        "(GPU kernels fall back to unvectorized loads)", title_justify="left",
                  caption="pad with: graphperf whatif MODEL --pad " + ",".join(f"{s}={m}" for s, m in pads.items()) + more,
                  caption_justify="left")
    for col in ("node", "op", "module", "misaligned"):
        table.add_column(col, no_wrap=col != "misaligned")
    for f in found[:limit]:
        table.add_row(f["node"], f["op"], f["module"] or "-", "; ".join(f["dims"]))
    return table


def render_table(report: Report, console: Console, top: int = 10) -> None:
    parts = [_totals(report), _rollup("by op", report.by_op, top),
             _rollup("by module (layers rolled up)", report.by_module, top), _top_nodes(report, top)]
    if report.findings:
        parts.append(_findings(report, top))
    console.print(Group(*parts))
