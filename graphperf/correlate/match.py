"""Join a measured onnxruntime profile with graphperf's projection of the same ONNX model.

Guarantees:
- A profiled node maps to the report nodes of the ONNX nodes it covers (see `reader.onnx_nodes_of`):
  an ONNX node becomes the graph node(s) capture made of it (`name`, `name/part`), and a node that
  canonicalization folded into another (a bias Add into its MatMul) becomes that one.
- Profiled nodes and report nodes that share a mapping form one row (union of both), so a fusion on
  either side compares like with like: projected = sum over the row's report nodes, measured = sum
  of its profiled nodes' medians.
- Profiled nodes that map to no report node are listed in `unmatched` with their time, never
  dropped; report nodes that do work and have no profiled node are listed in `unmeasured`; rows
  holding a node without a cost rule are kept out of the statistics and listed in `unknown`.
- A profile that matches no node of the model raises `UsageError` (it is from another model), and so
  does one that `provenance` shows to be of another model, other dims, shapes or dtype; an onnxruntime
  profile's recorded dims are projected at when the caller gives none (`provenance.onnx_profile_dims`).
- The projection is of what onnxruntime runs: its CPU kernels execute Transpose, Split and Slice as
  copies, so the ONNX side is canonicalized with `layout_as_views=False` (they are projected as the
  data movement they are; `graphperf analyze` keeps them as views, what graph compilers make of them).
  Measured on five tiny workloads (benchmarks/RESULTS_CORRELATE.md), this moved 77 of 253 rows
  (9.5% of measured time) off a projection of 0.
- Projections are in an execution mode (graph | eager | compiled; graphperf/execution.py). A row's
  projected figure is what the profiler measured of its nodes: on a GPU trace, their kernels' time,
  so the nodes' `device_s`; on a CPU profile (onnxruntime, a CPU torch.profiler trace), the op's own
  time, which includes its dispatch, so `device_s` + the larger of the mode's `host_s` and the
  target's per-kernel gap. In ``compiled`` mode, captured nodes
  map to the fused node that holds them.
- Whole-step statistics beside the per-row ones: the measured kernel time per step against the
  projected total `device_s` (`device_error`), and the measured step wall time (a torch.profiler
  trace's ``ProfilerStep#N`` span, as recorded: the profiler inflates host time; onnxruntime's
  ``model_run``) against the simulated wall `latency_s` of the mode (`wall_error`).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Optional

from ..errors import UsageError
from ..execution import FUSED_MODES
from .events import aten_name
from .provenance import check_kineto_trace, onnx_profile_dims
from .reader import Profile, onnx_nodes_of, read_profile
from .stats import error_stats

__all__ = ["Row", "Correlation", "correlate_onnx", "correlate_kineto", "correlate", "match_kineto_ops", "SCHEMA"]

SCHEMA = "graphperf.correlate/1"


@dataclass
class Row:
    name: str  # the first report node of the row
    op: str
    bound: str
    nodes: list[str]  # report nodes
    events: list[str]  # profiled (onnxruntime) node names
    projected_s: Optional[float]
    measured_s: float

    @property
    def ratio(self) -> Optional[float]:
        return self.projected_s / self.measured_s if self.projected_s is not None and self.measured_s else None


@dataclass
class Correlation:
    model: str
    target: str
    profile: dict[str, Any]
    rows: list[Row]
    unmatched: list[dict[str, Any]]  # profiled nodes mapped to no report node
    unmeasured: list[dict[str, Any]]  # report nodes with work and no profiled node
    unknown: list[str]  # rows left out of the statistics: a node without a cost rule
    stats: dict[str, Any] = field(default_factory=dict)
    records: dict[str, Any] = field(default_factory=dict, repr=False)  # report node name -> NodeRecord

    @property
    def measured_by(self) -> str:
        """What measured the rows: "onnxruntime" or "torch.profiler"."""
        return "torch.profiler" if self.profile.get("format") == "kineto" else "onnxruntime"

    @property
    def unmeasured_cause(self) -> str:
        """Why projected nodes usually have no measured counterpart, for this kind of profile."""
        if self.measured_by == "onnxruntime":
            return "onnxruntime folded or removed them"
        return "no traced op matched them (ops the eager run did not call, or traced under other shapes)"

    def outliers(self, top: int = 10) -> list[Row]:
        rows = [r for r in self.rows if r.projected_s is not None]
        return sorted(rows, key=lambda r: (-abs(r.projected_s - r.measured_s), r.name))[:top]

    def to_dict(self, top: int = 10) -> dict[str, Any]:
        def row(r: Row) -> dict[str, Any]:
            return {**asdict(r), "ratio": r.ratio}

        return {"schema": SCHEMA, "model": self.model, "target": self.target, "profile": self.profile,
                "stats": self.stats, "outliers": [row(r) for r in self.outliers(top)],
                "rows": [row(r) for r in self.rows], "unmatched": self.unmatched,
                "unmeasured": self.unmeasured, "unknown": self.unknown}


def _report_nodes_of_onnx(model, graph, canon) -> dict[str, list[str]]:
    """ONNX node name -> report (canonical graph) node names."""
    captured = {n.name: n for n in graph.nodes}
    kept = {n.name for n in canon.nodes}
    out: dict[str, list[str]] = {}
    for n in model.graph.node:
        producers = {graph.values[o].producer for o in n.output if o in graph.values}
        producers.discard(None)
        names = [c for c in captured if c in producers or any(c.startswith(p + "/") for p in producers)]
        mapped: list[str] = []
        for c in names:
            if c in kept:
                target = c
            else:  # folded by canonicalization into the producer of its output
                outs = captured[c].outputs
                target = canon.values[outs[0]].producer if outs and outs[0] in canon.values else None
            if target and target not in mapped:
                mapped.append(target)
        out[n.name] = mapped
    return out


def correlate_onnx(model_path: str, profile: "str | Profile", target, dims: Optional[Mapping[str, int]] = None,
                   warmup_runs: Optional[int] = None, mode: str = "graph") -> Correlation:
    """Project `model_path` on `target` (a `Target`) in execution `mode` and correlate it with the
    onnxruntime profile."""
    import onnx

    from graphperf.passes import canonicalize

    from ..pipeline import ModelRequest, analyze_graph, load_graph

    prof = profile if isinstance(profile, Profile) else read_profile(profile, warmup_runs)
    dims = onnx_profile_dims(prof.meta, prof.path, model_path, dims)
    graph, info = load_graph(ModelRequest(model_path, dims=dict(dims or {})))
    report = analyze_graph(graph, target, info, layout_as_views=False, mode=mode)
    canon = canonicalize(graph, layout_as_views=False).graph
    model = onnx.load(model_path, load_external_data=False)
    opt_path = prof.optimized_model_path()
    optimized = onnx.load(opt_path, load_external_data=False) if opt_path else None
    covers = onnx_nodes_of(list(prof.nodes), model, optimized)
    to_report = _through_fusion(_report_nodes_of_onnx(model, graph, canon), canon, target, mode)
    records = {r.name: r for r in report.nodes}
    order = {r.name: i for i, r in enumerate(report.nodes)}

    # union-find over report nodes joined by profiled nodes
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    event_nodes: dict[str, list[str]] = {}
    unmatched: list[dict[str, Any]] = []
    for name, timing in prof.nodes.items():
        rnodes = [r for o in covers[name] for r in to_report.get(o, []) if r in records]
        if not rnodes:
            if covers[name] == [name]:
                why = ("a node graphperf folded at capture (constant once dims are bound), or an op with no "
                       "graph node (graphperf captures no node for it)")
            elif covers[name]:
                why = "a fusion of nodes graphperf folded at capture"
            else:
                why = "no node of this name in the model or in the optimized model"
            unmatched.append({"name": name, "op": timing.op_name, "measured_s": timing.median_us * 1e-6,
                              "reason": why})
            continue
        event_nodes[name] = rnodes
        for r in rnodes[1:]:
            parent[find(r)] = find(rnodes[0])
    if not event_nodes:
        raise UsageError(f"{prof.path}: no profiled node matches a node of {model_path}: the profile is from "
                         f"another model (profile it with `graphperf profile {model_path}`)")
    groups: dict[str, dict[str, list[str]]] = {}
    for ev, rnodes in event_nodes.items():
        g = groups.setdefault(find(rnodes[0]), {"nodes": [], "events": []})
        g["events"].append(ev)
        for r in rnodes:
            if r not in g["nodes"]:
                g["nodes"].append(r)
    cpu_figure = _host_and_device(target)
    rows = [_row(g["nodes"], g["events"], sum(prof.nodes[e].median_us for e in g["events"]) * 1e-6, records, order,
                 cpu_figure)
            for g in groups.values()]
    profile_info = {"path": prof.path, "format": "onnxruntime", "runs": prof.runs, "warmup_runs": prof.warmup_runs,
                    "optimized_model": os.path.basename(opt_path) if opt_path else None, "dims": dict(dims),
                    **{k: prof.meta[k] for k in ("intra_op_threads", "optimization", "onnxruntime") if k in prof.meta}}
    run_median_s = prof.run_median_us * 1e-6 if prof.run_median_us is not None else None
    measured_total_s = sum(t.median_us for t in prof.nodes.values()) * 1e-6
    return _assemble(info["name"], target, profile_info, rows, unmatched, report, order, measured_total_s,
                     run_median_s, cpu_figure, measured_kernel_s=None, measured_wall_s=run_median_s,
                     wall_measured_as="onnxruntime model_run span, median over the measured runs")


def _device(rec) -> Optional[float]:
    """A node's projected figure against a GPU trace's kernel time: its device time."""
    return rec.device_s


def _host_and_device(target):
    """A node's projected figure against a CPU profile's op time, which holds the op's dispatch: its device
    time plus its dispatch, the mode's host time or, where that is smaller (graph mode: none), the target's
    per-kernel gap (`launch_overhead_us`; a node that launches no kernel has none)."""
    gap_s = target.launch_overhead_us * 1e-6

    def figure(rec) -> Optional[float]:
        if rec.device_s is None or rec.host_s is None:
            return None
        launches = bool(rec.flops or rec.transcendentals or rec.bytes_read or rec.bytes_written)
        return rec.device_s + max(rec.host_s, gap_s if launches else 0.0)

    return figure


def _through_fusion(to_report: dict[str, list[str]], canon, target, mode: str) -> dict[str, list[str]]:
    """In ``compiled`` mode the report's nodes are fused groups: map each canonical node to the fused node
    holding it (through every rule, a group of an earlier rule can join a later one); else unchanged."""
    if mode not in FUSED_MODES:
        return to_report
    from ..pipeline import compiled_rewrite

    into: dict[str, str] = {}
    for rec in compiled_rewrite(canon, target)[1]:
        for g in rec.get("groups", ()):
            for m in g.get("members", ()):
                into[m] = g["node"]

    def final(name: str) -> str:
        while name in into:
            name = into[name]
        return name

    return {k: list(dict.fromkeys(final(r) for r in v)) for k, v in to_report.items()}


def _row(nodes: list[str], events: list[str], measured_s: float, records, order, figure=_device) -> Row:
    """One row: the report nodes (graph order) that share profiled events, projected = the sum of their
    `figure` (None when one has no cost rule), bound = the bound of the slowest."""
    nodes = sorted(nodes, key=order.__getitem__)
    recs = [records[n] for n in nodes]
    figures = [figure(r) for r in recs]
    known = all(f is not None for f in figures)
    lead = max(zip(figures, recs), key=lambda pair: pair[0] or 0.0)[1]
    return Row(nodes[0], "+".join(dict.fromkeys(r.op for r in recs)), lead.bound, nodes, events,
               sum(figures) if known else None, measured_s)


def _relative(projected: Optional[float], measured: Optional[float]) -> Optional[float]:
    return (projected - measured) / measured if projected is not None and measured else None


def _assemble(model: str, target, profile_info: dict, rows: list[Row], unmatched: list[dict], report, order,
              measured_total_s: float, run_median_s: Optional[float], figure=_device,
              no_time: Optional[Mapping[str, str]] = None, *, measured_kernel_s: Optional[float] = None,
              measured_wall_s: Optional[float] = None, wall_measured_as: str = "") -> Correlation:
    """Rows in graph order, the projected nodes nobody measured (with `no_time` reasons), the statistics:
    per row (projected = the rows' `figure`), whole model (every counted node's `figure` against every
    profiled node), per step (device time against kernel time, simulated wall against measured wall)."""
    no_time = no_time or {}
    rows = sorted(rows, key=lambda r: order[r.name])
    unknown = [r.name for r in rows if r.projected_s is None]
    in_rows = {n for r in rows for n in r.nodes}
    unmeasured = [{"name": r.name, "op": r.op, "projected_s": figure(r), "bound": r.bound,
                   **({"reason": no_time[r.name]} if r.name in no_time else {})}
                  for r in report.nodes if r.name not in in_rows and r.device_s]
    projected_total_s = sum(f for r in report.nodes if (f := figure(r)) is not None)
    stats = error_stats([(r.projected_s, r.measured_s) for r in rows if r.projected_s is not None],
                        projected_total_s, measured_total_s)
    stats["unmatched_s"] = sum(u["measured_s"] for u in unmatched)
    stats["unmeasured_projected_s"] = sum(u["projected_s"] for u in unmeasured)
    stats["run_median_s"] = run_median_s
    totals = report.totals
    stats["mode"] = totals["mode"]
    stats["per_row_projection"] = "device_s" if figure is _device else "device_s + max(host_s, launch gap)"
    stats["projected_device_s"] = totals["device_s"]
    stats["measured_kernel_s"] = measured_kernel_s
    stats["device_error"] = _relative(totals["device_s"], measured_kernel_s)
    stats["projected_wall_s"] = totals["latency_s"]
    stats["measured_wall_s"] = measured_wall_s
    stats["wall_error"] = _relative(totals["latency_s"], measured_wall_s)
    stats["wall_measured_as"] = wall_measured_as
    stats["projected_idle_s"] = totals["idle_s"]
    stats["launch_bound"] = totals["launch_bound"]
    stats["graph_mode_wall_s"] = totals["graph_mode_latency_s"]
    records = {r.name: r for r in report.nodes}
    return Correlation(model, target.name, profile_info, rows, unmatched, unmeasured, unknown, stats, records)


# -- torch.profiler (Kineto) traces against a torch.export capture ---------------------------------


def _report_nodes_of_captured(graph, canon) -> dict[str, list[str]]:
    """Captured node name -> report node names: itself if canonicalization kept it, else the node its
    output was folded into."""
    kept = {n.name for n in canon.nodes}
    out: dict[str, list[str]] = {}
    for n in graph.nodes:
        if n.name in kept:
            out[n.name] = [n.name]
        else:
            target = canon.values[n.outputs[0]].producer if n.outputs and n.outputs[0] in canon.values else None
            out[n.name] = [target] if target in kept else []
    return out


def match_kineto_ops(ops, graph) -> tuple[dict[int, str], dict[int, str]]:
    """Match top-level trace ops to captured graph nodes by ATen op name, input shapes and order.

    Walks the ops in order; each takes the first unmatched graph node at or after the last match
    with the same op name and the same tensor input shapes (shapes are skipped where the trace has
    none), and failing that the first such node anywhere. Returns ({op index: node name},
    {op index: why it is unmatched}).
    """
    nodes = list(graph.nodes)
    shapes = [[tuple(graph.values[v].type.shape) for v in n.inputs
               if v is not None and v in graph.values and getattr(graph.values[v].type, "shape", None)]
              for n in nodes]
    names = [aten_name(n.source_op) for n in nodes]
    used: set[int] = set()
    matched: dict[int, str] = {}
    why: dict[int, str] = {}
    cursor = 0
    for op in ops:
        want = op.tensor_shapes

        def fits(j: int) -> bool:
            return j not in used and names[j] == op.name and (not want or [tuple(s) for s in shapes[j]] == want)

        j = next((j for j in range(cursor, len(nodes)) if fits(j)), None)
        if j is None:
            j = next((j for j in range(0, cursor) if fits(j)), None)
        if j is None:
            same_name = any(names[k] == op.name for k in range(len(nodes)))
            why[op.index] = ("the graph has this op but none with these input shapes " + str(want) if same_name
                             else "no node of this op in the captured graph (eager-only op, or decomposed "
                                  "differently by torch.export)")
            continue
        used.add(j)
        matched[op.index] = nodes[j].name
        cursor = j + 1
    return matched, why


def correlate_kineto(request, trace: "str | Any", target, warmup_runs: Optional[int] = None,
                     mode: str = "graph") -> Correlation:
    """Project the torch model of `request` (a `pipeline.ModelRequest`: models/ workload name or .pt2)
    on `target` in execution `mode` and correlate it with a torch.profiler trace of the same module.

    Rows, `unmatched` (trace ops matched to no graph node, with their time and the reason),
    `unmeasured` and the statistics are as for `correlate_onnx`; measured times are the top-level
    ops' CPU times, or their kernels' device times when the trace has CUDA kernels.
    """
    from graphperf.passes import canonicalize

    from ..pipeline import analyze_graph, load_graph
    from .kineto import KinetoTrace, read_kineto

    tr = trace if isinstance(trace, KinetoTrace) else read_kineto(trace, warmup_runs)
    if request.ref.lower().endswith(".onnx"):
        raise UsageError(f"{tr.path}: a torch.profiler trace correlates with the torch model it profiled (a "
                         f"models/ workload name or a .pt2 file), not with {request.ref}")
    if not any(op.tensor_shapes for op in tr.ops):
        raise UsageError(f"{tr.path}: no traced op carries input shapes, and shapes are how ops are matched to "
                         "graph nodes: record the trace with torch.profiler.profile(..., record_shapes=True)")
    graph, info = load_graph(request)
    matched, why = match_kineto_ops(tr.ops, graph)
    check_kineto_trace(tr, graph, matched, request.ref, info)  # before the projection: a refusal is quick
    canon = canonicalize(graph).graph  # once: analyze_graph finds it canonical
    report = analyze_graph(canon, target, info, mode=mode)
    to_report = _through_fusion(_report_nodes_of_captured(graph, canon), canon, target, mode)
    figure = _device if tr.device == "cuda" else _host_and_device(target)
    records = {r.name: r for r in report.nodes}
    order = {r.name: i for i, r in enumerate(report.nodes)}
    unmatched: list[dict[str, Any]] = []
    groups: dict[str, dict[str, Any]] = {}
    zero = 0
    for op in tr.ops:
        measured_s = op.median_us * 1e-6 if op.durations_us else 0.0
        label = f"{op.name}#{op.index}"
        if op.index not in matched:
            if measured_s > 0:
                unmatched.append({"name": label, "op": op.name, "measured_s": measured_s, "reason": why[op.index]})
            else:
                zero += 1
            continue
        rnodes = [r for r in to_report.get(matched[op.index], []) if r in records]
        if not rnodes:
            unmatched.append({"name": label, "op": op.name, "measured_s": measured_s,
                              "reason": f"graph node {matched[op.index]} was folded away by canonicalization"})
            continue
        g = groups.setdefault(rnodes[0], {"nodes": rnodes, "events": [], "measured_s": 0.0})
        g["events"].append(label)
        g["measured_s"] += measured_s
    if not groups:
        raise UsageError(f"{tr.path}: no traced op matches a node of {request.ref}: the trace is from another "
                         "model or other input shapes")
    no_time: dict[str, str] = {}  # report node -> why it has a traced op but no measured time
    rows: list[Row] = []
    for g in groups.values():
        if g["measured_s"] <= 0:
            zero += len(g["events"])
            for n in g["nodes"]:
                no_time[n] = (f"traced as {', '.join(g['events'])} with no measured time (no kernel attributed "
                              "to it on a GPU trace)")
            continue
        rows.append(_row(g["nodes"], g["events"], g["measured_s"], records, order, figure))
    profile_info = {"path": tr.path, "format": "kineto", "device": tr.device, "runs": tr.runs,
                    "warmup_runs": tr.warmup_runs, "steps_from": tr.steps_from, "zero_time_ops": zero,
                    "orphan_kernels": len(tr.orphan_kernels)}
    measured_total_s = sum(op.median_us for op in tr.ops if op.durations_us) * 1e-6
    c = _assemble(info["name"], target, profile_info, rows, unmatched, report, order, measured_total_s, None, figure,
                  no_time, measured_kernel_s=tr.step_kernel_s if tr.device == "cuda" else None,
                  measured_wall_s=tr.step_wall_s,
                  wall_measured_as="ProfilerStep span as recorded, median over the measured steps; torch.profiler "
                                   "inflates host time" if tr.step_wall_s is not None else "")
    if tr.orphan_kernels:  # listed, but not in unmatched_s: not in the measured total either
        orphan_s = sum(k["dur_us"] for k in tr.orphan_kernels) * 1e-6 / max(tr.runs, 1)
        c.unmatched.append({"name": f"{len(tr.orphan_kernels)} kernels", "op": "kernel", "measured_s": orphan_s,
                            "reason": "kernels attributed to no cpu_op (no External id or correlation); time per "
                                      "step, not in the measured total"})
    return c


def correlate(model: str, profile: str, target, dims: Optional[Mapping[str, int]] = None, request=None,
              warmup_runs: Optional[int] = None, mode: str = "graph") -> Correlation:
    """Correlate `model` with `profile` whatever the profile's format: an onnxruntime profile with an
    .onnx file (`correlate_onnx`), a torch.profiler trace with a models/ workload name or .pt2 file
    (`correlate_kineto`; `request` is a `pipeline.ModelRequest` carrying --config/--batch/...)."""
    from ..pipeline import ModelRequest
    from .reader import profile_format

    if profile_format(profile) == "kineto":
        return correlate_kineto(request or ModelRequest(model, dims=dict(dims or {})), profile, target, warmup_runs,
                                mode)
    if not model.lower().endswith(".onnx"):
        raise UsageError(f"{profile}: an onnxruntime profile correlates with the .onnx file that was profiled, "
                         f"not with {model}")
    return correlate_onnx(model, profile, target, dims=dims, warmup_runs=warmup_runs, mode=mode)
