"""MLIR-level analysis: lower through torch-mlir, cost every linalg op, project and report.

`load_mlir(req)` resolves a model reference the way `graphperf.pipeline.load_graph` does (a
models/ workload, a ``.pt2`` file, an ``.onnx`` file), captures the graph-level `Graph` too (the
origin of every linalg op, and the fallback for what does not lower), lowers to linalg and
returns an `MlirCapture`. `analyze_mlir` runs the same canonicalize -> count -> project -> report
pipeline as the graph level on the linalg graph, so the report format is the same.

Guarantees:
- Every node of the linalg graph carries its graph node: ``node.attrs["graph_node"]``, its name
  ``<graph node>#<op index>`` and the graph node's module path in ``node.module``, so the report's
  by-module roll-up works and `rollup_by_graph_node` groups MLIR costs per graph node.
- An op that did not lower to linalg (a ``torch.*`` op left by torch-mlir, or ``tm_tensor.*``)
  is named in ``report.model["warnings"]``; its graph node is costed with the graph-level rules
  (all of that node's cost goes on its first unlowered op, the node's other MLIR ops cost
  nothing), so no part of the model is silently zero.
- The report's ``model["mlir"]["by_graph_node"]`` is `rollup_by_graph_node` (MLIR figures per graph
  node) and ``model["mlir"]["contraction_tiles"]`` holds the best tile of every linalg
  contraction on the target (graphperf.mlir.tiling, the what-if tile model).
- An ONNX file's dynamic dimensions are bound from ``req.dims`` before lowering, as at the graph level (same
  errors for an unknown or unbound dimension); ``--dim`` on a .pt2 file or a workload is a `UsageError`.
- Workloads are built with real (random) weights, because torch-mlir imports parameters as
  constants; configs above `MAX_WEIGHT_BYTES` of weights are refused with a `UsageError`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

from ..count import count
from ..errors import UsageError
from ..ir import Graph, Node
from ..ops import canonical
from ..pipeline import ModelRequest, analyze_graph, gc_paused
from .convert import to_graph
from .lower import Lowered, lower_exported, lower_onnx

__all__ = ["MlirCapture", "load_mlir", "analyze_mlir", "rollup_by_graph_node", "MAX_WEIGHT_BYTES"]

MAX_WEIGHT_BYTES = 1 << 30  # weights torch-mlir would embed as constants: 1 GiB at most


@dataclass
class MlirCapture:
    lowered: Lowered
    graph: Graph  # the linalg graph (one node per MLIR op)
    graph_level: Graph  # the torch.export / ONNX graph the ops came from
    info: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def _build_workload(req: ModelRequest):
    from graphperf import models

    try:
        models.get_model(req.ref)
    except KeyError:
        names = ", ".join(m.name for m in models.list_models())
        raise UsageError(f"unknown model {req.ref!r}: not a file and not a workload; choose one of {names}") from None
    kwargs = dict(config=req.config, phase=req.phase, batch=req.batch, seq=req.seq, kv_len=req.kv_len,
                  dtype=req.dtype)
    if getattr(req, "attention", None):  # --attention eager: the unfused softmax chain
        kwargs["attention"] = req.attention
    try:
        meta = models.build(req.ref, device="meta", **kwargs)
    except (ValueError, KeyError) as exc:
        raise UsageError(f"{req.ref}: {str(exc).strip(chr(39))}") from None
    weight_bytes = sum(p.numel() * p.element_size() for p in meta.module.parameters())
    if weight_bytes > MAX_WEIGHT_BYTES:
        raise UsageError(f"{req.ref} --config {req.config}: the MLIR level embeds weights as constants and this "
                         f"config holds {weight_bytes / 2**30:.1f} GiB of them; use --config tiny (or --level graph)")
    return models.build(req.ref, device="cpu", **kwargs)


def load_mlir(req: ModelRequest, *, stage: str = "linalg", keep_ops: Iterable[str] = ()) -> MlirCapture:
    """Capture `req` at the graph level and lower it through torch-mlir to `stage`."""
    import torch

    from ..capture.torch_export import capture_exported, load_pt2
    from ..pipeline import load_graph

    t0 = time.perf_counter()
    ref = req.ref
    if ref.lower().endswith(".onnx"):
        graph_level, info = load_graph(req)  # refuses unknown --dim names and unbound dynamic dimensions
        lowered = lower_onnx(ref, stage=stage, dims=graph_level.meta.get("dims", req.dims))
    else:
        if req.dims:
            what = ("--dim binds dynamic dimensions of .onnx files at the MLIR level; export the .pt2 with static "
                    "shapes, or use --level graph") if ref.lower().endswith(".pt2") else \
                "--dim binds dimensions of .onnx/.pt2 files; shape workloads with --batch, --seq, --kv-len"
            raise UsageError(f"{ref}: {what}")
        if ref.lower().endswith(".pt2"):
            ep = load_pt2(ref)
            info = {"name": os.path.basename(ref), "frontend": "torch.export", "source": ref}
        else:
            if os.path.sep in ref or os.path.exists(ref):
                raise UsageError(f"{ref}: unsupported model file; pass an .onnx file, a .pt2 file or a workload name")
            wl = _build_workload(req)
            module = _fold_batch_norms(wl.module)
            try:
                ep = torch.export.export(module, tuple(wl.args), strict=False)
            except Exception as exc:
                raise UsageError(f"{ref}: torch.export failed: {str(exc).splitlines()[0]}") from None
            info = {"name": ref, "frontend": "torch.export", "source": f"graphperf.models:{ref}",
                    "config": req.config, "description": wl.description}
        graph_level = capture_exported(ep, name=info["name"])
        lowered = lower_exported(ep, stage=stage, keep_ops=keep_ops)
    seconds = {"lower_s": time.perf_counter() - t0}
    capture = MlirCapture(lowered, graph_level, graph_level, {**info, "level": "mlir"}, seconds=seconds)
    if stage == "linalg":
        t0 = time.perf_counter()
        with gc_paused():
            capture.graph = _with_fallbacks(to_graph(lowered, info["name"]), graph_level, capture.warnings)
        seconds["convert_s"] = time.perf_counter() - t0
    return capture


def _fold_batch_norms(module):
    """Fold inference batch norms into their convolutions before lowering (torch.fx's conv+bn fusion), the
    convention the graph level applies in canonicalization: every inference runtime folds them, torch-mlir
    does not. Modules without batch norms, or that FX cannot trace, are returned unchanged."""
    import torch

    if not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in module.modules()):
        return module
    try:
        from torch.fx.experimental.optimization import fuse

        return fuse(module)
    except Exception:  # FX symbolic tracing is narrower than torch.export: keep the batch norms
        return module


def _with_fallbacks(graph: Graph, graph_level: Graph, warnings: list[str]) -> Graph:
    """Module paths from the graph level; graph-level costs for the nodes with unlowered ops."""
    by_name = {n.name: n for n in graph_level.nodes}
    fallback_origins: dict[str, str] = {}  # graph node -> first unlowered op name
    for node in graph.nodes:
        if node.attrs.get("fallback"):
            fallback_origins.setdefault(node.attrs.get("graph_node", ""), node.source_op)
    level_costs = {}
    if fallback_origins:
        from graphperf.passes import canonicalize

        canon = canonicalize(graph_level).graph
        level_costs = {nc.node.name: nc for nc in count(canon)}
    done: set[str] = set()
    nodes: list[Node] = []
    for node in graph.nodes:
        origin = node.attrs.get("graph_node", "")
        source = by_name.get(origin)
        module = source.module if source is not None else ""
        if origin in fallback_origins:
            nc = level_costs.get(origin)
            first = origin not in done
            done.add(origin)
            attrs = dict(node.attrs)
            if nc is None or nc.cost is None:
                why = "it is not in the graph-level graph" if nc is None else nc.reason
                warnings.append(f"{node.source_op} (graph node {origin or '?'}) did not lower to linalg and the "
                                f"graph-level rule cannot cost it: {why}")
                node = Node(node.name, node.op, node.source_op, node.inputs, node.outputs, attrs, module)
            else:
                c = nc.cost if first else None
                attrs["graph_level_cost"] = {
                    "flops": c.flops if c else 0, "matrix_flops": c.matrix_flops if c else 0,
                    "transcendentals": c.transcendentals if c else 0,
                    "bytes_read": c.bytes_read if c else 0, "bytes_written": c.bytes_written if c else 0}
                if first:
                    warnings.append(f"{fallback_origins[origin]} (graph node {origin}, {nc.node.op}) did not lower "
                                    "to linalg; that node is counted with the graph-level rules")
                node = Node(node.name, canonical("linalg"), node.source_op, node.inputs, node.outputs, attrs, module)
        elif module:
            node = Node(node.name, node.op, node.source_op, node.inputs, node.outputs, node.attrs, module)
        nodes.append(node)
    return Graph(graph.name, nodes, graph.values, graph.outputs, graph.meta)


def analyze_mlir(capture: MlirCapture, target, mode: str = "graph"):
    """The report of the linalg graph on `target` in execution `mode` (same format as the graph level)."""
    if capture.lowered.stage != "linalg":
        raise UsageError("analysis needs the linalg stage; lower with stage='linalg'")
    meta = capture.graph.meta
    model = {**capture.info, "mlir": {"stage": "linalg-on-tensors", "frontend": capture.lowered.frontend,
                                      "classified_ops": meta.get("mlir_classified_ops", {}),
                                      "unlowered_ops": [op for op, _ in capture.lowered.unlowered]},
             "warnings": list(capture.warnings)}
    from .tiling import tile_contractions

    model["mlir"]["contraction_tiles"] = [t.to_dict() for t in tile_contractions(capture.graph, target)]
    report = analyze_graph(capture.graph, target, model, mode=mode)
    report.model["mlir"]["by_graph_node"] = rollup_by_graph_node(report)
    return report


def rollup_by_graph_node(report) -> list[dict[str, Any]]:
    """MLIR-level figures summed per graph node (node names are ``<graph node>#<index>``), by latency.

    Rows as the report's by-op and by-module roll-ups: name (the graph node), nodes (its MLIR ops),
    flops, matrix_flops, bytes, latency_s, unknown_nodes, time_share.
    """
    from ..report.model import _group

    return _group(report.nodes, lambda r: r.name.rpartition("#")[0] or r.name)
