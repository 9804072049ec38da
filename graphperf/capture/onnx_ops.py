"""ONNX ops -> canonical graphperf ops: the default-domain table, and the one place the registry is read.

`mapper(domain, op_type)` returns the function that turns one ONNX node (seen through `OnnxNode`)
into one or more `Part`s: a canonical op name (`graphperf.ops`), its inputs in the canonical order,
its outputs and its normalised attributes. An (domain, op_type) with no entry has no canonical
mapping: the capture keeps it as an ``onnx`` op and the count layer reports it as unknown.
`TARGETS` lists the canonical names each entry can produce (a test checks they are all canonical).

Also here: `SAME_SHAPE_AS_INPUT` (ops onnx cannot shape-infer), `FOLDABLE`/`fold` (small constant
subgraphs evaluated at capture time); and, from `onnx_mapping` (the machinery every table builds on),
`DTYPES` (ONNX element types -> canonical dtypes) and the readers of node attributes, Constant values
and exporter module paths.

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
  `onnx_contrib_ops` and `onnx_contrib_attention`. Every table imports only `onnx_mapping` and registers into
  its `TABLE`; this module imports every table, so `mapper` and `TARGETS` read here are complete.
  `onnx_coverage` lists every op of both op sets and says, for each, how it is covered or why it is not.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np
import onnx

from ..ir import TensorType
from .onnx_mapping import (KeepUnknown, MapResult, Mapper, OnnxNode, Part, UnmappableNode, attr_values,
                           global_pool_mapper, norm_numel, normalize_axis, pool_mapper, reduce_mapper, register,
                           register_simple, trim_inputs)
from .onnx_mapping import (DTYPE_STAND_INS, DTYPES, TABLE, TARGETS, constant_tensor,  # noqa: F401 (this module's API)
                           module_of, module_path)

# The registry is complete once this module is imported, whatever was imported first: these tables register
# their mappers into TABLE on import (they import only onnx_mapping; a duplicate registration raises).
from . import onnx_contrib_attention, onnx_contrib_ops, onnx_tail_ops  # noqa: F401

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


def mapper(domain: str, op_type: str) -> Optional[Mapper]:
    """The mapper for an ONNX op ("" and "ai.onnx" are the default domain), or None if unmapped."""
    return TABLE.get(("" if domain == "ai.onnx" else domain, op_type))


# --- elementwise ---------------------------------------------------------------------------------

register_simple({
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
register_simple({"Dropout": "dropout"}, keep=(0,))  # ratio and training_mode are scalars


@register("Gelu", ("gelu", "gelu_tanh"))
def _gelu(n: OnnxNode) -> Part:
    return n.part("gelu_tanh" if n.attrs.get("approximate", "none") == "tanh" else "gelu")


@register("Pow", ("pow",))
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
    register(_op, (_target,))(_variadic(_target))


# --- matmul, einsum, convolution -------------------------------------------------------------------

register_simple({"MatMul": "matmul"})
register_simple({"MatMulInteger": "matmul"}, keep=(0, 1))  # zero points are per-tensor/row scalars
register_simple({"QLinearMatMul": "matmul"}, keep=(0, 3))  # (a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp)


@register("Gemm", ("matmul",))
def _gemm(n: OnnxNode) -> Part:
    keep = (0, 1, 2) if float(n.attrs.get("beta", 1.0)) != 0.0 else (0, 1)
    return n.part("matmul", keep, trans_a=bool(n.attrs.get("transA", 0)), trans_b=bool(n.attrs.get("transB", 0)))


@register("Einsum", ("einsum",))
def _einsum(n: OnnxNode) -> Part:
    return n.part("einsum", equation="".join(str(n.attrs["equation"]).split()))


register("Conv", ("conv",))(lambda n: n.part("conv", transposed=False))
register("ConvTranspose", ("conv",))(lambda n: n.part("conv", transposed=True))
register("ConvInteger", ("conv",))(lambda n: n.part("conv", (0, 1), transposed=False))
# (x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, [bias])
register("QLinearConv", ("conv",))(lambda n: n.part("conv", (0, 3, 8), transposed=False))


# --- attention -------------------------------------------------------------------------------------

@register("Attention", ("attention", "concat"))
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
        return Part("attention", trim_inputs((q, k, v, mask)), n.outputs, attrs)
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
    parts.append(Part("attention", trim_inputs((q, k, v, mask)), att_outs, attrs))
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
    return normalize_axis(int(n.attrs.get("axis", -1 if n.opset >= 13 else 1)), x and x.rank)


register("Softmax", ("softmax",))(lambda n: n.part("softmax", axis=_softmax_axis(n), log=False))
register("LogSoftmax", ("softmax",))(lambda n: n.part("softmax", axis=_softmax_axis(n), log=True))


register("LayerNormalization", ("layer_norm",))(lambda n: n.part("layer_norm", (0, 1, 2), norm_numel=norm_numel(n)))
register("RMSNormalization", ("rms_norm",))(lambda n: n.part("rms_norm", (0, 1), norm_numel=norm_numel(n)))
register("SimplifiedLayerNormalization", ("rms_norm",))(  # onnxruntime registers it in the default domain
    lambda n: n.part("rms_norm", (0, 1), norm_numel=norm_numel(n)))
register("BatchNormalization", ("batch_norm",))(lambda n: n.part("batch_norm", (0, 1, 2, 3, 4)))
register("GroupNormalization", ("group_norm",))(lambda n: n.part("group_norm", num_groups=int(n.attrs["num_groups"])))


@register("InstanceNormalization", ("group_norm",))
def _instance_norm(n: OnnxNode) -> Part:
    x = n.in_type(0)
    if x is None or x.rank < 2:
        raise UnmappableNode("the input's channel count is unknown")
    return n.part("group_norm", num_groups=x.shape[1])  # one group per channel


# --- pooling and reductions -----------------------------------------------------------------------

register("MaxPool", ("max_pool",))(pool_mapper("max_pool"))
register("AveragePool", ("avg_pool",))(pool_mapper("avg_pool"))


register("GlobalAveragePool", ("reduce_mean",))(global_pool_mapper("reduce_mean"))
register("GlobalMaxPool", ("reduce_max",))(global_pool_mapper("reduce_max"))

_REDUCE = {
    "ReduceSum": "reduce_sum", "ReduceMean": "reduce_mean", "ReduceMax": "reduce_max",
    "ReduceMin": "reduce_min", "ReduceProd": "reduce_prod", "ReduceL1": "reduce_sum",
    "ReduceL2": "reduce_sum", "ReduceSumSquare": "reduce_sum", "ReduceLogSum": "reduce_sum",
}


for _op, _target in _REDUCE.items():
    register(_op, (_target,))(reduce_mapper(_target))


def _arg(target: str) -> Mapper:
    def map_arg(n: OnnxNode) -> Part:
        x = n.in_type(0)
        return n.part(target, (0,), axes=(normalize_axis(int(n.attrs.get("axis", 0)), x and x.rank),),
                      keepdims=bool(n.attrs.get("keepdims", 1)))

    return map_arg


register("ArgMax", ("argmax",))(_arg("argmax"))
register("ArgMin", ("argmin",))(_arg("argmin"))


@register("CumSum", ("cumsum",))
def _cumsum(n: OnnxNode) -> Part:
    axis = n.const_input(1)
    x = n.in_type(0)
    return n.part("cumsum", (0,), axes=None if axis is None else (normalize_axis(int(axis.reshape(-1)[0]), x and x.rank),))


@register("TopK", ("topk",))
def _topk(n: OnnxNode) -> Part:
    x = n.in_type(0)
    axis = normalize_axis(int(n.attrs.get("axis", -1)), x and x.rank)
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

register_simple({"Gather": "gather", "GatherElements": "gather", "GatherND": "gather"}, keep=(0, 1))


def _scatter(n: OnnxNode) -> Part:
    reduce = str(n.attrs.get("reduction", "none"))
    return n.part("scatter", (0, 1, 2), reduce=reduce)


for _op in ("ScatterElements", "ScatterND", "Scatter"):
    register(_op, ("scatter",))(_scatter)


# --- data movement and views ----------------------------------------------------------------------

register("Concat", ("concat",))(lambda n: n.part("concat", axis=int(n.attrs["axis"])))
register_simple({
    "Split": "split", "Slice": "slice", "Pad": "pad", "Expand": "expand", "Tile": "copy",
    "Cast": "cast", "CastLike": "cast",
    "Identity": "view", "Reshape": "view", "Squeeze": "view", "Unsqueeze": "view", "Flatten": "view",
    "Shape": "view", "Size": "view",
}, keep=(0,))
register(("ConstantOfShape", "Range"), ("fill",))(lambda n: n.part("fill", ()))


@register("Transpose", ("transpose",))
def _transpose(n: OnnxNode) -> Part:
    perm = n.attrs.get("perm")
    if perm is None:  # default: reverse the axes
        x = n.in_type(0)
        perm = None if x is None else tuple(reversed(range(x.rank)))
    return n.part("transpose", (0,), perm=None if perm is None else tuple(int(p) for p in perm))


register_simple({"DepthToSpace": "transpose", "SpaceToDepth": "transpose"}, keep=(0,))


_INTERPOLATION = {"linear": "linear", "bilinear": "linear", "trilinear": "linear", "cubic": "cubic"}


@register(("Resize", "Upsample"), ("copy", "interpolate"))
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

