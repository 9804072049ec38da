"""The torch.compile backend ``graphperf``: project every graph torch.compile compiles, run it unchanged.

``torch.compile(model, backend="graphperf", options={...})`` works without importing graphperf:
the backend is registered through the ``torch_dynamo_backends`` entry point. Options (all optional):

- ``target``: a bundled target name, a TOML path or a `Target` (default ``"h100"``);
  ``set``: ``{field: value}`` overrides of the target's fields (as ``--set``).
- ``report``: ``"table"`` (default: each graph's projection printed as it compiles), ``"json"``
  (each graph's JSON report printed) or ``"none"`` (nothing printed; one summary line per graph
  is logged on the ``graphperf`` logger at INFO either way).
- ``output``: a path, (re)written after every graph: with one graph, that graph's report
  (schema ``graphperf.report/1``); with several, a ``graphperf.compile/1`` document holding every
  graph's report, their combined ``totals`` for one step (below) and ``totals_by_compile_id``
  (both documents have ``totals["flops"]`` etc.).
- ``then``: what runs: ``"eager"`` (default: the ATen graphs aot_autograd traced, run eagerly, as
  ``backend="aot_eager"`` does) or ``"inductor"`` (dynamo's graph handed to inductor untouched).
- ``name``: the model name in reports (default: the compiled module's class name).
- ``mode``: the execution model of the projection, ``"graph"`` (default), ``"eager"``, ``"compiled"`` or
  ``"reduce-overhead"``
  (as ``--mode``; graphperf/execution.py).

Guarantees:
- graphperf reads graphs and never changes one: outputs and gradients are what eager PyTorch (or
  inductor, with ``then="inductor"``) computes. If an analysis fails, the graph still runs; the
  failure is logged as a warning and kept on the `CompiledGraph` (``error``).
- One report per compiled graph. Graph breaks give several graphs, recompilations (new shapes, a
  grad-mode change) add more; each carries dynamo's compile id ``"frame/recompile"`` and
  ``recompile`` is true from a frame's second compilation on. Combined ``totals`` are those of one
  step at the latest shapes: each frame's latest compilation (a recompilation replaces the graphs it
  recompiles, it is not added to them); ``by_compile_id()`` has each compilation's own. When the forward is differentiable
  (an input requires grad under grad mode) the ATen forward and backward graphs are both captured
  and projected at compile time (a training step); otherwise the inference graph is.
- A dynamic-shape graph is projected at the sizes it was compiled for (``model["dims"]``).
- Reports are kept per torch.compile call (per options object; calls without options share one
  set): `last_reports()` returns the most recently updated `CompileReports`.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Optional

from .errors import GraphperfError, UsageError
from .report.memory_fit import memory_fit
from .report.model import Report

__all__ = ["graphperf_backend", "last_reports", "clear_reports", "CompileReports", "CompiledGraph",
           "COMPILE_SCHEMA"]

COMPILE_SCHEMA = "graphperf.compile/1"
logger = logging.getLogger("graphperf")

_OPTIONS = ("target", "set", "report", "output", "then", "name", "mode")
_REPORTS = ("table", "json", "none")
_THEN = ("eager", "inductor")
_SUMMED = ("nodes", "counted_nodes", "flops", "matrix_flops", "transcendentals", "bytes", "bytes_read",
           "bytes_written", "latency_s", "compute_s", "memory_s", "device_s", "host_s", "idle_s")


@dataclass(frozen=True)
class Options:
    """The backend's validated options (`parse_options`): the `Target` loaded, the rest as given or defaulted."""

    target: Any  # graphperf.target.Target
    report: str = "table"
    output: Optional[str] = None
    then: str = "eager"
    name: Optional[str] = None
    mode: str = "graph"


