"""The torch.export frontend: an `ExportedProgram` (in memory or a `.pt2` file) -> `Graph`.

Shapes and dtypes come from each FX node's ``meta["val"]`` (fake tensors), so a model built on
the meta device is captured without materialising a weight. Parameters, buffers and lifted
constants become values of kind "weight"; user inputs become "input". ``getitem`` nodes are folded
into the outputs of the node they index. Module paths come from ``nn_module_stack``.

Loading a `.pt2` never unpickles arbitrary Python objects: archives holding pickled objects are
refused, and every ``torch.load`` inside runs with ``weights_only`` forced on.
"""

from __future__ import annotations

import operator
import os
import zipfile
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Optional

import torch
from torch.export import ExportedProgram

from ..errors import AnalysisError, UsageError
from ..ir import Graph, Node, OpId, TensorType, Value
from ..ops import canonical
from .aten_ops import AtenAlias, alias_for
from .shapes import DimBinder

__all__ = ["capture_module", "capture_exported", "load_pt2", "torch_dtype_name"]

_DTYPES = {
    torch.float64: "float64", torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16",
    torch.int64: "int64", torch.int32: "int32", torch.int16: "int16", torch.int8: "int8",
    torch.uint8: "uint8", torch.bool: "bool", torch.complex64: "complex64", torch.complex128: "complex128",
    torch.float8_e4m3fn: "float8_e4m3fn", torch.float8_e5m2: "float8_e5m2",
}
_WEIGHT_KINDS = {"PARAMETER", "BUFFER", "CONSTANT_TENSOR"}
aten = torch.ops.aten


def torch_dtype_name(dtype: torch.dtype) -> str:
    try:
        return _DTYPES[dtype]
    except KeyError:
        raise AnalysisError(f"dtype {dtype} has no graphperf equivalent: add it to graphperf/dtypes.py") from None


def capture_module(module: torch.nn.Module, args: tuple, kwargs: Optional[dict] = None, *,
                   name: str = "model") -> Graph:
    """Export `module` with torch.export (non-strict) and capture the program."""
    try:
        ep = torch.export.export(module, tuple(args), kwargs or {}, strict=False)
    except Exception as exc:  # export errors are long; keep the first line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AnalysisError(f"{name}: torch.export failed: {first}") from exc
    return capture_exported(ep, name=name)


@contextmanager
def _weights_only_loads() -> Iterator[None]:
    old = os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD")
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TORCH_FORCE_WEIGHTS_ONLY_LOAD", None)
        else:
            os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = old


