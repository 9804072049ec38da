"""The pipeline: resolve a model reference to a `Graph`, then canonicalize, count, project and report.

`load_graph` accepts an `.onnx` file, a `.pt2` file (torch.export.save), a models/ workload
name or a Hugging Face `config.json` of a family models/ implements (built like a workload); `analyze_graph`
runs canonicalize -> count -> project -> execution model -> liveness -> report on a captured graph. The
execution mode (graphperf/execution.py) decides how the node times fill the wall: `compiled` first rewrites
the graph with every what-if fusion rule (`mode_graph`).
"""

from __future__ import annotations

import gc
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from .count import count
from .errors import UsageError
from .execution import DEFAULT_MODE, FUSED_MODES, check_mode, simulate
from .ir import Graph
from .project import project
from .report.model import Report, build_report

__all__ = ["ModelRequest", "load_graph", "analyze_graph", "mode_graph", "compiled_rewrite"]


@dataclass
class ModelRequest:
    """What the user asked for: a path or a workload name, plus shaping options.

    The shaping options apply to models/ workloads only; `dims` to files only (`load_graph` refuses the
    other combinations).

    Attributes
    ----------
    ref : str
        An ``.onnx`` path, a ``.pt2`` path (torch.export.save), a workload name (``graphperf models``) or
        the path of a Hugging Face ``config.json`` (``models/hf_config.py``; shaped like a workload).
    config : str
        The workload's size (``"full"``, ``"tiny"``, ...).
    phase, batch, seq, kv_len, dtype : optional
        Shape a workload (as the CLI's ``--phase``, ``--batch``, ``--seq``, ``--kv-len``, ``--dtype``);
        None keeps the workload's default.
    dims : Mapping[str, int]
        Sizes of a file's named dynamic dimensions (``--dim NAME=N``).
    attention : str or None
        ``"eager"`` for a workload's unfused attention chain; None for sdpa.
    import_modules : tuple of str
        Modules imported before loading: libraries that register custom ops (``--import``).

    Example
    -------
    >>> from graphperf import ModelRequest
    >>> req = ModelRequest("gpt2", config="tiny", batch=2, seq=16)
    >>> req.ref, req.config, req.batch, dict(req.dims)
    ('gpt2', 'tiny', 2, {})
    """

    ref: str
    config: str = "full"
    phase: Optional[str] = None
    batch: Optional[int] = None
    seq: Optional[int] = None
    kv_len: Optional[int] = None
    dtype: Optional[str] = None
    dims: Mapping[str, int] = field(default_factory=dict)
    attention: Optional[str] = None  # models/ workloads: "eager" for the unfused chain; None = sdpa
    import_modules: tuple[str, ...] = ()  # imported before loading: libraries that register custom ops


_SHAPING = ("phase", "batch", "seq", "kv_len", "dtype", "attention")

# Absurd workload shapes are refused before anything is built or traced (exit 2, one line): a batch above
# MAX_BATCH, or any example input above MAX_INPUT_NUMEL elements, the limit ONNX files get
# (graphperf/capture/onnx_shapes.py). --seq and --kv-len are bounded by the model's max_positions already.
MAX_BATCH = 2**20
MAX_INPUT_NUMEL = 2**40


