"""The pipeline: resolve a model reference to a `Graph`, then canonicalize, count, project and report.

`load_graph` accepts an `.onnx` file, a `.pt2` file (torch.export.save) or a models/ workload
name; `analyze_graph` runs canonicalize -> count -> project -> liveness -> report on a captured graph.
"""

from __future__ import annotations

import gc
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from .count import count
from .errors import UsageError
from .ir import Graph
from .project import project
from .report.model import Report, build_report

__all__ = ["ModelRequest", "load_graph", "analyze_graph"]


@dataclass
class ModelRequest:
    """What the user asked for: a path or a workload name, plus shaping options."""

    ref: str
    config: str = "full"
    phase: Optional[str] = None
    batch: Optional[int] = None
    seq: Optional[int] = None
    kv_len: Optional[int] = None
    dtype: Optional[str] = None
    dims: Mapping[str, int] = field(default_factory=dict)
    attention: Optional[str] = None  # models/ workloads: "eager" for the unfused chain; None = sdpa


_SHAPING = ("phase", "batch", "seq", "kv_len", "dtype", "attention")


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
    """Capture the requested model; returns the graph and the report's `model` section."""
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
    if os.path.sep in ref or os.path.exists(ref):
        raise UsageError(f"{ref}: unsupported model file; pass an .onnx file, a .pt2 file "
                         "(torch.export.save) or a workload name from `graphperf models`")
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
    try:
        wl = models.build(req.ref, config=req.config, phase=req.phase, batch=req.batch, seq=req.seq,
                          kv_len=req.kv_len, dtype=req.dtype, device="meta", attention=req.attention or "sdpa")
    except (ValueError, KeyError) as exc:
        raise UsageError(f"{req.ref}: {str(exc).strip(chr(39))}") from None
    graph = capture_module(wl.module, wl.args, name=req.ref)
    info = {"name": req.ref, "frontend": "torch.export", "source": f"graphperf.models:{req.ref}",
            "config": req.config, "description": wl.description, "family": spec.family}
    return graph, info


def analyze_graph(graph: Graph, target, model: Mapping[str, Any], layout_as_views: bool = True) -> Report:
    """Canonicalize, count every node, project it on `target`, and build the report. `layout_as_views`
    (passes/canonicalize.py): False projects transpose/split/slice as copies."""
    from graphperf.passes import canonicalize, peak_activation_memory

    with gc_paused():
        canon = canonicalize(graph, layout_as_views)
        graph = canon.graph
        model = {**model, "canonicalized": canon.summary()}
        counts = count(graph)
        times = project(graph, counts, target)
        peak = peak_activation_memory(graph)
        return build_report(graph, counts, times, target, dict(model), peak.bytes)
