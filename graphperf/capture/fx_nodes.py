"""Shared by the torch frontends: turn ATen-level FX nodes (with fake-tensor ``meta["val"]``) into IR.

`FxNodeCapture` walks FX nodes one at a time: placeholders become values of the kind the caller
says ("weight" or "input"), ``call_function`` nodes become `Node`s whose op is canonical where
`aten_ops` has an alias (else ``OpId(namespace, "ns.op.overload")``, reported as unknown),
``getitem`` nodes are folded into the outputs of the node they index, and nodes that produce no
tensor (symbolic-size arithmetic, assertions) are dropped. Shapes come from ``meta["val"]``;
symbolic sizes are bound through `DimBinder` (one error lists every unbound symbol).

Both `torch_export` (an ExportedProgram's graph) and `fx_graph` (torch.compile / aot_autograd
graph modules) drive it; neither computes a cost.
"""

from __future__ import annotations

import operator
from typing import Any, Callable, Mapping, Optional

import torch

from ..errors import AnalysisError
from ..ir import Graph, Node, OpId, TensorType, Value
from ..ops import canonical
from .aten_ops import AtenAlias, alias_for, functional_overload
from .shapes import DimBinder

__all__ = ["FxNodeCapture", "torch_dtype_name", "source_name", "flat_tensor_args"]

_DTYPES = {
    torch.float64: "float64", torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16",
    torch.int64: "int64", torch.int32: "int32", torch.int16: "int16", torch.int8: "int8",
    torch.uint8: "uint8", torch.bool: "bool", torch.complex64: "complex64", torch.complex128: "complex128",
    torch.float8_e4m3fn: "float8_e4m3fn", torch.float8_e5m2: "float8_e5m2",
}
aten = torch.ops.aten


def torch_dtype_name(dtype: torch.dtype) -> str:
    try:
        return _DTYPES[dtype]
    except KeyError:
        raise AnalysisError(f"dtype {dtype} has no graphperf equivalent: add it to graphperf/dtypes.py") from None


def _bind(fx_node: torch.fx.Node) -> dict[str, Any]:
    """Schema argument name -> value; out= arguments are left out (they are the node's outputs)."""
    schema = fx_node.target._schema
    bound: dict[str, Any] = {}
    for i, arg in enumerate(schema.arguments):
        if arg.is_out:
            continue
        if i < len(fx_node.args) and not arg.kwarg_only:
            bound[arg.name] = fx_node.args[i]
        elif arg.name in fx_node.kwargs:
            bound[arg.name] = fx_node.kwargs[arg.name]
        elif arg.has_default_value():
            bound[arg.name] = arg.default_value
        else:
            bound[arg.name] = None
    return bound


def flat_tensor_args(value: Any) -> list[Optional[torch.fx.Node]]:
    """The FX nodes (and None holes) in an argument that is a node or a list of nodes."""
    if isinstance(value, torch.fx.Node):
        return [value]
    if isinstance(value, (list, tuple)):
        out: list[Optional[torch.fx.Node]] = []
        for v in value:
            if v is None or isinstance(v, torch.fx.Node):
                out.append(v)
        return out
    return []


def _is_tensor_node(v: Any) -> bool:
    return isinstance(v, torch.fx.Node) and isinstance(v.meta.get("val"), torch.Tensor)