def load_pt2(path: str | os.PathLike) -> ExportedProgram:
    """Load a `torch.export.save` archive safely; UsageError for anything else."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such file; pass a .pt2 written by torch.export.save")
    if os.path.isdir(path):
        raise UsageError(f"{path}: is a directory; pass a .pt2 file")
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise UsageError(f"{path}: not a readable .pt2 archive ({exc}); re-save it with torch.export.save") from None
    if bad is not None:
        raise UsageError(f"{path}: archive member {bad} is corrupt (truncated file?); re-save it with torch.export.save")
    if not any(n.endswith("models/model.json") for n in names):
        raise UsageError(f"{path}: not a torch.export archive (no models/model.json); save it with torch.export.save")
    pickled = [n for n in names if "/constants/custom_obj_" in n or "/constants/opaque_obj_" in n]
    if pickled:
        raise UsageError(f"{path}: holds pickled Python objects ({pickled[0]}); graphperf does not unpickle them")
    try:
        with _weights_only_loads():
            return torch.export.load(path)
    except Exception as exc:
        raise UsageError(f"{path}: torch.export.load failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def _module_path(fx_node: torch.fx.Node) -> str:
    stack = fx_node.meta.get("nn_module_stack")
    if not stack:
        return ""
    path = list(stack.values())[-1][0]
    return path.replace("L['self'].", "").replace("L__self__.", "")


def _bind(fx_node: torch.fx.Node) -> dict[str, Any]:
    schema = fx_node.target._schema
    bound: dict[str, Any] = {}
    for i, arg in enumerate(schema.arguments):
        if i < len(fx_node.args) and not arg.kwarg_only:
            bound[arg.name] = fx_node.args[i]
        elif arg.name in fx_node.kwargs:
            bound[arg.name] = fx_node.kwargs[arg.name]
        elif arg.has_default_value():
            bound[arg.name] = arg.default_value
        else:
            bound[arg.name] = None
    return bound


def _flat_tensor_args(value: Any) -> list[Optional[torch.fx.Node]]:
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


class _Capture:
    def __init__(self, ep: ExportedProgram, name: str, dims: Optional[Mapping[str, int]]):
        self.ep = ep
        self.name = name
        self.binder = DimBinder(name, dims)
        self.values: dict[str, Value] = {}
        self.nodes: list[Node] = []
        self.fx_to_value: dict[str, str] = {}  # fx node name -> value name (tensor results)
        self.tuple_outputs: dict[str, list[Optional[str]]] = {}

    def type_of(self, val: torch.Tensor, where: str) -> TensorType:
        shape = tuple(self.binder.size(d, where) for d in val.shape)
        return TensorType(shape, torch_dtype_name(val.dtype))

    def run(self) -> Graph:
        kinds = {spec.arg.name: spec.kind.name for spec in self.ep.graph_signature.input_specs
                 if hasattr(spec.arg, "name")}
        param_count = 0
        outputs: list[str] = []
        for fx_node in self.ep.graph.nodes:
            if fx_node.op == "placeholder":
                val = fx_node.meta.get("val")
                if isinstance(val, torch.Tensor):
                    kind = "weight" if kinds.get(fx_node.name) in _WEIGHT_KINDS else "input"
                    if kinds.get(fx_node.name) == "PARAMETER":
                        param_count += val.numel()
                    self._add_value(fx_node.name, val, kind, None, fx_node.name)
            elif fx_node.op == "call_function":
                self._call(fx_node)
            elif fx_node.op == "output":
                for arg in _flat_tensor_args(fx_node.args[0]):
                    if arg is not None and arg.name in self.fx_to_value:
                        outputs.append(self.fx_to_value[arg.name])
        self.binder.raise_unbound()
        meta = {"frontend": "torch.export", "parameter_count": int(param_count)}
        return Graph(self.name, self.nodes, self.values, outputs, meta)

    def _add_value(self, name: str, val: torch.Tensor, kind: str, producer: Optional[str], source: str) -> None:
        self.values[name] = Value(name, self.type_of(val, source), kind, producer, source)
        self.fx_to_value[name] = name

    def _call(self, fx_node: torch.fx.Node) -> None:
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
        self.nodes.append(Node(fx_node.name, op, _source_name(target), input_names,
                               tuple(n for n in out_names if n is not None), attrs, _module_path(fx_node)))

    def _classify(self, fx_node: torch.fx.Node) -> tuple[OpId, list, dict]:
        target = fx_node.target
        alias = alias_for(target) if isinstance(target, torch._ops.OpOverload) else None
        if alias is None:
            tensor_args = [a for a in (*fx_node.args, *fx_node.kwargs.values()) for a in _flat_tensor_args(a)
                           if a is not None and _is_tensor_node(a)]
            return OpId(_domain(target), _source_name(target)), tensor_args, {}
        bound = _bind(fx_node)
        if alias.inputs is None:
            inputs = [a for v in bound.values() for a in _flat_tensor_args(v) if a is None or _is_tensor_node(a)]
            inputs = [a for a in inputs if a is not None]
        else:
            inputs = [a for name in alias.inputs for a in (_flat_tensor_args(bound.get(name)) or [None])]
        in_vals = [None if a is None else a.meta["val"] for a in inputs]
        results = fx_node.meta["val"]
        out_vals = list(results) if isinstance(results, (tuple, list)) else [results]
        attrs = alias.attrs(bound, in_vals, out_vals) if alias.attrs else {}
        name = _resolve(target, alias, bound, in_vals, out_vals)
        return canonical(name), inputs, attrs


def _resolve(target: Any, alias: AtenAlias, bound: dict, in_vals: list, out_vals: list) -> str:
    """Ops whose canonical identity depends on layout or arguments."""
    packet = target.overloadpacket
    if packet in (aten.reshape, aten.flatten, aten.view, aten._unsafe_view):
        return "view" if _viewable(in_vals[0] if in_vals else None, out_vals[0]) else "reshape_copy"
    if packet in (aten.to, aten._to_copy, aten.type_as):
        return "view" if in_vals and in_vals[0] is not None and in_vals[0].dtype == out_vals[0].dtype \
            and packet is not aten._to_copy else "cast"
    if packet is aten.contiguous:
        return "view" if in_vals[0].is_contiguous() else "copy"
    if packet is aten.gelu and bound.get("approximate") == "tanh":
        return "gelu_tanh"
    if packet is aten.dropout and not bound.get("train"):
        return "view"
    return alias.op


def _viewable(src: Optional[torch.Tensor], dst: torch.Tensor) -> bool:
    if src is None:
        return True
    probe = torch.empty_strided(tuple(int(s) for s in src.shape), tuple(int(s) for s in src.stride()),
                                dtype=src.dtype, device="meta")
    try:
        probe.view(tuple(int(s) for s in dst.shape))
        return True
    except RuntimeError:
        return False


def _domain(target: Any) -> str:
    if isinstance(target, torch._ops.OpOverload):
        return target.namespace
    return "torch"


def _source_name(target: Any) -> str:
    if isinstance(target, torch._ops.OpOverload):
        return f"{target.namespace}.{target._opname}.{target._overloadname}"
    return getattr(target, "__name__", str(target))


def capture_exported(ep: ExportedProgram, name: str = "model", dims: Optional[Mapping[str, int]] = None) -> Graph:
    """Capture an ExportedProgram; `dims` binds symbolic sizes by symbol name (e.g. {"s0": 8})."""
    return _Capture(ep, name, dims).run()
