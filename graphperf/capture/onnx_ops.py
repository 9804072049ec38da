"""ONNX ops -> canonical graphperf ops: the alias table and its attribute normalisers.

`mapper(domain, op_type)` returns the function that turns one ONNX node (seen through `OnnxNode`)
into one or more `Part`s: a canonical op name (`graphperf.ops`), its inputs in the canonical order,
its outputs and its normalised attributes. An (domain, op_type) with no entry has no canonical
mapping: the capture keeps it as an ``onnx`` op and the count layer reports it as unknown.
`TARGETS` lists the canonical names each entry can produce (a test checks they are all canonical).

Also here: `DTYPES` (ONNX element types -> canonical dtypes), `SAME_SHAPE_AS_INPUT` (ops onnx cannot
shape-infer), `FOLDABLE`/`fold` (small constant subgraphs evaluated at capture time) and the
readers of node attributes, Constant values and exporter module paths.

Decisions:
- Inputs that only carry shape or index metadata (Reshape's shape, Slice's starts/ends, the axes
  of a reduction, Pad's pads, Expand's shape, Tile's repeats, TopK's k, Resize's scales/sizes) are
  dropped from the node's inputs; the values that matter become attributes.
- Reshape, Squeeze, Unsqueeze, Flatten, Identity, Shape, Size -> ``view`` (onnxruntime does not copy).
  Transpose, DepthToSpace, SpaceToDepth -> ``transpose`` (ONNX materialises them); Expand ->
  ``expand``; Tile -> ``copy`` (writes the tiled output); Resize/Upsample in ``nearest`` mode ->
  ``copy``; in linear and cubic modes -> ``interpolate`` over the dimensions whose size changes.
- Variadic Sum/Max/Min with more than two inputs become a chain of binary nodes.
- Attention with past_key/past_value becomes concat(past, new) -> attention on the concatenated
  keys and values, which is what the runtime does (the present_key/present_value outputs).
- ReduceL1, ReduceL2, ReduceSumSquare and ReduceLogSum -> ``reduce_sum`` (their one extra
  elementwise op per element, or one log per output, is not counted); ReduceLogSumExp ->
  ``reduce_logsumexp`` (its exp per element counted).
- The less common default-domain ops are mapped in `onnx_tail_ops`, the ``com.microsoft`` contrib ops in
  `onnx_contrib_ops` and `onnx_contrib_attention`; they register into this table when this module is imported. `onnx_coverage` lists
  every op of both op sets and says, for each, how it is covered or why it is not.
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
    "OnnxNode", "Part", "Mapper", "mapper", "TARGETS", "DTYPES", "DTYPE_STAND_INS", "SAME_SHAPE_AS_INPUT",
    "UnmappableNode", "KeepUnknown", "FOLDABLE", "fold", "attr_values", "constant_tensor", "module_path", "module_of",
]


# Ops whose only output has the shape and dtype of input 0 and that onnx cannot infer (no shape
# inference function, or a contrib op onnx does not know): the capture infers them as Identity.
SAME_SHAPE_AS_INPUT: frozenset[tuple[str, str]] = frozenset({
    ("", "GroupNormalization"), ("", "MeanVarianceNormalization"), ("", "SimplifiedLayerNormalization"),
    *(("com.microsoft", op) for op in (
        "Gelu", "FastGelu", "QuickGelu", "BiasGelu", "SimplifiedLayerNormalization", "SkipLayerNormalization",
        "SkipSimplifiedLayerNormalization", "RotaryEmbedding", "BiasAdd")),
})


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
        return Part(op, _trim(inputs), self.outputs, attrs)


MapResult = Union[Part, list[Part]]
Mapper = Callable[[OnnxNode], MapResult]

_TABLE: dict[tuple[str, str], Mapper] = {}
TARGETS: dict[tuple[str, str], tuple[str, ...]] = {}


def mapper(domain: str, op_type: str) -> Optional[Mapper]:
    """The mapper for an ONNX op ("" and "ai.onnx" are the default domain), or None if unmapped."""
    return _TABLE.get(("" if domain == "ai.onnx" else domain, op_type))


def _register(op_types: Union[str, Sequence[str]], targets: Sequence[str],
              domain: str = "") -> Callable[[Mapper], Mapper]:
    names = (op_types,) if isinstance(op_types, str) else tuple(op_types)

    def decorate(fn: Mapper) -> Mapper:
        for name in names:
            key = (domain, name)
            if key in _TABLE:
                raise ValueError(f"ONNX op {domain or 'ai.onnx'}::{name} is mapped twice")
            _TABLE[key] = fn
            TARGETS[key] = tuple(targets)
        return fn

    return decorate


def _simple(table: Mapping[str, str], keep: Optional[Sequence[int]] = None, domain: str = "") -> None:
    for op_type, target in table.items():
        _register(op_type, (target,), domain)(lambda n, t=target: n.part(t, keep))


def _trim(inputs: Sequence[Optional[str]]) -> tuple[Optional[str], ...]:
    """Drop trailing omitted inputs."""
    out = list(inputs)
    while out and out[-1] is None:
        out.pop()
    return tuple(out)


def _axis(axis: int, rank: Optional[int]) -> int:
    return axis + rank if axis < 0 and rank is not None else axis


def _ints(value: Optional[np.ndarray]) -> Optional[tuple[int, ...]]:
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


# --- elementwise ---------------------------------------------------------------------------------

_simple({
    "Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Neg": "neg", "Abs": "abs",
    "Reciprocal": "reciprocal", "Relu": "relu", "LeakyRelu": "leaky_relu", "PRelu": "leaky_relu",
    "Sigmoid": "sigmoid", "Tanh": "tanh", "Exp": "exp", "Log": "log", "Erf": "erf", "Sqrt": "sqrt",
    "Sin": "sin", "Cos": "cos", "Where": "where", "Equal": "eq", "Less": "lt", "LessOrEqual": "le",
    "Greater": "gt", "GreaterOrEqual": "ge", "And": "logical_and", "Or": "logical_or",
    "Not": "logical_not", "Xor": "logical_xor", "BitwiseAnd": "bitwise_and", "BitwiseOr": "bitwise_or",
    "BitwiseNot": "bitwise_not", "Floor": "floor", "Ceil": "ceil", "Round": "round", "Sign": "sign",
    "Mod": "mod", "IsNaN": "isnan", "IsInf": "isinf", "Clip": "clamp", "Swish": "silu",
    "Trilu": "masked_fill",  # a masked copy: triu/tril select between x and 0 per element
})
_simple({"Dropout": "dropout"}, keep=(0,))  # ratio and training_mode are scalars


@_register("Gelu", ("gelu", "gelu_tanh"))
def _gelu(n: OnnxNode) -> Part:
    return n.part("gelu_tanh" if n.attrs.get("approximate", "none") == "tanh" else "gelu")


@_register("Pow", ("pow",))
def _pow(n: OnnxNode) -> Part:
    # An integer-valued constant scalar exponent becomes an attribute (|e|-1 multiplies, no
    # transcendental) and leaves the inputs, as torch's pow.Tensor_Scalar does.
    e = n.const_input(1)
    if e is not None and e.size == 1 and np.isfinite(e).all() and float(e.reshape(-1)[0]).is_integer():
        return n.part("pow", (0,), exponent=int(e.reshape(-1)[0]))
    return n.part("pow")


def _variadic(target: str) -> Mapper:
    def map_variadic(n: OnnxNode) -> MapResult:
        ins = [i for i in n.inputs if i is not None]
        if len(ins) <= 2:
            return n.part(target)
        parts, acc = [], ins[0]
        for k, nxt in enumerate(ins[1:-1], 1):
            a, b = n.type(acc), n.type(nxt)
            shape = tuple(np.broadcast_shapes(a.shape, b.shape)) if a and b else None
            out_type = n.out_type(0)
            tmp_type = None if shape is None or out_type is None else TensorType(shape, out_type.dtype)
            tmp = n.temp(f"{target}{k}", tmp_type)
            parts.append(Part(target, (acc, nxt), (tmp,), {}, suffix=f"{target}{k}"))
            acc = tmp
        parts.append(Part(target, (acc, ins[-1]), n.outputs, {}))
        return parts

    return map_variadic


for _op, _target in (("Sum", "add"), ("Max", "maximum"), ("Min", "minimum")):
    _register(_op, (_target,))(_variadic(_target))


# --- matmul, einsum, convolution -------------------------------------------------------------------

_simple({"MatMul": "matmul"})
_simple({"MatMulInteger": "matmul"}, keep=(0, 1))  # zero points are per-tensor/row scalars
_simple({"QLinearMatMul": "matmul"}, keep=(0, 3))  # (a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp)


@_register("Gemm", ("matmul",))
def _gemm(n: OnnxNode) -> Part:
    keep = (0, 1, 2) if float(n.attrs.get("beta", 1.0)) != 0.0 else (0, 1)
    return n.part("matmul", keep, trans_a=bool(n.attrs.get("transA", 0)), trans_b=bool(n.attrs.get("transB", 0)))


@_register("Einsum", ("einsum",))
def _einsum(n: OnnxNode) -> Part:
    return n.part("einsum", equation="".join(str(n.attrs["equation"]).split()))


_register("Conv", ("conv",))(lambda n: n.part("conv", transposed=False))
_register("ConvTranspose", ("conv",))(lambda n: n.part("conv", transposed=True))
_register("ConvInteger", ("conv",))(lambda n: n.part("conv", (0, 1), transposed=False))
# (x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, [bias])
_register("QLinearConv", ("conv",))(lambda n: n.part("conv", (0, 3, 8), transposed=False))


# --- attention -------------------------------------------------------------------------------------

@_register("Attention", ("attention", "concat"))
def _attention(n: OnnxNode) -> MapResult:
    """Opset 23 Attention: (Q, K, V, attn_mask, past_key, past_value) -> (Y, present_key, present_value, qk)."""
    attrs = {
        "is_causal": bool(n.attrs.get("is_causal", 0)),
        "q_num_heads": int(n.attrs["q_num_heads"]) if n.attrs.get("q_num_heads") else None,
        "kv_num_heads": int(n.attrs["kv_num_heads"]) if n.attrs.get("kv_num_heads") else None,
    }
    q, k, v, mask = n.input(0), n.input(1), n.input(2), n.input(3)
    past_k, past_v = n.input(4), n.input(5)
    outs = n.outputs + ("",) * (4 - len(n.outputs))
    if past_k is None and past_v is None:
        return Part("attention", _trim((q, k, v, mask)), n.outputs, attrs)
    parts = []
    for past, new, present, tag in ((past_k, k, outs[1], "k"), (past_v, v, outs[2], "v")):
        if past is None:
            continue
        if not present:  # the runtime still builds the concatenated cache; give it a name
            present = n.temp(f"present_{tag}", _concat_type(n, past, new))
        parts.append(Part("concat", (past, new), (present,), {"axis": -2}, suffix=f"concat_{tag}"))
        if tag == "k":
            k = present
        else:
            v = present
    att_outs = tuple(o for o in (outs[0], outs[3]) if o)
    parts.append(Part("attention", _trim((q, k, v, mask)), att_outs, attrs))
    return parts


def _concat_type(n: OnnxNode, past: str, new: str) -> Optional[TensorType]:
    a, b = n.type(past), n.type(new)
    if a is None or b is None or a.rank != b.rank:
        return None
    shape = list(a.shape)
    shape[-2] += b.shape[-2]
    return TensorType(tuple(shape), a.dtype)


# --- softmax and normalisations -------------------------------------------------------------------

def _softmax_axis(n: OnnxNode) -> int:
    # Before opset 13 softmax ran over the input flattened to 2-D at `axis` (default 1).
    x = n.in_type(0)
    return _axis(int(n.attrs.get("axis", -1 if n.opset >= 13 else 1)), x and x.rank)


_register("Softmax", ("softmax",))(lambda n: n.part("softmax", axis=_softmax_axis(n), log=False))
_register("LogSoftmax", ("softmax",))(lambda n: n.part("softmax", axis=_softmax_axis(n), log=True))


def _norm_numel(n: OnnxNode, default_axis: int = -1) -> int:
    x = n.in_type(0)
    if x is None:
        raise UnmappableNode("the input's shape is unknown")
    axis = _axis(int(n.attrs.get("axis", default_axis)), x.rank)
    return int(np.prod(x.shape[axis:], dtype=np.int64))


_register("LayerNormalization", ("layer_norm",))(lambda n: n.part("layer_norm", (0, 1, 2), norm_numel=_norm_numel(n)))
_register("RMSNormalization", ("rms_norm",))(lambda n: n.part("rms_norm", (0, 1), norm_numel=_norm_numel(n)))
_register("SimplifiedLayerNormalization", ("rms_norm",))(  # onnxruntime registers it in the default domain
    lambda n: n.part("rms_norm", (0, 1), norm_numel=_norm_numel(n)))
_register("BatchNormalization", ("batch_norm",))(lambda n: n.part("batch_norm", (0, 1, 2, 3, 4)))
_register("GroupNormalization", ("group_norm",))(lambda n: n.part("group_norm", num_groups=int(n.attrs["num_groups"])))


@_register("InstanceNormalization", ("group_norm",))
def _instance_norm(n: OnnxNode) -> Part:
    x = n.in_type(0)
    if x is None or x.rank < 2:
        raise UnmappableNode("the input's channel count is unknown")
    return n.part("group_norm", num_groups=x.shape[1])  # one group per channel


# --- pooling and reductions -----------------------------------------------------------------------

def _pool(target: str) -> Mapper:
    return lambda n: n.part(target, kernel=tuple(int(k) for k in n.attrs["kernel_shape"]))


_register("MaxPool", ("max_pool",))(_pool("max_pool"))
_register("AveragePool", ("avg_pool",))(_pool("avg_pool"))


def _global_pool(target: str) -> Mapper:
    def map_pool(n: OnnxNode) -> Part:
        x = n.in_type(0)
        axes = None if x is None else tuple(range(2, x.rank))
        return n.part(target, axes=axes, keepdims=True)

    return map_pool


_register("GlobalAveragePool", ("reduce_mean",))(_global_pool("reduce_mean"))
_register("GlobalMaxPool", ("reduce_max",))(_global_pool("reduce_max"))

_REDUCE = {
    "ReduceSum": "reduce_sum", "ReduceMean": "reduce_mean", "ReduceMax": "reduce_max",
    "ReduceMin": "reduce_min", "ReduceProd": "reduce_prod", "ReduceL1": "reduce_sum",
    "ReduceL2": "reduce_sum", "ReduceSumSquare": "reduce_sum", "ReduceLogSum": "reduce_sum",
}


def _reduce(target: str) -> Mapper:
    def map_reduce(n: OnnxNode) -> Part:
        x = n.in_type(0)
        rank = None if x is None else x.rank
        axes = n.attrs.get("axes")  # before ReduceSum-13 / Reduce*-18 the axes are an attribute
        if axes is None and n.input(1) is not None:
            axes = _ints(n.const_input(1))  # None: not a constant; the output shape still says
        if (axes is None and n.input(1) is None or axes == ()) and rank is not None:
            axes = () if n.attrs.get("noop_with_empty_axes", 0) else tuple(range(rank))
        if axes is not None and rank is not None:
            axes = tuple(sorted(_axis(int(a), rank) for a in axes))
        return n.part(target, (0,), axes=axes, keepdims=bool(n.attrs.get("keepdims", 1)))

    return map_reduce


for _op, _target in _REDUCE.items():
    _register(_op, (_target,))(_reduce(_target))


def _arg(target: str) -> Mapper:
    def map_arg(n: OnnxNode) -> Part:
        x = n.in_type(0)
        return n.part(target, (0,), axes=(_axis(int(n.attrs.get("axis", 0)), x and x.rank),),
                      keepdims=bool(n.attrs.get("keepdims", 1)))

    return map_arg


_register("ArgMax", ("argmax",))(_arg("argmax"))
_register("ArgMin", ("argmin",))(_arg("argmin"))


@_register("CumSum", ("cumsum",))
def _cumsum(n: OnnxNode) -> Part:
    axis = n.const_input(1)
    x = n.in_type(0)
    return n.part("cumsum", (0,), axes=None if axis is None else (_axis(int(axis.reshape(-1)[0]), x and x.rank),))


@_register("TopK", ("topk",))
def _topk(n: OnnxNode) -> Part:
    x = n.in_type(0)
    axis = _axis(int(n.attrs.get("axis", -1)), x and x.rank)
    if n.opset < 10:
        k = n.attrs.get("k")
    else:
        value = n.const_input(1)
        k = None if value is None else int(value.reshape(-1)[0])
    if k is None:  # k computed at run time: the values output's size on `axis` is k
        out = n.out_type(0)
        if out is None or x is None:
            raise UnmappableNode("k is not a constant and the output shape is unknown")
        k = out.shape[axis]
    return n.part("topk", (0,), k=int(k), axis=axis)


# --- gather and scatter ---------------------------------------------------------------------------

_simple({"Gather": "gather", "GatherElements": "gather", "GatherND": "gather"}, keep=(0, 1))


def _scatter(n: OnnxNode) -> Part:
    reduce = str(n.attrs.get("reduction", "none"))
    return n.part("scatter", (0, 1, 2), reduce=reduce)


for _op in ("ScatterElements", "ScatterND", "Scatter"):
    _register(_op, ("scatter",))(_scatter)


# --- data movement and views ----------------------------------------------------------------------

_register("Concat", ("concat",))(lambda n: n.part("concat", axis=int(n.attrs["axis"])))
_simple({
    "Split": "split", "Slice": "slice", "Pad": "pad", "Expand": "expand", "Tile": "copy",
    "Cast": "cast", "CastLike": "cast",
    "Identity": "view", "Reshape": "view", "Squeeze": "view", "Unsqueeze": "view", "Flatten": "view",
    "Shape": "view", "Size": "view",
}, keep=(0,))
_register(("ConstantOfShape", "Range"), ("fill",))(lambda n: n.part("fill", ()))


@_register("Transpose", ("transpose",))
def _transpose(n: OnnxNode) -> Part:
    perm = n.attrs.get("perm")
    if perm is None:  # default: reverse the axes
        x = n.in_type(0)
        perm = None if x is None else tuple(reversed(range(x.rank)))
    return n.part("transpose", (0,), perm=None if perm is None else tuple(int(p) for p in perm))


_simple({"DepthToSpace": "transpose", "SpaceToDepth": "transpose"}, keep=(0,))


_INTERPOLATION = {"linear": "linear", "bilinear": "linear", "trilinear": "linear", "cubic": "cubic"}


@_register(("Resize", "Upsample"), ("copy", "interpolate"))
def _resize(n: OnnxNode) -> Part:
    mode = str(n.attrs.get("mode", "nearest"))
    if mode == "nearest":
        return n.part("copy", (0,), mode=mode)
    if mode not in _INTERPOLATION:
        raise KeepUnknown(f"mode {mode!r}")
    x, out = n.in_type(0), n.out_type(0)
    if x is None or out is None:
        raise UnmappableNode("the input's or the output's shape is unknown")
    spatial = sum(1 for a, b in zip(x.shape, out.shape) if a != b)
    if spatial == 0:
        return n.part("copy", (0,), mode=mode)
    return n.part("interpolate", (0,), mode=_INTERPOLATION[mode], spatial=spatial)


# --- evaluating small constant subgraphs ------------------------------------------------------------
# Unoptimised exports compute shapes and scalars at run time (Shape -> Expand -> ConstantOfShape,
# CastLike of a scalar exponent). The capture evaluates such nodes when every input is a small known
# value, so that shape inference and the attribute normalisers above see the results. Only these
# default-domain ops, on tensors of a few dozen elements, through onnx's reference implementation.

FOLDABLE: frozenset[str] = frozenset({
    "Shape", "Size", "Identity", "Cast", "CastLike", "Neg", "Abs", "Floor", "Ceil", "Sign", "Not", "Sqrt",
    "Reciprocal", "Add", "Sub", "Mul", "Div", "Mod", "Max", "Min", "Equal", "Less", "Greater", "LessOrEqual",
    "GreaterOrEqual", "And", "Or", "Xor", "Where", "Concat", "Gather", "GatherElements", "Unsqueeze",
    "Squeeze", "Slice", "Reshape", "Flatten", "Expand", "ConstantOfShape", "Range", "Tile", "Transpose",
    "ReduceProd", "ReduceSum", "ReduceMax", "ReduceMin", "Split",
})


def _grown_numel(op_type: str, feeds: Sequence[Optional[np.ndarray]]) -> Optional[int]:
    """Output size of the ops that can grow their inputs, known before running them (None: not one)."""
    if op_type == "ConstantOfShape":
        return int(np.prod(feeds[0], dtype=np.int64))
    if op_type == "Expand":
        return int(np.prod(np.broadcast_shapes(feeds[0].shape, tuple(int(d) for d in feeds[1])), dtype=np.int64))
    if op_type == "Tile":
        return int(feeds[0].size * np.prod(feeds[1], dtype=np.int64))
    if op_type == "Range":
        start, limit, delta = (float(np.asarray(f).reshape(-1)[0]) for f in feeds[:3])
        return max(int(np.ceil((limit - start) / delta)), 0) if delta else None
    return None


def fold(node: onnx.NodeProto, opset: int, const: Callable[[str], Optional[np.ndarray]],
         shape: Callable[[str], Optional[tuple[int, ...]]], elem_type: Callable[[str], Optional[int]],
         limit: int) -> Optional[list[np.ndarray]]:
    """The outputs of one FOLDABLE default-domain node at `opset`, or None if they cannot be known
    at capture time or would exceed `limit` elements. `const(name)` gives small known values,
    `shape(name)` static shapes (for Shape/Size), `elem_type(name)` ONNX element types (CastLike)."""
    op, inputs = node.op_type, list(node.input)
    if op in ("Shape", "Size"):
        dims = shape(inputs[0]) if inputs and inputs[0] else None
        if dims is None:
            return None
        if op == "Size":
            return [np.array(int(np.prod(dims, dtype=np.int64)), np.int64)]
        a = attr_values(node)
        return [np.array(dims[a.get("start", 0):a.get("end")], np.int64)]
    feeds = [const(x) if x else None for x in inputs]
    if op == "CastLike" and len(feeds) > 1 and feeds[1] is None:
        code = elem_type(inputs[1])  # only the target's element type matters
        feeds[1] = None if not code else np.zeros((0,), onnx.helper.tensor_dtype_to_np_dtype(code))
    if any(x and f is None for x, f in zip(inputs, feeds)):
        return None
    from onnx.reference import ReferenceEvaluator  # imported on first use: it is slow to import

    try:
        grown = _grown_numel(op, feeds)
        if grown is not None and not 0 <= grown <= limit:
            return None
        names = [x for x in inputs if x]
        graph = onnx.helper.make_graph([node], "fold", [onnx.ValueInfoProto(name=x) for x in names],
                                       [onnx.ValueInfoProto(name=o) for o in node.output if o])
        model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
        values = dict(zip(names, [f for f in feeds if f is not None]))
        outputs = [np.asarray(o) for o in ReferenceEvaluator(model).run(None, values)]
    except Exception:  # an op the reference cannot run on these values: it stays a run-time node
        return None
    if len(outputs) < sum(map(bool, node.output)) or any(o.size > limit or o.dtype == object for o in outputs):
        return None
    return outputs


# the less common default-domain ops and the com.microsoft contrib ops register into _TABLE (they import
# the helpers above, so they come last)
from . import onnx_contrib_attention, onnx_contrib_ops, onnx_tail_ops  # noqa: E402,F401
