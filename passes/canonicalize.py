"""Canonicalization: rewrite a captured graph into the form graphperf counts, whatever the frontend.

Frontends spell one computation differently: the ONNX exporter splits `aten.linear` into MatMul +
Add (ONNX has no N-D Gemm) and writes layout changes (Transpose, Split, Slice) as separate
kernels where torch.export keeps strided views. So that one model counts the same through every
frontend, two rewrites run on every captured graph:

- bias folding: a matmul without bias whose only consumer adds a 1-D weight along the output's
  last dimension becomes one matmul with a bias input (a linear layer), as torch.export records it
  and as GEMM epilogues execute it.
- batch-norm folding: an inference batch_norm whose input is a convolution used by nothing else
  folds into that convolution (its scale into the weights offline, its shift into the bias), as
  every inference runtime does and as the ONNX exporter's optimizer already did. Graphs captured from
  PyTorch (torch.export, torch.compile) keep their batch norms by default: eager PyTorch runs each as
  a kernel of its own (measured on an H200, resnet50's 53 batch norms took 1.27 ms of its 5.0 ms of
  kernels); `fold_batch_norm=True` folds them there too.
- layout ops as views: `transpose`, `split` and `slice` move no data. Matrix kernels and strided
  elementwise kernels read permuted or offset operands in place (cuBLAS transposes, attention
  kernels' strides, TensorIterator), and graph compilers assign layouts to remove them. A copy is
  still counted where the graph demands contiguous data: concat, pad, tile/expand copies,
  clone/contiguous, casts, and reshapes the runtime must materialise.

Rewrites never mutate their input: `canonicalize` returns a new `Graph` and what it changed (a
`CanonicalizeResult`, passes/result.py's `PassResult`; its contract ensures ``"canonical"``, which the
fusion, padding and tiling rewrites require).
"""

from __future__ import annotations

from dataclasses import dataclass

from graphperf.ir import Graph, Node, Value
from graphperf.ops import LAYOUT_OPS, canonical

from .result import PassResult, graph_pass

__all__ = ["CanonicalizeResult", "canonicalize", "EAGER_FRONTENDS"]


@dataclass(frozen=True, kw_only=True)
class CanonicalizeResult(PassResult):
    """The canonical graph (a new `Graph`) and how many of each rewrite made it (`summary`); a `PassResult`
    whose one record is ``{"rewrite": "canonicalize", **summary()}`` and which never refuses."""

    bias_adds_folded: int
    batch_norms_folded: int
    layout_ops_as_views: int

    def summary(self) -> dict[str, int]:
        """The rewrite counts by name, as the report's ``model["canonicalized"]`` holds them."""
        return {"bias_adds_folded": self.bias_adds_folded, "batch_norms_folded": self.batch_norms_folded,
                "layout_ops_as_views": self.layout_ops_as_views}


def _is_bias(value: Value, out_shape: tuple[int, ...]) -> bool:
    t = value.type
    if value.kind != "weight" or t is None or not out_shape:
        return False
    dims = tuple(d for d in t.shape)
    while len(dims) > 1 and dims[0] == 1:
        dims = dims[1:]
    return len(dims) == 1 and dims[0] == out_shape[-1]


def _fold_target(graph: Graph, consumers, by_name, node: Node, op, values) -> Node | None:
    """The single consumer of `node`'s only output if it has op `op` and takes that output first."""
    if len(node.outputs) != 1 or node.outputs[0] in graph.outputs:
        return None
    users = consumers.get(node.outputs[0], [])
    if len(users) != 1:
        return None
    user = by_name[users[0]]
    if user.op != op or user.inputs.count(node.outputs[0]) != 1:
        return None
    if values[user.outputs[0]].type != values[node.outputs[0]].type:
        return None
    return user


#: Frontends whose graphs run as eager PyTorch: their batch norms are kernels of their own.
EAGER_FRONTENDS = ("torch.export", "torch.compile")


