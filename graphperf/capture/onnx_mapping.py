"""The machinery every ONNX op table builds on: node views, parts, the registry's write side, shared helpers.

Guarantees: this module imports no op table (nothing above it in graphperf.capture), so each table module
(`onnx_ops`, `onnx_tail_ops`, `onnx_contrib_ops`, `onnx_contrib_attention`) imports only this module and
none imports another table. A table registers its mappers with `register` (or `register_simple`,
`register_contrib`) into `TABLE` / `TARGETS`; a duplicate registration raises, so the order in which the
tables are imported does not change the registry. The registry is complete once `onnx_ops` is imported:
it imports every table, and it is where the registry is read (`onnx_ops.mapper`, `onnx_ops.TARGETS`).

Also here: `DTYPES` (ONNX element types -> canonical dtypes) and the readers of node attributes, Constant
values and exporter module paths, which the capture and the tables share.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import numpy as np
import onnx
from onnx import TensorProto

from ..ir import TensorType

__all__ = [
    "OnnxNode", "Part", "MapResult", "Mapper", "TABLE", "TARGETS", "DTYPES", "DTYPE_STAND_INS", "MS",
    "UnmappableNode", "KeepUnknown", "register", "register_simple", "register_contrib", "trim_inputs",
    "normalize_axis", "const_ints", "norm_numel", "pool_mapper", "global_pool_mapper", "reduce_mapper",
    "typed_value", "temp_value", "view_part", "sample_mode", "attr_values", "constant_tensor", "module_path",
    "module_of",
]

MS = "com.microsoft"  # onnxruntime's contrib op domain


class UnmappableNode(Exception):
    """A node whose canonical form cannot be built (the message says why); the capture reports it."""


class KeepUnknown(Exception):
    """This particular node has no canonical form (e.g. a linear Resize): keep it as an unknown op."""


# ONNX TensorProto element types -> canonical dtype names (graphperf.dtypes). Types graphperf has
# no name for map to the canonical type of the same width and kind (DTYPE_STAND_INS); STRING and
# types with no same-width stand-in map to None (the value keeps no TensorType).
_DTYPE_NAMES = {
    "FLOAT": "float32", "DOUBLE": "float64", "FLOAT16": "float16", "BFLOAT16": "bfloat16",
    "FLOAT8E4M3FN": "float8_e4m3fn", "FLOAT8E5M2": "float8_e5m2", "FLOAT4E2M1": "float4_e2m1",
    "INT64": "int64", "INT32": "int32", "INT16": "int16", "INT8": "int8", "UINT8": "uint8",
    "INT4": "int4", "BOOL": "bool", "COMPLEX64": "complex64", "COMPLEX128": "complex128",
}
DTYPE_STAND_INS = {
    "UINT16": "int16", "UINT32": "int32", "UINT64": "int64", "UINT4": "int4",
    "FLOAT8E4M3FNUZ": "float8_e4m3fn", "FLOAT8E5M2FNUZ": "float8_e5m2",
}


def _dtype_table() -> dict[int, Optional[str]]:
    table: dict[int, Optional[str]] = {}
    for name, code in TensorProto.DataType.items():
        table[code] = _DTYPE_NAMES.get(name) or DTYPE_STAND_INS.get(name)
    return table


DTYPES: dict[int, Optional[str]] = _dtype_table()
_MODULE_RE = re.compile(r"[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*")
_SCRIPT_NAME_RE = re.compile(r"/(?:[A-Za-z0-9_.]+/)+[^/]+")


@dataclass
class Part:
    """One canonical node: `op` (canonical name), inputs (None = omitted), outputs, attrs.

    `suffix` names a node that a decomposition adds (the capture appends it to the ONNX name)."""

    op: str
    inputs: tuple[Optional[str], ...]
    outputs: tuple[str, ...]
    attrs: dict[str, Any] = field(default_factory=dict)
    suffix: str = ""


class OnnxNode:
    """What a mapper may read about one ONNX node; the capture supplies the lookups.

    `inputs` has None for an omitted optional input (ONNX ""); `outputs` keeps "" for omitted ones.
    `type(name)` is the value's TensorType (None if it has none); `const(name)` is the value of a
    small constant (initializer or Constant of at most a few dozen elements) or None; `temp(suffix,
    type)` creates a new intermediate value for a decomposition and returns its name.
    """

    __slots__ = ("name", "op_type", "domain", "opset", "attrs", "inputs", "outputs", "type", "const", "temp")

    def __init__(self, name: str, op_type: str, domain: str, opset: int, attrs: Mapping[str, Any],
                 inputs: Sequence[Optional[str]], outputs: Sequence[str],
                 type: Callable[[str], Optional[TensorType]],  # noqa: A002 - mirrors Value.type
                 const: Callable[[str], Optional[np.ndarray]],
                 temp: Callable[[str, Optional[TensorType]], str]):
        self.name, self.op_type, self.domain, self.opset = name, op_type, domain, opset
        self.attrs, self.inputs, self.outputs = attrs, tuple(inputs), tuple(outputs)
        self.type, self.const, self.temp = type, const, temp

    def input(self, i: int) -> Optional[str]:
        return self.inputs[i] if i < len(self.inputs) else None

    def in_type(self, i: int) -> Optional[TensorType]:
        name = self.input(i)
        return None if name is None else self.type(name)

    def out_type(self, i: int) -> Optional[TensorType]:
        return self.type(self.outputs[i]) if i < len(self.outputs) and self.outputs[i] else None

    def const_input(self, i: int) -> Optional[np.ndarray]:
        name = self.input(i)
        return None if name is None else self.const(name)

    def part(self, op: str, keep: Optional[Sequence[int]] = None, **attrs: Any) -> Part:
        """A Part on this node's outputs; `keep` picks the ONNX inputs, in canonical order."""
        inputs = self.inputs if keep is None else tuple(self.input(i) for i in keep)
        return Part(op, trim_inputs(inputs), self.outputs, attrs)


