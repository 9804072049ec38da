"""Read an onnxruntime profiling JSON: per-node times over the measured runs, and which ONNX nodes
each profiled node stands for.

Guarantees:
- Node events are the ``cat == "Node"`` events named ``<node>_kernel_time``; their ``dur`` is in
  microseconds. Runs are delimited by the ``model_run`` session events; an event belongs to the
  run whose span contains its start. The first ``warmup_runs`` runs (from graphperf's metadata event,
  else 1 when the profile holds more than one run, else 0) are skipped.
- Per node: the durations of its events are summed within a run, and the median over the measured
  runs it ran in is its measured time (`NodeTiming.median_us`).
- `onnx_nodes_of` maps a profiled node name to the ONNX nodes of the original model it stands for:
  the node of that name, or, for nodes onnxruntime created (fusions and the reshapes it puts around
  them, found in the optimized model saved beside the profile), every original node between the
  inputs and outputs of the group they form. Names it cannot map get an empty list: the caller
  lists them, never drops them.
- A missing, unreadable or malformed profile raises `UsageError` naming the file. Profiles and traces
  may be gzip-compressed (``.json.gz``, as torch.profiler's tensorboard handler writes them): a gzip
  file is recognised by its magic bytes, whatever its name; a truncated or corrupt one is a one-line
  `UsageError` too.
- `profile_format` tells an onnxruntime profile from a torch.profiler (Kineto) trace
  (``graphperf.correlate.kineto``); `read_profile` given a Kineto trace says so in its error.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass, field
from typing import Any, Optional

from ..errors import UsageError
from .events import META_NAME, is_kineto, load_events

__all__ = ["NodeTiming", "Profile", "read_profile", "onnx_nodes_of", "profile_format", "FORMATS"]

FORMATS = ("onnxruntime", "kineto")

_SUFFIX = "_kernel_time"


@dataclass
class NodeTiming:
    name: str  # onnxruntime's node name (the ONNX node name, or a fused node's new name)
    op_name: str
    provider: str
    durations_us: list[float]  # per measured run (summed within the run)

    @property
    def median_us(self) -> float:
        return float(statistics.median(self.durations_us))


@dataclass
class Profile:
    path: str
    nodes: dict[str, NodeTiming]  # in order of first appearance
    runs: int
    warmup_runs: int
    run_median_us: Optional[float]  # median model_run duration over the measured runs
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def measured_runs(self) -> int:
        return self.runs - self.warmup_runs

    def optimized_model_path(self) -> Optional[str]:
        name = self.meta.get("optimized_model")
        if not name:
            return None
        path = os.path.join(os.path.dirname(os.path.abspath(self.path)), name)
        return path if os.path.isfile(path) else None


_load = load_events


def _format_of(events: list[dict]) -> Optional[str]:
    if any(e.get("cat") == "Node" and str(e.get("name", "")).endswith(_SUFFIX) for e in events):
        return "onnxruntime"
    return "kineto" if is_kineto(events) else None


def profile_format(path: str) -> str:
    """``"onnxruntime"`` or ``"kineto"`` (torch.profiler Chrome trace); `UsageError` for neither."""
    fmt = _format_of(_load(path))
    if fmt is None:
        raise UsageError(f"{path}: neither an onnxruntime profile (no '*{_SUFFIX}' Node events) nor a "
                         "torch.profiler trace (no cpu_op or kernel events)")
    return fmt


def read_profile(path: str, warmup_runs: Optional[int] = None) -> Profile:
    """Parse the profile at `path`; `warmup_runs` overrides the number of leading runs skipped."""
    events = _load(path)
    if events and _format_of(events) == "kineto":
        raise UsageError(f"{path}: a torch.profiler trace, not an onnxruntime profile: correlate it with the torch "
                         "model it profiled (a models/ workload name or a .pt2 file), not an .onnx file")
    meta = next((dict(e.get("args") or {}) for e in events
                 if e.get("cat") == "graphperf" and e.get("name") == META_NAME), {})
    try:
        spans = sorted((float(e["ts"]), float(e["ts"]) + float(e["dur"])) for e in events
                       if e.get("cat") == "Session" and e.get("name") == "model_run")
        node_events = [e for e in events if e.get("cat") == "Node" and str(e.get("name", "")).endswith(_SUFFIX)]
        for e in node_events:
            float(e["ts"]), float(e["dur"])
    except (KeyError, TypeError, ValueError) as e:
        raise UsageError(f"{path}: malformed onnxruntime profile event ({type(e).__name__}: {e})") from None
    if not node_events:
        raise UsageError(f"{path}: no per-node events (cat 'Node', '*{_SUFFIX}'): profile with "
                         "`graphperf profile` or onnxruntime's SessionOptions.enable_profiling")
    runs = max(len(spans), 1)
    if warmup_runs is None:
        warmup_runs = int(meta.get("warmup_runs", 1 if runs > 1 else 0))
    if not 0 <= warmup_runs < runs:
        raise UsageError(f"{path}: {runs} run(s) in the profile, cannot skip {warmup_runs} warm-up run(s)")

    def run_of(ts: float) -> int:
        for i, (start, end) in enumerate(spans):
            if start <= ts <= end:
                return i
        return -1

    per_run: dict[str, dict[int, float]] = {}
    info: dict[str, tuple[str, str]] = {}
    for e in node_events:
        run = run_of(float(e["ts"])) if spans else 0
        if run < warmup_runs:  # warm-up, or outside every run
            continue
        name = e["name"][: -len(_SUFFIX)]
        args = e.get("args") or {}
        info.setdefault(name, (str(args.get("op_name", "")), str(args.get("provider", ""))))
        runs_of = per_run.setdefault(name, {})
        runs_of[run] = runs_of.get(run, 0.0) + float(e["dur"])
    nodes = {name: NodeTiming(name, info[name][0], info[name][1], [r[k] for k in sorted(r)])
             for name, r in per_run.items()}
    measured = [end - start for start, end in spans[warmup_runs:]]
    return Profile(path, nodes, runs, warmup_runs, float(statistics.median(measured)) if measured else None, meta)


def onnx_nodes_of(names, model, optimized=None) -> dict[str, list[str]]:
    """For each profiled node name, the original ONNX node names it covers (empty: not mapped).

    model, optimized : onnx.ModelProto of the profiled model and of onnxruntime's optimized model
        (optional). Nodes of the optimized model that are not in the original one (fusions and the
        reshapes onnxruntime puts around them) are grouped where they share tensors the original does
        not have; each group covers the original nodes between the group's inputs and outputs, found
        by walking back from its outputs through tensors the optimization removed.
    """
    original = {n.name: n for n in model.graph.node if n.name}
    producer = {o: n for n in model.graph.node for o in n.output if o}
    out: dict[str, list[str]] = {name: [name] for name in names if name in original}
    if optimized is None:
        return {name: out.get(name, []) for name in names}
    g = optimized.graph
    orig_tensors = set(producer) | {t.name for t in model.graph.initializer} | {vi.name for vi in model.graph.input}
    opt_tensors = {t for n in g.node for t in (*n.input, *n.output) if t}
    opt_tensors |= {t.name for t in g.initializer} | {vi.name for vi in g.input}
    new = [n for n in g.node if n.name not in original]
    parent = list(range(len(new)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    touching: dict[str, list[int]] = {}
    for i, n in enumerate(new):
        for t in (*n.input, *n.output):
            if t and t not in orig_tensors:
                touching.setdefault(t, []).append(i)
    for idx in touching.values():
        for j in idx[1:]:
            parent[find(j)] = find(idx[0])
    groups: dict[int, list[int]] = {}
    for i in range(len(new)):
        groups.setdefault(find(i), []).append(i)
    for members in groups.values():
        covered: list[str] = []
        stack = [t for i in members for t in new[i].output if t in orig_tensors]
        seen: set[str] = set()
        while stack:
            t = stack.pop()
            if t in seen:
                continue
            seen.add(t)
            n = producer.get(t)
            if n is None or not n.name or n.name in covered:
                continue
            covered.append(n.name)
            stack.extend(x for x in n.input if x and x not in opt_tensors)
        for i in members:
            out.setdefault(new[i].name, covered)
    return {name: list(out.get(name, [])) for name in names}