def parse_options(options: Optional[Mapping[str, Any]]) -> Options:
    """Validate torch.compile's ``options`` for this backend; UsageError naming the bad key."""
    from .execution import MODES
    from .target import Target, load_target

    opts = dict(options or {})
    unknown = sorted(set(opts) - set(_OPTIONS))
    if unknown:
        raise UsageError(f"graphperf backend: unknown option(s) {', '.join(map(repr, unknown))}; valid options: "
                         + ", ".join(_OPTIONS))
    target = opts.get("target", "h100")
    if not isinstance(target, Target):
        if not isinstance(target, (str, os.PathLike)):
            raise UsageError(f"graphperf backend: target must be a target name, a .toml path or a Target, "
                             f"got {type(target).__name__}")
        target = load_target(os.fspath(target))
    overrides = opts.get("set") or {}
    if not isinstance(overrides, Mapping):
        raise UsageError("graphperf backend: set must be a mapping of target fields to values, e.g. {'hbm_gbps': 4800}")
    target = target.with_overrides(**overrides)
    for key, allowed in (("report", _REPORTS), ("then", _THEN), ("mode", MODES)):
        if opts.get(key, allowed[0]) not in allowed:
            raise UsageError(f"graphperf backend: {key}={opts[key]!r}; choose one of {', '.join(allowed)}")
    output = opts.get("output")
    if output is not None and not isinstance(output, (str, os.PathLike)):
        raise UsageError(f"graphperf backend: output must be a file path, got {type(output).__name__}")
    return Options(target, opts.get("report", "table"), None if output is None else os.fspath(output),
                   opts.get("then", "eager"), opts.get("name"), opts.get("mode", "graph"))


@dataclass
class CompiledGraph:
    """One graph torch.compile compiled: `kind` is "inference", "forward" or "backward"; `graph`
    numbers dynamo's graphs in this set (a forward and its backward share it); `report` is None
    when the analysis failed (`error` says why)."""

    index: int
    graph: int
    compile_id: str
    kind: str
    recompile: bool
    where: str
    report: Optional[Report]
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "graph": self.graph, "compile_id": self.compile_id, "kind": self.kind,
                "recompile": self.recompile, "where": self.where, "error": self.error,
                "report": None if self.report is None else self.report.to_dict()}