MapResult = Union[Part, list[Part]]
Mapper = Callable[[OnnxNode], MapResult]

# the registry: written by the op tables, read through onnx_ops (which imports every table)
TABLE: dict[tuple[str, str], Mapper] = {}
TARGETS: dict[tuple[str, str], tuple[str, ...]] = {}


def register(op_types: Union[str, Sequence[str]], targets: Sequence[str],
             domain: str = "") -> Callable[[Mapper], Mapper]:
    """Decorator: map the ONNX op(s) `op_types` of `domain` with the decorated function, which produces the
    canonical ops `targets`; an op mapped twice raises ValueError."""
    names = (op_types,) if isinstance(op_types, str) else tuple(op_types)

    def decorate(fn: Mapper) -> Mapper:
        for name in names:
            key = (domain, name)
            if key in TABLE:
                raise ValueError(f"ONNX op {domain or 'ai.onnx'}::{name} is mapped twice")
            TABLE[key] = fn
            TARGETS[key] = tuple(targets)
        return fn

    return decorate


def register_simple(table: Mapping[str, str], keep: Optional[Sequence[int]] = None, domain: str = "") -> None:
    """Map each ONNX op of `table` one to one onto its canonical op, on the inputs `keep` (None: all)."""
    for op_type, target in table.items():
        register(op_type, (target,), domain)(lambda n, t=target: n.part(t, keep))


def trim_inputs(inputs: Sequence[Optional[str]]) -> tuple[Optional[str], ...]:
    """Drop trailing omitted inputs."""
    out = list(inputs)
    while out and out[-1] is None:
        out.pop()
    return tuple(out)


def normalize_axis(axis: int, rank: Optional[int]) -> int:
    """A negative `axis` counted from the end of a tensor of `rank` dimensions (kept as is when rank is unknown)."""
    return axis + rank if axis < 0 and rank is not None else axis


def const_ints(value: Optional[np.ndarray]) -> Optional[tuple[int, ...]]:
    """A constant input read as a flat tuple of ints (None when it is not a known constant)."""
    return None if value is None else tuple(int(v) for v in np.asarray(value).reshape(-1))


# --- reading ONNX nodes ---------------------------------------------------------------------------

def module_path(namespace: str) -> str:
    """The layer path in a torch dynamo exporter ``namespace``, or "".

    >>> module_path(": __main__.M/layers.0: __main__.Blk/layers.0.attn: Attn/sdpa: aten.sdpa.default")
    'layers.0.attn'
    """
    parts = namespace.split("/")
    if len(parts) < 2:
        return ""
    scope = parts[-2].partition(": ")[0].strip()  # "layers.0.attn: __main__.Attn" -> "layers.0.attn"
    if not _MODULE_RE.fullmatch(scope) or scope.startswith("_empty_nn_module_stack"):
        return ""
    return scope


def module_of(node: onnx.NodeProto) -> str:
    """The layer path of a node: exporter metadata, else a dynamo=False node name, else ""."""
    for prop in node.metadata_props:
        if prop.key == "namespace":
            return module_path(prop.value)
    # torch.onnx.export(dynamo=False) names nodes "/layers.0/attn/q/MatMul"
    if _SCRIPT_NAME_RE.fullmatch(node.name):
        return ".".join(p for p in node.name.split("/")[1:-1])
    return ""


def attr_values(node: onnx.NodeProto) -> dict[str, Any]:
    """A node's attributes as Python values (strings decoded; subgraphs and tensors left out)."""
    out: dict[str, Any] = {}
    for a in node.attribute:
        if a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS, onnx.AttributeProto.TENSOR,
                      onnx.AttributeProto.SPARSE_TENSOR, onnx.AttributeProto.TENSORS,
                      onnx.AttributeProto.SPARSE_TENSORS, onnx.AttributeProto.TYPE_PROTO,
                      onnx.AttributeProto.TYPE_PROTOS):
            continue  # subgraphs and tensors: structure, not attributes a cost rule reads
        v = onnx.helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        elif isinstance(v, list):
            v = tuple(x.decode("utf-8", "replace") if isinstance(x, bytes) else x for x in v)
        out[a.name] = v
    return out