class FxNodeCapture:
    """Accumulates values and nodes from FX nodes; `graph()` returns the finished `Graph`.

    `module_path(fx_node) -> str` gives each node's layer path (frontends spell it differently).
    """

    def __init__(self, name: str, dims: Optional[Mapping[str, int]], module_path: Callable[[torch.fx.Node], str]):
        self.name = name
        self.binder = DimBinder(name, dims)
        self.module_path = module_path
        self.values: dict[str, Value] = {}
        self.nodes: list[Node] = []
        self.outputs: list[str] = []
        self.fx_to_value: dict[str, str] = {}  # fx node name -> value name (tensor results)
        self.tuple_outputs: dict[str, list[Optional[str]]] = {}

    def type_of(self, val: torch.Tensor, where: str) -> TensorType:
        shape = tuple(self.binder.size(d, where) for d in val.shape)
        return TensorType(shape, torch_dtype_name(val.dtype))

    def placeholder(self, fx_node: torch.fx.Node, kind: str) -> None:
        """A graph input of `kind` ("weight" or "input"); non-tensor placeholders are skipped."""
        val = fx_node.meta.get("val")
        if isinstance(val, torch.Tensor):
            self.values[fx_node.name] = Value(fx_node.name, self.type_of(val, fx_node.name), kind, None, fx_node.name)
            self.fx_to_value[fx_node.name] = fx_node.name

    def output(self, fx_node: torch.fx.Node) -> None:
        for arg in flat_tensor_args(fx_node.args[0]):
            if arg is not None and arg.name in self.fx_to_value:
                self.outputs.append(self.fx_to_value[arg.name])

    def graph(self, meta: Mapping[str, Any]) -> Graph:
        self.binder.raise_unbound()
        return Graph(self.name, self.nodes, self.values, self.outputs, meta)

    def call(self, fx_node: torch.fx.Node) -> None:
        target = fx_node.target
        val = fx_node.meta.get("val")
        if target is operator.getitem:
            parent, index = fx_node.args
            outs = self.tuple_outputs.get(parent.name)
            if outs is not None and index < len(outs) and outs[index] is not None:
                self.fx_to_value[fx_node.name] = outs[index]
            return
        results = val if isinstance(val, (tuple, list)) else [val]
        if not any(isinstance(r, torch.Tensor) for r in results):
            return  # symbolic-size arithmetic and assertions: no device work
        out_names: list[Optional[str]] = []
        for i, r in enumerate(results):
            if isinstance(r, torch.Tensor):
                vname = fx_node.name if len(results) == 1 and not isinstance(val, (tuple, list)) else f"{fx_node.name}.{i}"
                self.values[vname] = Value(vname, self.type_of(r, fx_node.name), "activation", fx_node.name)
                out_names.append(vname)
            else:
                out_names.append(None)
        if isinstance(val, (tuple, list)):
            self.tuple_outputs[fx_node.name] = out_names
        else:
            self.fx_to_value[fx_node.name] = out_names[0]
        op, inputs, attrs = self._classify(fx_node)
        input_names = tuple(None if a is None else self.fx_to_value.get(a.name) for a in inputs)
        self.nodes.append(Node(fx_node.name, op, source_name(target), input_names,
                               tuple(n for n in out_names if n is not None), attrs, self.module_path(fx_node)))

    def _classify(self, fx_node: torch.fx.Node) -> tuple[OpId, list, dict]:
        target = fx_node.target
        alias = alias_for(target) if isinstance(target, torch._ops.OpOverload) else None
        if alias is None:
            tensor_args = [a for a in (*fx_node.args, *fx_node.kwargs.values()) for a in flat_tensor_args(a)
                           if a is not None and _is_tensor_node(a)]
            return OpId(_domain(target), source_name(target)), tensor_args, {}
        bound = _bind(fx_node)
        if alias.inputs is None:
            inputs = [a for v in bound.values() for a in flat_tensor_args(v) if a is None or _is_tensor_node(a)]
            inputs = [a for a in inputs if a is not None]
        else:
            inputs = [a for name in alias.inputs for a in (flat_tensor_args(bound.get(name)) or [None])]
        in_vals = [None if a is None else a.meta["val"] for a in inputs]
        results = fx_node.meta["val"]
        out_vals = list(results) if isinstance(results, (tuple, list)) else [results]
        attrs = alias.attrs(bound, in_vals, out_vals) if alias.attrs else {}
        name = _resolve(functional_overload(target), alias, bound, in_vals, out_vals,
                        lambda dims: self._ints(dims, fx_node.name))
        return canonical(name), inputs, attrs

    def _ints(self, dims: Any, where: str) -> tuple[int, ...]:
        """Sizes or strides as ints, symbols bound by the user's dims (1 while unbound: the binder
        reports them). Never int() on a SymInt, which would add a guard to a graph being compiled."""
        out = []
        for d in dims:
            if isinstance(d, int):
                out.append(d)
                continue
            expr = d.node.expr
            bound = self.binder.dims
            if all(str(s) in bound for s in expr.free_symbols):
                out.append(int(expr.subs({s: bound[str(s)] for s in expr.free_symbols})))
            else:
                out.append(self.binder.size(d, where))
        return tuple(out)


def _resolve(target: Any, alias: AtenAlias, bound: dict, in_vals: list, out_vals: list,
             ints: Callable[[Any], tuple[int, ...]]) -> str:
    """Ops whose canonical identity depends on layout or arguments; `ints` turns sizes into ints."""
    packet = target.overloadpacket
    if packet in (aten.reshape, aten.flatten, aten.view, aten._unsafe_view):
        return "view" if _viewable(in_vals[0] if in_vals else None, out_vals[0], ints) else "reshape_copy"
    if packet in (aten.to, aten._to_copy, aten.type_as):
        return "view" if in_vals and in_vals[0] is not None and in_vals[0].dtype == out_vals[0].dtype \
            and packet is not aten._to_copy else "cast"
    if packet is aten.contiguous:
        return "view" if _contiguous(in_vals[0], ints) else "copy"
    if packet is aten.gelu and bound.get("approximate") == "tanh":
        return "gelu_tanh"
    if packet is aten.gelu_backward and bound.get("approximate") == "tanh":
        return "gelu_tanh_backward"
    if packet is aten.dropout and not bound.get("train"):
        return "view"
    return alias.op


def _viewable(src: Optional[torch.Tensor], dst: torch.Tensor, ints: Callable[[Any], tuple[int, ...]]) -> bool:
    if src is None:
        return True
    probe = torch.empty_strided(ints(src.shape), ints(src.stride()), dtype=src.dtype, device="meta")
    try:
        probe.view(ints(dst.shape))
        return True
    except RuntimeError:
        return False


def _contiguous(t: torch.Tensor, ints: Callable[[Any], tuple[int, ...]]) -> bool:
    return torch.empty_strided(ints(t.shape), ints(t.stride()), dtype=t.dtype, device="meta").is_contiguous()


def _domain(target: Any) -> str:
    if isinstance(target, torch._ops.OpOverload):
        return target.namespace
    return "torch"


def source_name(target: Any) -> str:
    """The frontend's name of an op: ``"aten.mm.default"`` for an OpOverload."""
    if isinstance(target, torch._ops.OpOverload):
        return f"{target.namespace}.{target._opname}.{target._overloadname}"
    return getattr(target, "__name__", str(target))