@dataclass
class CompileReports:
    """Every graph compiled for one torch.compile call, in compile order, and their combined totals."""

    options: Options
    graphs: list[CompiledGraph] = field(default_factory=list)
    weights: dict[int, tuple[int, int]] = field(default_factory=dict, repr=False)  # id -> (bytes, parameters)
    dynamo_graphs: int = 0

    def __len__(self) -> int:
        return len(self.graphs)

    def __iter__(self) -> Iterator[CompiledGraph]:
        return iter(self.graphs)

    def __getitem__(self, i: int) -> CompiledGraph:
        return self.graphs[i]

    def reports(self, kind: Optional[str] = None) -> list[Report]:
        """The reports (of `kind` only, if given) in compile order; failed graphs are skipped."""
        return [g.report for g in self.graphs if g.report is not None and kind in (None, g.kind)]

    @property
    def recompilations(self) -> int:
        """Dynamo graphs compiled again for a frame compiled before (new shapes, guard failures)."""
        return len({(g.graph, g.compile_id) for g in self.graphs if g.recompile})

    def step(self) -> list[CompiledGraph]:
        """The graphs one call of the model runs at the latest shapes: of each dynamo frame (a graph
        break starts another), the graphs of its latest compilation (forward and backward, or the
        inference graph). A recompilation replaces its frame's earlier graphs; it is not added to them."""
        latest: dict[str, int] = {}
        for g in self.graphs:
            frame, attempt = _frame_attempt(g.compile_id)
            latest[frame] = max(latest.get(frame, attempt), attempt)
        return [g for g in self.graphs if latest[_frame_attempt(g.compile_id)[0]] == _frame_attempt(g.compile_id)[1]]

    def by_compile_id(self) -> dict[str, dict[str, Any]]:
        """Combined totals per dynamo compile id ("frame/attempt"): one compilation's forward and backward."""
        ids = list(dict.fromkeys(g.compile_id for g in self.graphs))
        return {cid: combine([g.report for g in self.graphs if g.compile_id == cid and g.report is not None], None)
                for cid in ids}

    @property
    def totals(self) -> dict[str, Any]:
        """Combined totals (see `combine`) of one step, `step()`: earlier compilations of a frame are
        counted in `by_compile_id()`, not here. Plus graph and recompilation counts."""
        step = self.step()
        totals = combine([g.report for g in step if g.report is not None], self.weights)
        totals.update(graphs=len(self.graphs), failed_graphs=sum(g.report is None for g in self.graphs),
                      recompilations=self.recompilations, step_compile_ids=list(dict.fromkeys(g.compile_id for g in step)),
                      graphs_not_in_step=len(self.graphs) - len(step))
        return totals

    def to_dict(self) -> dict[str, Any]:
        """One graph: its report (graphperf.report/1). Several: graphperf.compile/1 with all of them."""
        if len(self.graphs) == 1 and self.graphs[0].report is not None:
            return self.graphs[0].report.to_dict()
        from .version import __version__

        kinds = sorted({g.kind for g in self.graphs})
        return {"schema": COMPILE_SCHEMA, "tool": {"name": "graphperf", "version": __version__},
                "target": self.options.target.to_dict(), "totals": self.totals,
                "totals_by_kind": {k: combine(self.reports(k), None) for k in kinds},
                "totals_by_compile_id": self.by_compile_id(),
                "graphs": [g.to_dict() for g in self.graphs]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n"


def _frame_attempt(compile_id: str) -> tuple[str, int]:
    """dynamo's compile id "frame/attempt" (e.g. "0/1", or "!0/0/1" under compiled autograd) as
    (frame, attempt); an id without a numeric attempt is a frame of its own."""
    frame, _, attempt = compile_id.rpartition("/")
    return (frame, int(attempt)) if frame and attempt.isdigit() else (compile_id, 0)


def combine(reports: list[Report], weights: Optional[Mapping[int, tuple[int, int]]]) -> dict[str, Any]:
    """Totals of several reports: work and time are summed; coverage over all nodes; unknown ops
    merged; the activation peak is the largest graph's; weights are counted once per tensor when
    `weights` (tensor id -> (bytes, parameters)) is given, else summed."""
    out: dict[str, Any] = {k: sum(r.totals[k] for r in reports) for k in _SUMMED}
    out["coverage"] = out["counted_nodes"] / out["nodes"] if out["nodes"] else 1.0
    if weights:
        out["weight_bytes"] = sum(b for b, _ in weights.values())
        out["parameters"] = sum(p for _, p in weights.values())
    else:
        out["weight_bytes"] = sum(r.totals["weight_bytes"] for r in reports)
        out["parameters"] = sum(r.totals["parameters"] for r in reports)
    out["peak_activation_bytes"] = max((r.totals["peak_activation_bytes"] for r in reports), default=0)
    memory_gb = getattr(reports[0].target, "memory_gb", None) if reports else None
    out.update(memory_fit(out["weight_bytes"], out["peak_activation_bytes"], memory_gb))
    bounds: dict[str, float] = {}
    unknown: dict[str, int] = {}
    for r in reports:
        for b, s in r.totals["latency_by_bound_s"].items():
            bounds[b] = bounds.get(b, 0.0) + s
        for op, n in r.totals["unknown_ops"].items():
            unknown[op] = unknown.get(op, 0) + n
    out["latency_by_bound_s"] = dict(sorted(bounds.items()))
    out["latency_is_lower_bound"] = bool(unknown)
    out["unknown_ops"] = dict(sorted(unknown.items()))
    return out


_SESSIONS: dict[int, tuple[Any, CompileReports]] = {}  # id(options) -> (options kept alive, reports)
_LAST: list[CompileReports] = []


def last_reports() -> CompileReports:
    """The reports of the most recent torch.compile(backend="graphperf") call that compiled a graph
    (empty, on the default target, before any).

    Returns
    -------
    CompileReports
        Every graph that call compiled, in compile order (a `CompiledGraph` each: ``kind`` is
        ``"inference"``, ``"forward"`` or ``"backward"``, ``report`` its `Report`, None where the
        analysis failed), with ``reports()``, ``step()`` and ``by_compile_id()``.

    Example
    -------
    >>> import torch, graphperf
    >>> model = torch.compile(torch.nn.Linear(8, 4), backend="graphperf", options={"report": "none"})
    >>> with torch.no_grad():
    ...     _ = model(torch.randn(2, 8))
    >>> reports = graphperf.last_reports()
    >>> [g.kind for g in reports], reports.reports()[0].totals["flops"]  # 2 * (2*8*4) matmul + 2*4 bias
    (['inference'], 136)
    """
    if _LAST:
        return _LAST[0]
    from .target import load_target

    return CompileReports(Options(load_target("h100")))


def clear_reports() -> None:
    """Forget every kept report (they are also dropped with the process)."""
    _SESSIONS.clear()
    _LAST.clear()


def _session(options: Optional[Mapping[str, Any]]) -> CompileReports:
    key = id(options) if options is not None else 0
    found = _SESSIONS.get(key)
    if found is None or found[0] is not options:
        found = _SESSIONS[key] = (options, CompileReports(parse_options(options)))
    _LAST[:] = [found[1]]
    return found[1]


def graphperf_backend(gm, example_inputs, options: Optional[Mapping[str, Any]] = None, **kwargs: Any):
    """The ``graphperf`` dynamo backend (see the module docstring for `options`)."""
    import torch
    from torch._dynamo.backends.common import aot_autograd

    session = _session(options)
    session.dynamo_graphs += 1
    graph_no = session.dynamo_graphs - 1
    frame = _Frame(session, gm, list(example_inputs), graph_no)
    analysis = aot_autograd(fw_compiler=frame.compiler("forward"), bw_compiler=frame.compiler("backward"),
                            inference_compiler=frame.compiler("inference"))
    try:
        # trace the backward now, not at the first .backward(), so a training step is projected
        # as soon as it compiles (and so with then="inductor", whose own trace runs the model)
        with torch._functorch.config.patch(force_non_lazy_backward_lowering=True):
            runnable = analysis(gm, example_inputs)
    except Exception as exc:  # never stop the model: report the failure and run dynamo's graph
        frame.failed("inference", f"aot_autograd could not trace the graph: {type(exc).__name__}: {exc}")
        runnable = gm.forward
    if session.options.then == "inductor":
        from torch._inductor.compile_fx import compile_fx

        return compile_fx(gm, example_inputs)
    return runnable


class _Frame:
    """The analysis of one dynamo graph: compilers for aot_autograd that capture, project and report."""

    def __init__(self, session: CompileReports, gm, example_inputs: list, graph_no: int):
        from torch._guards import CompileContext

        self.session, self.example_inputs, self.graph_no = session, example_inputs, graph_no
        cid = CompileContext.current_compile_id()
        self.compile_id = str(cid) if cid is not None else "?"
        self.recompile = bool(getattr(cid, "frame_compile_id", 0))
        self.where, owner = _where(gm)
        self.model = session.options.name or owner or "compiled"
        self.forward_weights: set[str] = set()
        self.forward_params: set[str] = set()

    def compiler(self, kind: str):
        from torch._functorch.aot_autograd import make_boxed_func

        def compile_graph(aten_gm, fake_inputs):
            try:
                self._record(kind, aten_gm)
            except Exception as exc:  # the graph runs whatever happens here
                self.failed(kind, f"{type(exc).__name__}: {exc}" if not isinstance(exc, GraphperfError) else str(exc))
            return make_boxed_func(aten_gm.forward)

        return compile_graph

    def _weights(self, aten_gm, kind: str) -> tuple[set[str], set[str]]:
        import torch
        from torch._guards import TracingContext

        names = [n.name for n in aten_gm.graph.nodes if n.op == "placeholder"]
        if kind == "backward":  # saved parameters keep their forward placeholder names
            return self.forward_weights & set(names), self.forward_params & set(names)
        ctx = TracingContext.try_get()
        meta = getattr(ctx, "fw_metadata", None)
        static = set(getattr(meta, "static_input_indices", None) or ())
        aligned = len(names) == len(self.example_inputs)
        params = {i for i, t in enumerate(self.example_inputs) if isinstance(t, torch.nn.Parameter)} if aligned else set()
        weights = {names[i] for i in static | params if i < len(names)}
        for i in static | params if aligned else ():
            t = self.example_inputs[i]
            if isinstance(t, torch.Tensor) and isinstance(t.numel(), int):  # a real (or static fake) tensor
                self.session.weights[id(t)] = (t.numel() * t.element_size(), t.numel() if i in params else 0)
        self.forward_weights, self.forward_params = weights, {names[i] for i in params}
        return weights, self.forward_params

    def _record(self, kind: str, aten_gm) -> None:
        from .api import analyze_captured
        from .capture.fx_graph import capture_fx

        weights, params = self._weights(aten_gm, kind)
        label = f"{self.model} graph {self.graph_no} {kind}"
        graph = capture_fx(aten_gm, name=label, weights=weights, parameters=params)
        info = {"name": label, "frontend": "torch.compile", "source": self.where, "graph": self.graph_no,
                "kind": kind, "compile_id": self.compile_id, "recompile": self.recompile,
                "description": f"{self.model} {kind} graph {self.graph_no} (compile {self.compile_id})",
                "dims": graph.meta["dims"]}
        report = analyze_captured(graph, self.session.options.target, info, mode=self.session.options.mode)
        self._add(CompiledGraph(len(self.session.graphs), self.graph_no, self.compile_id, kind, self.recompile,
                                self.where, report))

    def failed(self, kind: str, error: str) -> None:
        logger.warning("graphperf: graph %d %s (compile %s, %s) was not analysed: %s; it runs unchanged",
                       self.graph_no, kind, self.compile_id, self.where, error)
        self._add(CompiledGraph(len(self.session.graphs), self.graph_no, self.compile_id, kind, self.recompile,
                                self.where, None, error))

    def _add(self, entry: CompiledGraph) -> None:
        session = self.session
        session.graphs.append(entry)
        try:  # printing or writing a report must not stop the model either
            if entry.report is not None:
                _announce(session, entry)
            if session.options.output:
                with open(session.options.output, "w") as fh:
                    fh.write(session.to_json())
        except Exception as exc:
            logger.warning("graphperf: cannot report graph %d %s (output %s): %s: %s", entry.graph, entry.kind,
                           session.options.output, type(exc).__name__, exc)


def _announce(session: CompileReports, entry: CompiledGraph) -> None:
    from .report.units import seconds, si

    report, t = entry.report, entry.report.totals
    logger.info("graphperf: graph %d %s (compile %s%s): %d nodes, %s, %s moved, projected %s on %s, coverage %.1f%%",
                entry.graph, entry.kind, entry.compile_id, ", recompile" if entry.recompile else "", t["nodes"],
                si(t["flops"], "FLOP"), si(t["bytes"], "B"), seconds(t["latency_s"]), report.target.name,
                100 * t["coverage"])
    mode = session.options.report
    if mode == "json":
        print(report.to_json(), end="", flush=True)
    elif mode == "table":
        from rich.console import Console

        from .report.table import render_table

        console = Console()
        if not console.is_terminal:  # files and pipes: wide enough for every column (as the CLI)
            console.width = 160
        render_table(report, console)
        if len(session.reports()) > 1:
            c = session.totals
            earlier = (f"; {c['graphs_not_in_step']} graphs of earlier compilations not added"
                       if c["graphs_not_in_step"] else "")
            console.print(f"graphperf: {c['graphs']} graphs so far ({c['recompilations']} recompilations); one step "
                          f"(compile {', '.join(c['step_compile_ids'])}): {si(c['flops'], 'FLOP')}, "
                          f"{si(c['bytes'], 'B')} moved, projected {seconds(c['latency_s'])} on {report.target.name}"
                          f"{earlier}")


_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')


def _where(gm) -> tuple[str, Optional[str]]:
    """The code the graph came from, "MyNet.forward (model.py:12)", and a model name ("MyNet", or
    the function's name), from the frames dynamo traced (its own wrappers skipped)."""
    from torch._guards import TracingContext

    traced = [c for c in getattr(TracingContext.try_get(), "traced_code", None) or ()
              if f"{os.sep}_dynamo{os.sep}" not in c.co_filename]
    if traced:
        code = traced[0]
        owner = getattr(code, "co_qualname", code.co_name).rpartition(".")[0].rpartition(".<locals>.")[2]
        code = next((c for c in traced if getattr(c, "co_qualname", "") == f"{owner}.forward"), code) if owner else code
        qualname = getattr(code, "co_qualname", code.co_name)
        return f"{qualname} ({os.path.basename(code.co_filename)}:{code.co_firstlineno})", owner or code.co_name
    for node in gm.graph.nodes:  # a dynamo without traced_code: the first traced node's frame
        found = _FRAME.search(node.meta.get("stack_trace") or "")
        if found:
            return f"{found.group(3)} ({os.path.basename(found.group(1))}:{found.group(2)})", None
    return "?", None