def constant_tensor(node: onnx.NodeProto) -> tuple[Optional[TensorProto], tuple[int, ...], int]:
    """A Constant node's value as (tensor or None for sparse, dims, element type)."""
    a = node.attribute[0] if len(node.attribute) == 1 else None
    name = node.output[0]
    if a is None:
        raise ValueError("a Constant needs exactly one value attribute")
    if a.name == "sparse_value":
        return None, tuple(a.sparse_tensor.dims), a.sparse_tensor.values.data_type
    if a.name == "value":
        return a.t, tuple(a.t.dims), a.t.data_type
    h = onnx.helper
    made = {
        "value_float": lambda: h.make_tensor(name, TensorProto.FLOAT, [], [a.f]),
        "value_floats": lambda: h.make_tensor(name, TensorProto.FLOAT, [len(a.floats)], list(a.floats)),
        "value_int": lambda: h.make_tensor(name, TensorProto.INT64, [], [a.i]),
        "value_ints": lambda: h.make_tensor(name, TensorProto.INT64, [len(a.ints)], list(a.ints)),
        "value_string": lambda: h.make_tensor(name, TensorProto.STRING, [], [a.s]),
        "value_strings": lambda: h.make_tensor(name, TensorProto.STRING, [len(a.strings)], list(a.strings)),
    }.get(a.name)
    if made is None:
        raise ValueError(f"unknown Constant attribute {a.name!r}")
    t = made()
    return t, tuple(t.dims), t.data_type



def register_contrib(op_types: Union[str, Sequence[str]], targets: Sequence[str]) -> Callable[[Mapper], Mapper]:
    """`register` in the ``com.microsoft`` domain."""
    return register(op_types, targets, domain=MS)


# --- helpers the op tables share ---------------------------------------------------------------------

def norm_numel(n: OnnxNode, default_axis: int = -1) -> int:
    """Elements each normalisation reduces over: the input's dimensions from ``axis`` on."""
    x = n.in_type(0)
    if x is None:
        raise UnmappableNode("the input's shape is unknown")
    axis = normalize_axis(int(n.attrs.get("axis", default_axis)), x.rank)
    return int(np.prod(x.shape[axis:], dtype=np.int64))



def pool_mapper(target: str) -> Mapper:
    """A mapper onto the pooling op `target` with the node's ``kernel_shape``."""
    return lambda n: n.part(target, kernel=tuple(int(k) for k in n.attrs["kernel_shape"]))



def global_pool_mapper(target: str) -> Mapper:
    """A mapper of a global pool onto the reduction `target` over the spatial axes (kept)."""
    def map_pool(n: OnnxNode) -> Part:
        x = n.in_type(0)
        axes = None if x is None else tuple(range(2, x.rank))
        return n.part(target, axes=axes, keepdims=True)

    return map_pool



def reduce_mapper(target: str) -> Mapper:
    """A mapper of an ONNX Reduce* op (axes as attribute or constant input) onto the reduction `target`."""
    def map_reduce(n: OnnxNode) -> Part:
        x = n.in_type(0)
        rank = None if x is None else x.rank
        axes = n.attrs.get("axes")  # before ReduceSum-13 / Reduce*-18 the axes are an attribute
        if axes is None and n.input(1) is not None:
            axes = const_ints(n.const_input(1))  # None: not a constant; the output shape still says
        if (axes is None and n.input(1) is None or axes == ()) and rank is not None:
            axes = () if n.attrs.get("noop_with_empty_axes", 0) else tuple(range(rank))
        if axes is not None and rank is not None:
            axes = tuple(sorted(normalize_axis(int(a), rank) for a in axes))
        return n.part(target, (0,), axes=axes, keepdims=bool(n.attrs.get("keepdims", 1)))

    return map_reduce



def typed_value(n: OnnxNode, name: Optional[str], what: str) -> TensorType:
    """The type of value `name`; UnmappableNode naming `what` when it has none."""
    t = None if name is None else n.type(name)
    if t is None:
        raise UnmappableNode(f"{what} has no known shape")
    return t


def temp_value(n: OnnxNode, tag: str, shape: Sequence[int], dtype: str) -> str:
    """A new intermediate value of a decomposition, of `shape` and `dtype`."""
    return n.temp(tag, TensorType(tuple(shape), dtype))


def view_part(n: OnnxNode, src: str, tag: str, shape: Sequence[int], dtype: str) -> tuple[Part, str]:
    """A free view of `src` as `shape` (a reshape or a transpose the kernels read in place)."""
    out = temp_value(n, tag, shape, dtype)
    return Part("view", (src,), (out,), suffix=tag), out


_MODES = {"nearest": "nearest", "linear": "linear", "bilinear": "linear", "trilinear": "linear",
          "cubic": "cubic", "bicubic": "cubic"}


def sample_mode(n: OnnxNode, default: str) -> str:
    """The canonical interpolation mode of the node's ``mode`` attribute; KeepUnknown for a mode with none."""
    mode = _MODES.get(str(n.attrs.get("mode", default)))
    if mode is None:
        raise KeepUnknown(f"mode {n.attrs.get('mode')!r}")
    return mode