@contextmanager
def gc_paused():
    """Pause Python's cyclic garbage collector while a pass allocates one object per node.

    ONNX capture and analysis build acyclic records (reference counting frees them); the collector's
    generation scans over 100k fresh objects cost about 40% of the analysis time (measured on the
    100k-node synthetic graph of benchmarks/). It is re-enabled afterwards, as it was.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _reject_shaping(req: ModelRequest, kind: str) -> None:
    given = [f"--{k.replace('_', '-')}" for k in _SHAPING if getattr(req, k) is not None]
    if given:
        raise UsageError(f"{req.ref}: {', '.join(given)} apply to models/ workloads, not to {kind} files; "
                         "use --dim NAME=N to bind the file's dynamic dimensions")


def load_graph(req: ModelRequest) -> tuple[Graph, dict[str, Any]]:
    """Capture the requested model; returns the graph and the report's `model` section.

    Parameters
    ----------
    req : ModelRequest
        The model (file or workload name) and its shaping options.

    Returns
    -------
    graph : Graph
        The captured graph, not canonicalized yet.
    model : dict
        The report's ``model`` section: name, frontend, source, description (and config, family for a
        workload; dims for a file).

    Raises
    ------
    UsageError
        An unknown workload, an unsupported or unreadable file, shaping options given to a file
        (or `dims` to a workload), shapes above the limits.

    Example
    -------
    >>> import graphperf
    >>> graph, model = graphperf.load_graph(graphperf.ModelRequest("gpt2", config="tiny"))
    >>> model["frontend"], model["config"], len(graph) > 0
    ('torch.export', 'tiny', True)
    >>> graphperf.load_graph(graphperf.ModelRequest("no-such-model"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    graphperf.errors.UsageError: unknown model 'no-such-model': not a file and not a workload; ...
    """
    if req.import_modules:
        from .capture.torch_export import import_libraries

        import_libraries(req.import_modules)
    ref = req.ref
    lower = ref.lower()
    if lower.endswith(".onnx"):
        _reject_shaping(req, "ONNX")
        from .capture.onnx_capture import capture_onnx

        with gc_paused():  # not around torch.export, whose tracing state does hold cycles
            graph = capture_onnx(ref, dims=dict(req.dims))
        info = {"name": os.path.basename(ref), "frontend": "onnx", "source": ref,
                "description": os.path.basename(ref), "dims": dict(sorted(req.dims.items()))}
        return graph, info
    if lower.endswith(".pt2"):
        _reject_shaping(req, ".pt2")
        from .capture.torch_export import capture_exported, load_pt2

        graph = capture_exported(load_pt2(ref), name=os.path.basename(ref), dims=dict(req.dims))
        info = {"name": os.path.basename(ref), "frontend": "torch.export", "source": ref,
                "description": os.path.basename(ref), "dims": dict(sorted(req.dims.items()))}
        return graph, info
    if not lower.endswith(".json") and (os.path.sep in ref or os.path.exists(ref)):
        raise UsageError(f"{ref}: unsupported model file; pass an .onnx file, a .pt2 file "
                         "(torch.export.save), a Hugging Face config.json or a workload name from `graphperf models`")
    if req.dims:
        raise UsageError(f"{ref}: --dim binds dimensions of .onnx/.pt2 files; shape workloads with "
                         "--batch, --seq, --kv-len")
    return _load_workload(req)


def _load_workload(req: ModelRequest) -> tuple[Graph, dict[str, Any]]:
    from graphperf import models

    from .capture.torch_export import capture_module

    try:
        spec = models.get_model(req.ref)
    except KeyError:
        names = ", ".join(m.name for m in models.list_models())
        raise UsageError(f"unknown model {req.ref!r}: not a file and not a workload; choose one of {names} "
                         "(see `graphperf models`)") from None
    if req.batch is not None and req.batch > MAX_BATCH:
        raise UsageError(f"{req.ref}: --batch {req.batch} is above the limit of {MAX_BATCH:,} (2**20); "
                         "pass a smaller --batch")
    try:
        wl = models.build(req.ref, config=req.config, phase=req.phase, batch=req.batch, seq=req.seq,
                          kv_len=req.kv_len, dtype=req.dtype, device="meta", attention=req.attention or "sdpa")
    except (ValueError, KeyError) as exc:
        raise UsageError(f"{req.ref}: {exc.args[0] if exc.args else exc}") from None  # KeyError's str() adds quotes
    _check_input_sizes(req, wl.args)
    graph = capture_module(wl.module, wl.args, name=req.ref)
    source = req.ref if req.ref.lower().endswith(".json") else f"graphperf.models:{req.ref}"
    info = {"name": req.ref, "frontend": "torch.export", "source": source,
            "config": req.config, "description": wl.description, "family": spec.family}
    return graph, info


def _check_input_sizes(req: ModelRequest, args) -> None:
    """Refuse a workload whose example inputs (token ids, KV cache, images) exceed MAX_INPUT_NUMEL elements."""
    for t in _tensors(args):
        if t.numel() > MAX_INPUT_NUMEL:
            flags = ", ".join(f"--{k.replace('_', '-')} {getattr(req, k)}" for k in ("batch", "seq", "kv_len")
                              if getattr(req, k) is not None) or "the default shape"
            raise UsageError(f"{req.ref}: {flags} gives an input of shape {list(t.shape)} ({t.numel():.3g} "
                             f"elements), above the limit of 2**40 elements; pass a smaller --batch, --seq or "
                             "--kv-len")


def _tensors(value) -> list:
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    return []


def mode_graph(graph: Graph, target, mode: str = DEFAULT_MODE) -> tuple[Graph, Optional[dict[str, Any]]]:
    """The graph `mode` runs: `graph` itself, or for ``compiled`` and ``reduce-overhead`` the graph rewritten
    by every what-if fusion rule (`passes.rewrite.rewrite` with ``--fuse auto``: the kernels a compiler emits)
    and a summary of that rewrite (None for the other modes). `graph` should be canonical already."""
    if check_mode(mode) not in FUSED_MODES:
        return graph, None
    from graphperf.passes.rewrite import FUSE_RULES

    fused, rewrites = compiled_rewrite(graph, target)
    return fused, {"fuse": "auto", "rules": list(FUSE_RULES),
                   "groups_formed": sum(r.get("groups_formed", 0) for r in rewrites),
                   "nodes_fused": sum(r.get("nodes_fused", 0) for r in rewrites)}


def compiled_rewrite(graph: Graph, target) -> tuple[Graph, list[dict]]:
    """The ``compiled`` mode's rewrite of `graph`: the what-if fusion rules of ``--fuse auto``
    (`passes.rewrite.rewrite`), with each rule's record (its groups: fused node and members)."""
    from graphperf.passes.rewrite import FUSE_RULES, rewrite

    fused, rewrites, _ = rewrite(graph, list(FUSE_RULES), target=target)
    return fused, rewrites


def analyze_graph(graph: Graph, target, model: Mapping[str, Any], layout_as_views: bool = True,
                  mode: str = DEFAULT_MODE) -> Report:
    """Canonicalize, count every node, project it on `target`, queue it in the execution `mode`
    (graph | eager | compiled; graphperf/execution.py) and build the report. `layout_as_views`
    (passes/canonicalize.py): False projects transpose/split/slice as copies.

    Parameters
    ----------
    graph : Graph
        A captured graph (`load_graph`, `graphperf.capture`); it is not changed.
    target : Target
        The device (`graphperf.load_target`).
    model : Mapping[str, Any]
        The report's ``model`` section (`load_graph`'s second result); the canonicalization summary
        (and the compiled rewrite's) are added to a copy.
    layout_as_views : bool
        True (default): transpose, split and slice are free views; False: copies.
    mode : str
        The execution model: ``"graph"`` (default), ``"eager"``, ``"compiled"`` or ``"reduce-overhead"``.

    Returns
    -------
    Report
        Per-node counts and times, totals, the execution model's wall time.

    Raises
    ------
    UsageError
        An unknown `mode`.

    Example
    -------
    >>> import graphperf
    >>> graph, model = graphperf.load_graph(graphperf.ModelRequest("gpt2", config="tiny"))
    >>> report = graphperf.analyze_graph(graph, graphperf.load_target("h100"), model, mode="eager")
    >>> report.totals["coverage"], report.totals["mode"]
    (1.0, 'eager')
    """
    from graphperf.passes import canonicalize, peak_activation_memory

    check_mode(mode)
    with gc_paused():
        canon = canonicalize(graph, layout_as_views)
        graph = canon.graph
        model = {**model, "canonicalized": canon.summary()}
        graph, compiled = mode_graph(graph, target, mode)
        if compiled is not None:
            model["compiled"] = compiled
        counts = count(graph)
        times = project(graph, counts, target)
        execution = simulate(times, target, mode, [nc.node.op.name for nc in counts])
        peak = peak_activation_memory(graph)
        return build_report(graph, counts, times, target, dict(model), peak.bytes, execution)
