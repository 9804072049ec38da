"""The report object: every figure the renderers show, computed once from counts and times.

Renderers (table, JSON, CSV, HTML) only read a `Report`, and never import this module at run time: the
schema name, the conventions and `NodeRecord` live in `records` (re-exported here), and the methods below
import the renderers on first use. Units are SI and carried in names
(`latency_s`, `bytes_read`); totals of latency cover counted nodes only, and
`latency_is_lower_bound` says when unknown nodes were left out. `findings` are what the graph itself says
about speed on any target: GEMMs whose rows are not 16-byte aligned (graphperf/alignment.py), in graph order.

Latency comes from the execution model (graphperf/execution.py): a node's `device_s` is its kernel
time, `host_s` the host time to issue it, `start_s` when the device starts it, and `latency_s` the
wall time it adds (end of its kernel minus the end of the previous one), so node latencies, the
by-op and by-module roll-ups and `latency_by_bound_s` all sum to `totals["latency_s"]`, the
simulated wall time of `totals["mode"]`.

The methods are conveniences over the renderers (`to_json`, `to_csv`, `to_dict`, `save` by file
extension), a node table
for pandas (`to_pandas`, only when pandas is installed: an ImportError saying so otherwise) and a
before/after diff (`compare`); none of them changes the report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional

from ..alignment import misaligned_findings
from ..count import NodeCount
from ..execution import Execution, simulate
from ..ir import Graph
from ..project import NodeTime
from .memory_fit import memory_fit
from .records import CONVENTIONS, SCHEMA, SERIALIZED_FIELDS, NodeRecord

__all__ = ["NodeRecord", "Report", "Rollup", "build_report", "SCHEMA"]  # NodeRecord, SCHEMA: from records.py

class Rollup(list):
    """A roll-up table: rows (dicts) sorted by latency. Read it as a list (`report.by_op[0]`) or
    call it (`report.by_op()`), which returns a copy of the rows."""

    def __call__(self) -> list[dict[str, Any]]:
        return [dict(row) for row in self]


@dataclass(repr=False)
class Report:
    """Every figure the renderers show for one model on one target, computed once (`build_report`).

    Build one with `graphperf.analyze` or `graphperf.analyze_graph`. Units are SI and in the names;
    latencies cover counted nodes only (``totals["latency_is_lower_bound"]`` says when unknown nodes were
    left out). The methods render it (`to_json`, `to_csv`, `to_dict`, `to_pandas`, `save`) or diff it
    (`compare`); none changes it.

    Attributes
    ----------
    model : dict
        What was analysed: name, frontend, source, canonicalization summary, passes run.
    target : Target
        The device it was projected on.
    nodes : list of NodeRecord
        One row per node, in graph order.
    totals : dict
        Sums and facts over the graph: ``nodes``, ``coverage``, ``flops``, ``bytes``, ``weight_bytes``,
        ``peak_activation_bytes``, ``fits``, ``latency_s`` (the execution model's wall time), ``mode``,
        ``latency_by_bound_s``, ``unknown_ops``, ...
    by_op, by_module : Rollup
        Roll-ups by canonical op and by module pattern (``layers.*.attn``), sorted by latency; each
        row a dict (``name``, ``nodes``, ``flops``, ``bytes``, ``latency_s``, ``time_share``, ...).
    unknown_ops : dict
        op -> number of nodes no rule covers.
    conventions : dict
        The counting conventions the figures follow, by topic.
    findings : list of dict
        What the graph says about speed on any target (misaligned GEMMs), in graph order.

    Example
    -------
    >>> import graphperf
    >>> report = graphperf.analyze("gpt2", config="tiny")
    >>> report.totals["coverage"], report.totals["nodes"] == len(report.nodes)
    (1.0, True)
    >>> report.by_op[0]["name"] in {r.op for r in report.nodes}
    True
    >>> report.to_dict()["schema"]
    'graphperf.report/1'
    """

    model: dict[str, Any]
    target: Any  # graphperf.target.Target
    nodes: list[NodeRecord]
    totals: dict[str, Any]
    by_op: list[dict[str, Any]]
    by_module: list[dict[str, Any]]
    unknown_ops: dict[str, int]
    conventions: dict[str, str] = field(default_factory=lambda: dict(CONVENTIONS))
    findings: list[dict[str, Any]] = field(default_factory=list)  # misaligned_gemm, ... (graphperf/alignment.py)

    def __post_init__(self) -> None:
        self.by_op = Rollup(self.by_op)
        self.by_module = Rollup(self.by_module)

    def __repr__(self) -> str:
        from .units import seconds, si

        t = self.totals
        target = getattr(self.target, "tag", "?")
        return (f"<graphperf Report {self.model.get('name', '?')!r} on {target}: "
                f"{t.get('nodes', len(self.nodes))} nodes, {si(t.get('flops'), 'FLOP')}, {si(t.get('bytes'), 'B')} "
                f"moved, latency {seconds(t.get('latency_s'))}, coverage {t.get('coverage', 0.0):.1%}>")

    def save(self, path) -> str:
        """Write the report to `path` in the format its extension names (.json, .csv, .html, .txt for the
        terminal table), as ``-o`` does; returns the format. UsageError for another extension."""
        from .save import save_report

        return save_report(self, path)

    def to_dict(self) -> dict[str, Any]:
        """The JSON report (schema graphperf.report/1) as Python objects."""
        from .json_report import report_to_dict

        return report_to_dict(self)

    def to_json(self) -> str:
        """The JSON report, byte-identical to `graphperf analyze --format json`."""
        from .json_report import to_json

        return to_json(self)

    def to_csv(self) -> str:
        """One row per node, the columns of `graphperf analyze --format csv`."""
        from .csv_report import to_csv

        return to_csv(self)

    def to_pandas(self):
        """A pandas DataFrame with one row per node (the CSV columns; shapes stay lists).

        Raises ImportError with an install hint when pandas is not installed.
        """
        try:
            import pandas
        except ImportError as exc:
            raise ImportError("Report.to_pandas() needs pandas, which is not installed: pip install pandas "
                              "(Report.to_csv() and Report.to_json() need nothing extra)") from exc
        columns = list(SERIALIZED_FIELDS)
        return pandas.DataFrame([[getattr(r, c) for c in columns] for r in self.nodes], columns=columns)

    def compare(self, other: "Report"):
        """`other` relative to this report: a `ReportDiff` of totals and per-op figures (after - before)."""
        from .diff import ReportDiff

        return ReportDiff.of(self, other)

    def _repr_html_(self) -> str:
        """Notebook display: the HTML report (`graphperf.report.html`) as a self-styled fragment."""
        from .html import render_html

        return render_html(self, fragment=True)


def _group(records: list[NodeRecord], key) -> list[dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for r in records:
        g = groups.setdefault(key(r), {"name": key(r), "nodes": 0, "flops": 0, "matrix_flops": 0,
                                       "bytes": 0, "latency_s": 0.0, "unknown_nodes": 0})
        g["nodes"] += 1
        if r.flops is None:
            g["unknown_nodes"] += 1
            continue
        g["flops"] += r.flops
        g["matrix_flops"] += r.matrix_flops
        g["bytes"] += r.bytes_read + r.bytes_written
        g["latency_s"] += r.latency_s
    total_s = sum(g["latency_s"] for g in groups.values()) or 1.0
    for g in groups.values():
        g["time_share"] = g["latency_s"] / total_s
    return sorted(groups.values(), key=lambda g: (-g["latency_s"], g["name"]))


_LAYER_INDEX = re.compile(r"\.\d+(?=\.|$)")


def module_pattern(path: str) -> str:
    """`layers.3.attn` -> `layers.*.attn`: rolls repeated layers into one row."""
    return _LAYER_INDEX.sub(".*", path) if path else "(top)"


def build_report(graph: Graph, counts: list[NodeCount], times: list[NodeTime], target,
                 model: dict[str, Any], peak_activation_bytes: int, execution: Optional[Execution] = None) -> Report:
    """The report of `times` queued as `execution` says (default: `simulate(times, target)`, graph mode).

    Parameters
    ----------
    graph : Graph
        The graph that was counted.
    counts : list of NodeCount
        `graphperf.count`'s result for `graph`.
    times : list of NodeTime
        `graphperf.project`'s result for `counts`.
    target : Target
        The device `times` were projected on.
    model : dict
        The report's ``model`` section.
    peak_activation_bytes : int
        The graph's activation peak (`graphperf.passes.peak_activation_memory`).
    execution : Execution, optional
        The execution model's queue of `times` (graphperf/execution.py).

    Returns
    -------
    Report

    Example
    -------
    >>> import graphperf
    >>> from graphperf.passes import canonicalize, peak_activation_memory
    >>> from graphperf.report.model import build_report
    >>> graph, model = graphperf.load_graph(graphperf.ModelRequest("gpt2", config="tiny"))
    >>> graph = canonicalize(graph).graph
    >>> target = graphperf.load_target("h100")
    >>> counts = graphperf.count(graph)
    >>> times = graphperf.project(graph, counts, target)
    >>> report = build_report(graph, counts, times, target, model, peak_activation_memory(graph).bytes)
    >>> report.totals["mode"], len(report.nodes) == len(graph)
    ('graph', True)
    """
    if execution is None:
        execution = simulate(times, target, ops=[nc.node.op.name for nc in counts])
    values = graph.values
    records: list[NodeRecord] = []
    unknown: dict[str, int] = {}
    ex_host, ex_start, ex_latency, ex_bound = execution.host_s, execution.start_s, execution.latency_s, execution.bound
    for i, (nc, t) in enumerate(zip(counts, times)):
        node, cost = nc.node, nc.cost
        ins = [str(values[n].type) if n is not None else "-" for n in node.inputs]
        outs = [str(values[n].type) for n in node.outputs]
        dtype = graph.node_dtype(node)
        if cost is None:
            unknown[str(node.op)] = unknown.get(str(node.op), 0) + 1
            records.append(NodeRecord(node.name, str(node.op), node.source_op, node.module, dtype, ins, outs,
                                      None, None, None, None, None, None, None, None, None, "unknown",
                                      unknown_reason=nc.reason))
            continue
        moved = cost.bytes_read + cost.bytes_written
        records.append(NodeRecord(
            node.name, str(node.op), node.source_op, node.module, dtype, ins, outs,
            cost.flops, cost.matrix_flops, cost.transcendentals, cost.bytes_read, cost.bytes_written,
            (cost.flops / moved) if moved else None, t.compute_s, t.memory_s, ex_latency[i], ex_bound[i],
            t.matrix_dtype, "", t.device_s, ex_host[i], ex_start[i], t.peak))
    known = [r for r in records if r.flops is not None]
    weight_bytes = sum(v.type.nbytes for v in graph.weights() if v.type is not None)
    input_bytes = sum(v.type.nbytes for v in graph.values.values()
                      if v.kind == "input" and v.type is not None)
    ex = execution.totals
    totals = {
        "nodes": len(records),
        "counted_nodes": len(known),
        "coverage": (len(known) / len(records)) if records else 1.0,
        "flops": sum(r.flops for r in known),
        "matrix_flops": sum(r.matrix_flops for r in known),
        "transcendentals": sum(r.transcendentals for r in known),
        "bytes": sum(r.bytes_read + r.bytes_written for r in known),
        "bytes_read": sum(r.bytes_read for r in known),
        "bytes_written": sum(r.bytes_written for r in known),
        "weight_bytes": weight_bytes,
        "parameters": int(graph.meta.get("parameter_count", sum(v.type.numel for v in graph.weights() if v.type))),
        "input_bytes": input_bytes,
        "peak_activation_bytes": peak_activation_bytes,
        **memory_fit(weight_bytes, peak_activation_bytes, getattr(target, "memory_gb", None)),
        "latency_s": ex["latency_s"],
        "mode": ex["mode"],
        "device_s": ex["device_s"],
        "host_s": ex["host_s"],
        "idle_s": ex["idle_s"],
        "launch_bound": ex["launch_bound"],
        "graph_mode_latency_s": ex["graph_mode_latency_s"],
        "kernels": ex["kernels"],
        "compute_s": sum(r.compute_s for r in known),
        "memory_s": sum(r.memory_s for r in known),
        "latency_by_bound_s": execution.latency_by_bound_s(),
        "latency_is_lower_bound": bool(unknown),
        "unknown_ops": dict(sorted(unknown.items())),
    }
    return Report(
        model=model, target=target, nodes=records, totals=totals,
        by_op=_group(records, lambda r: r.op),
        by_module=_group(records, lambda r: module_pattern(r.module)),
        unknown_ops=dict(sorted(unknown.items())),
        findings=misaligned_findings(graph),
    )