@graph_pass("canonicalize", ensures={"canonical"})
def canonicalize(graph: Graph, layout_as_views: bool = True, fold_batch_norm: bool | None = None) -> CanonicalizeResult:
    """`layout_as_views=False` keeps transpose/split/slice as the copies a runtime that executes them
    literally performs (onnxruntime's CPU kernels: see graphperf/correlate/match.py). `fold_batch_norm`:
    None folds batch norms into convolutions unless the graph comes from PyTorch (`EAGER_FRONTENDS`).

    The canonical graph carries ``meta["canonical"]`` (the options and the counts), which the passes that
    require a canonical graph keep: canonicalizing it again with the same options returns it unchanged
    (``modified`` False) with the counts of the run that made it, so a pipeline canonicalizes a graph once."""
    if fold_batch_norm is None:
        fold_batch_norm = graph.meta.get("frontend") not in EAGER_FRONTENDS
    mark = graph.meta.get("canonical")
    if mark is not None and (mark["layout_as_views"], mark["fold_batch_norm"]) == (layout_as_views, fold_batch_norm):
        counts = dict(mark["counts"])
        return CanonicalizeResult(graph, False, [{"rewrite": "canonicalize", **counts}], **counts)
    matmul, add, view = canonical("matmul"), canonical("add"), canonical("view")
    conv, batch_norm = canonical("conv"), canonical("batch_norm")
    layout = {canonical(name) for name in LAYOUT_OPS} if layout_as_views else set()
    consumers = graph.consumers()
    values = dict(graph.values)
    by_name = {n.name: n for n in graph.nodes}
    folded: set[str] = set()
    replaced: dict[str, Node] = {}
    adds = norms = 0

    def fold(node: Node, user: Node, inputs: tuple) -> None:
        replaced[node.name] = Node(node.name, node.op, f"{node.source_op}+{user.source_op}", inputs,
                                   user.outputs, node.attrs, node.module)
        folded.add(user.name)
        del values[node.outputs[0]]
        out = values[user.outputs[0]]
        values[user.outputs[0]] = Value(out.name, out.type, out.kind, node.name, out.source_name)

    for node in graph.nodes:
        if node.op == matmul and len(node.inputs) == 2:
            user = _fold_target(graph, consumers, by_name, node, add, values)
            if user is None or len(user.inputs) != 2:
                continue
            out = node.outputs[0]
            other = user.inputs[1] if user.inputs[0] == out else user.inputs[0]
            if other is None or values[out].type is None or not _is_bias(values[other], values[out].type.shape):
                continue
            fold(node, user, (*node.inputs, other))
            adds += 1
        elif node.op == conv and fold_batch_norm:
            user = _fold_target(graph, consumers, by_name, node, batch_norm, values)
            if user is None or user.inputs[0] != node.outputs[0]:
                continue
            params = [p for p in user.inputs[1:] if p is not None]
            if len(params) != 4 or any(values[p].kind != "weight" for p in params):
                continue
            bias = node.inputs[2] if len(node.inputs) > 2 and node.inputs[2] is not None else user.inputs[2]
            fold(node, user, (node.inputs[0], node.inputs[1], bias))
            norms += 1
    nodes: list[Node] = []
    as_views = 0
    for node in graph.nodes:
        if node.name in folded:
            continue
        node = replaced.get(node.name, node)
        if node.op in layout:
            node = Node(node.name, view, node.source_op, node.inputs, node.outputs, node.attrs, node.module)
            as_views += 1
        nodes.append(node)
    counts = {"bias_adds_folded": adds, "batch_norms_folded": norms, "layout_ops_as_views": as_views}
    mark = {"layout_as_views": layout_as_views, "fold_batch_norm": fold_batch_norm, "counts": counts}
    new = Graph(graph.name, nodes, values, graph.outputs, {**graph.meta, "canonical": mark})
    return CanonicalizeResult(new, any(counts.values()), [{"rewrite": "canonicalize", **counts}], **counts)
