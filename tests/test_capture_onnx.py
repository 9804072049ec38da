"""ONNX frontend: alias table, dims binding, external data, errors, value kinds, modules."""

from __future__ import annotations

import os
import time
import zipfile

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from graphperf.capture import onnx_ops
from graphperf.capture.onnx_capture import capture_onnx, module_path
from graphperf.errors import UsageError
from graphperf.ir import OpId, TensorType
from graphperf.ops import CANONICAL, canonical

F, I64, BOOL = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL


def make(nodes, feeds, outputs, consts=None, opset=23, domains=(), value_info=(), functions=()):
    """A model from nodes, graph inputs {name: (elem_type, shape)}, output names and initializers."""
    inputs = [helper.make_tensor_value_info(k, dt, shape) for k, (dt, shape) in feeds.items()]
    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in (consts or {}).items()]
    outs = [o if isinstance(o, onnx.ValueInfoProto) else onnx.ValueInfoProto(name=o) for o in outputs]
    graph = helper.make_graph(nodes, "g", inputs, outs, inits, value_info=list(value_info))
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in domains]
    return helper.make_model(graph, opset_imports=opsets, functions=list(functions))


def one(op_type, inputs, feeds, consts=None, outputs=("y",), domain="", opset=23, value_info=(), **attrs):
    node = helper.make_node(op_type, inputs, list(outputs), name="n", domain=domain, **attrs)
    return capture_onnx(make([node], feeds, [o for o in outputs if o], consts, opset,
                             (domain,) if domain else (), value_info))


def x(*shape, dt=F):
    return (dt, list(shape))


# --- the alias table ------------------------------------------------------------------------------

def test_every_alias_target_is_canonical():
    for (domain, op_type), targets in onnx_ops.TARGETS.items():
        assert targets, (domain, op_type)
        for name in targets:
            assert name in CANONICAL, f"{domain or 'ai.onnx'}::{op_type} -> {name!r} is not canonical"
            canonical(name)


def test_dtypes_map_to_canonical_names():
    from graphperf.dtypes import DTYPE_BITS

    for code, name in onnx_ops.DTYPES.items():
        assert name is None or name in DTYPE_BITS, (code, name)
    assert onnx_ops.DTYPES[TensorProto.FLOAT] == "float32"
    assert onnx_ops.DTYPES[TensorProto.BFLOAT16] == "bfloat16"
    assert onnx_ops.DTYPES[TensorProto.FLOAT8E4M3FN] == "float8_e4m3fn"
    assert onnx_ops.DTYPES[TensorProto.BOOL] == "bool"
    assert onnx_ops.DTYPES[TensorProto.STRING] is None


UNARY = {
    "Neg": "neg", "Abs": "abs", "Reciprocal": "reciprocal", "Relu": "relu", "LeakyRelu": "leaky_relu",
    "Sigmoid": "sigmoid", "Tanh": "tanh", "Exp": "exp", "Log": "log", "Erf": "erf", "Sqrt": "sqrt",
    "Sin": "sin", "Cos": "cos", "Floor": "floor", "Ceil": "ceil", "Round": "round", "Sign": "sign",
    "IsNaN": "isnan", "IsInf": "isinf", "Trilu": "masked_fill",
}
BINARY = {
    "Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Equal": "eq", "Less": "lt",
    "LessOrEqual": "le", "Greater": "gt", "GreaterOrEqual": "ge", "Mod": "mod", "PRelu": "leaky_relu",
    "Max": "maximum", "Min": "minimum", "Sum": "add",
}
LOGICAL = {"And": "logical_and", "Or": "logical_or", "Xor": "logical_xor"}
BITWISE = {"BitwiseAnd": "bitwise_and", "BitwiseOr": "bitwise_or"}

# (id, op_type, node inputs, graph inputs, initializers, node attrs, extra: domain/opset/outputs/value_info,
#  expected canonical op, expected attrs, expected inputs)
CASES = [
    *[(op, op, ["a"], {"a": x(2, 3)}, {}, {}, {}, t, {}, ("a",)) for op, t in UNARY.items()],
    *[(op, op, ["a", "b"], {"a": x(2, 3), "b": x(1, 3)}, {}, {}, {}, t, {}, ("a", "b")) for op, t in BINARY.items()],
    *[(op, op, ["a", "b"], {"a": x(4, dt=BOOL), "b": x(4, dt=BOOL)}, {}, {}, {}, t, {}, ("a", "b"))
      for op, t in LOGICAL.items()],
    *[(op, op, ["a", "b"], {"a": x(4, dt=TensorProto.INT32), "b": x(4, dt=TensorProto.INT32)}, {}, {}, {}, t, {},
       ("a", "b")) for op, t in BITWISE.items()],
    ("Not", "Not", ["a"], {"a": x(4, dt=BOOL)}, {}, {}, {}, "logical_not", {}, ("a",)),
    ("BitwiseNot", "BitwiseNot", ["a"], {"a": x(4, dt=TensorProto.INT32)}, {}, {}, {}, "bitwise_not", {}, ("a",)),
    ("Where", "Where", ["c", "a", "b"], {"c": x(2, 3, dt=BOOL), "a": x(2, 3), "b": x(3)}, {}, {}, {}, "where", {},
     ("c", "a", "b")),
    ("Clip", "Clip", ["a", "lo", "hi"], {"a": x(2, 3)}, {"lo": np.float32(0), "hi": np.float32(6)}, {}, {},
     "clamp", {}, ("a", "lo", "hi")),
    ("Dropout", "Dropout", ["a"], {"a": x(2, 3)}, {}, {}, {}, "dropout", {}, ("a",)),
    ("Swish", "Swish", ["a"], {"a": x(2, 3)}, {}, {}, {"opset": 24}, "silu", {}, ("a",)),
    ("Gelu-none", "Gelu", ["a"], {"a": x(2, 3)}, {}, {}, {}, "gelu", {}, ("a",)),
    ("Gelu-tanh", "Gelu", ["a"], {"a": x(2, 3)}, {}, {"approximate": "tanh"}, {}, "gelu_tanh", {}, ("a",)),
    ("Pow-int", "Pow", ["a", "e"], {"a": x(2, 3)}, {"e": np.float32(2.0)}, {}, {}, "pow", {"exponent": 2}, ("a",)),
    ("Pow-frac", "Pow", ["a", "e"], {"a": x(2, 3)}, {"e": np.float32(0.5)}, {}, {}, "pow", {}, ("a", "e")),
    ("Pow-tensor", "Pow", ["a", "b"], {"a": x(2, 3), "b": x(2, 3)}, {}, {}, {}, "pow", {}, ("a", "b")),
    # matmul family
    ("MatMul", "MatMul", ["a", "w"], {"a": x(2, 5, 8)}, {"w": np.zeros((8, 4), np.float32)}, {}, {}, "matmul", {},
     ("a", "w")),
    ("Gemm", "Gemm", ["a", "w", "c"], {"a": x(8, 2)}, {"w": np.zeros((4, 8), np.float32), "c": np.zeros(4, np.float32)},
     {"transA": 1, "transB": 1}, {}, "matmul", {"trans_a": True, "trans_b": True}, ("a", "w", "c")),
    ("Gemm-beta0", "Gemm", ["a", "w", "c"], {"a": x(2, 8)}, {"w": np.zeros((8, 4), np.float32),
     "c": np.zeros(4, np.float32)}, {"beta": 0.0}, {}, "matmul", {"trans_a": False, "trans_b": False}, ("a", "w")),
    ("MatMulInteger", "MatMulInteger", ["a", "w", "az"], {"a": x(2, 8, dt=TensorProto.UINT8)},
     {"w": np.zeros((8, 4), np.uint8), "az": np.uint8(3)}, {}, {}, "matmul", {}, ("a", "w")),
    ("QLinearMatMul", "QLinearMatMul", ["a", "s", "z", "w", "s", "z", "s", "z"], {"a": x(2, 8, dt=TensorProto.UINT8)},
     {"w": np.zeros((8, 4), np.uint8), "s": np.float32(0.1), "z": np.uint8(0)}, {}, {}, "matmul", {}, ("a", "w")),
    ("Einsum", "Einsum", ["a", "b"], {"a": x(2, 3, 4), "b": x(2, 4, 5)}, {}, {"equation": "bij, bjk -> bik"}, {},
     "einsum", {"equation": "bij,bjk->bik"}, ("a", "b")),
    ("FusedMatMul", "FusedMatMul", ["a", "b"], {"a": x(4, 2), "b": x(3, 4)}, {}, {"transA": 1, "transB": 1},
     {"domain": "com.microsoft", "value_info": [helper.make_tensor_value_info("y", F, [2, 3])]}, "matmul",
     {"trans_a": True, "trans_b": True}, ("a", "b")),
    ("Conv", "Conv", ["a", "w", "b"], {"a": x(1, 3, 8, 8)}, {"w": np.zeros((4, 3, 3, 3), np.float32),
     "b": np.zeros(4, np.float32)}, {"pads": [1, 1, 1, 1]}, {}, "conv", {"transposed": False}, ("a", "w", "b")),
    ("ConvTranspose", "ConvTranspose", ["a", "w"], {"a": x(1, 4, 4, 4)}, {"w": np.zeros((4, 2, 2, 2), np.float32)},
     {"strides": [2, 2]}, {}, "conv", {"transposed": True}, ("a", "w")),
    ("ConvInteger", "ConvInteger", ["a", "w"], {"a": x(1, 3, 8, 8, dt=TensorProto.UINT8)},
     {"w": np.zeros((4, 3, 3, 3), np.uint8)}, {}, {}, "conv", {"transposed": False}, ("a", "w")),
    ("QLinearConv", "QLinearConv", ["a", "s", "z", "w", "s", "z", "s", "z"], {"a": x(1, 3, 8, 8, dt=TensorProto.UINT8)},
     {"w": np.zeros((4, 3, 3, 3), np.uint8), "s": np.float32(0.1), "z": np.uint8(0)}, {}, {}, "conv",
     {"transposed": False}, ("a", "w")),
    # attention (opset 23)
    ("Attention-4d", "Attention", ["q", "k", "v"], {"q": x(2, 8, 16, 32), "k": x(2, 2, 16, 32), "v": x(2, 2, 16, 32)},
     {}, {"is_causal": 1}, {}, "attention", {"is_causal": True, "q_num_heads": None, "kv_num_heads": None},
     ("q", "k", "v")),
    ("Attention-3d", "Attention", ["q", "k", "v", "m"], {"q": x(2, 16, 64), "k": x(2, 16, 32), "v": x(2, 16, 32),
     "m": x(16, 16, dt=BOOL)}, {}, {"q_num_heads": 4, "kv_num_heads": 2}, {}, "attention",
     {"is_causal": False, "q_num_heads": 4, "kv_num_heads": 2}, ("q", "k", "v", "m")),
    # softmax and normalisations
    ("Softmax", "Softmax", ["a"], {"a": x(2, 3, 4)}, {}, {}, {}, "softmax", {"axis": 2, "log": False}, ("a",)),
    ("Softmax-11", "Softmax", ["a"], {"a": x(2, 3, 4)}, {}, {}, {"opset": 11}, "softmax", {"axis": 1, "log": False},
     ("a",)),
    ("LogSoftmax", "LogSoftmax", ["a"], {"a": x(2, 3, 4)}, {}, {"axis": 1}, {}, "softmax", {"axis": 1, "log": True},
     ("a",)),
    ("LayerNormalization", "LayerNormalization", ["a", "s", "b"], {"a": x(2, 3, 4, 5)},
     {"s": np.ones((4, 5), np.float32), "b": np.zeros((4, 5), np.float32)}, {"axis": -2}, {}, "layer_norm",
     {"norm_numel": 20}, ("a", "s", "b")),
    ("RMSNormalization", "RMSNormalization", ["a", "s"], {"a": x(2, 3, 8)}, {"s": np.ones(8, np.float32)}, {}, {},
     "rms_norm", {"norm_numel": 8}, ("a", "s")),
    ("SimplifiedLayerNormalization", "SimplifiedLayerNormalization", ["a", "s"], {"a": x(2, 3, 8)},
     {"s": np.ones(8, np.float32)}, {}, {}, "rms_norm", {"norm_numel": 8}, ("a", "s")),
    ("SimplifiedLayerNormalization-ms", "SimplifiedLayerNormalization", ["a", "s"], {"a": x(2, 3, 8)},
     {"s": np.ones(8, np.float32)}, {"axis": 1}, {"domain": "com.microsoft"}, "rms_norm", {"norm_numel": 24},
     ("a", "s")),
    ("BatchNormalization", "BatchNormalization", ["a", "s", "b", "m", "v"], {"a": x(2, 4, 5, 5)},
     {k: np.ones(4, np.float32) for k in "sbmv"}, {}, {}, "batch_norm", {}, ("a", "s", "b", "m", "v")),
    ("GroupNormalization", "GroupNormalization", ["a", "s", "b"], {"a": x(2, 8, 5)},
     {"s": np.ones(8, np.float32), "b": np.zeros(8, np.float32)}, {"num_groups": 2}, {}, "group_norm",
     {"num_groups": 2}, ("a", "s", "b")),
    ("InstanceNormalization", "InstanceNormalization", ["a", "s", "b"], {"a": x(2, 8, 5, 5)},
     {"s": np.ones(8, np.float32), "b": np.zeros(8, np.float32)}, {}, {}, "group_norm", {"num_groups": 8},
     ("a", "s", "b")),
    # pooling, reductions
    ("MaxPool", "MaxPool", ["a"], {"a": x(1, 3, 8, 8)}, {}, {"kernel_shape": [3, 3], "strides": [2, 2]}, {},
     "max_pool", {"kernel": (3, 3)}, ("a",)),
    ("AveragePool", "AveragePool", ["a"], {"a": x(1, 3, 8, 8)}, {}, {"kernel_shape": [2, 2]}, {}, "avg_pool",
     {"kernel": (2, 2)}, ("a",)),
    ("GlobalAveragePool", "GlobalAveragePool", ["a"], {"a": x(1, 3, 8, 8)}, {}, {}, {}, "reduce_mean",
     {"axes": (2, 3), "keepdims": True}, ("a",)),
    ("GlobalMaxPool", "GlobalMaxPool", ["a"], {"a": x(1, 3, 8, 8)}, {}, {}, {}, "reduce_max",
     {"axes": (2, 3), "keepdims": True}, ("a",)),
    *[(op, op, ["a", "ax"], {"a": x(2, 3, 4)}, {"ax": np.array([-1], np.int64)}, {"keepdims": 0}, {}, t,
       {"axes": (2,), "keepdims": False}, ("a",))
      for op, t in {"ReduceSum": "reduce_sum", "ReduceMean": "reduce_mean", "ReduceMax": "reduce_max",
                    "ReduceMin": "reduce_min", "ReduceProd": "reduce_prod", "ReduceL1": "reduce_sum",
                    "ReduceL2": "reduce_sum", "ReduceSumSquare": "reduce_sum", "ReduceLogSum": "reduce_sum"}.items()],
    ("ReduceMean-13-attr", "ReduceMean", ["a"], {"a": x(2, 3, 4)}, {}, {"axes": [1]}, {"opset": 13}, "reduce_mean",
     {"axes": (1,), "keepdims": True}, ("a",)),
    ("ReduceSum-all", "ReduceSum", ["a"], {"a": x(2, 3)}, {}, {}, {}, "reduce_sum",
     {"axes": (0, 1), "keepdims": True}, ("a",)),
    ("ArgMax", "ArgMax", ["a"], {"a": x(2, 3)}, {}, {"axis": -1, "keepdims": 0}, {}, "argmax",
     {"axes": (1,), "keepdims": False}, ("a",)),
    ("ArgMin", "ArgMin", ["a"], {"a": x(2, 3)}, {}, {"axis": 0}, {}, "argmin", {"axes": (0,), "keepdims": True},
     ("a",)),
    ("CumSum", "CumSum", ["a", "ax"], {"a": x(2, 3)}, {"ax": np.int64(1)}, {}, {}, "cumsum", {"axes": (1,)}, ("a",)),
    ("TopK", "TopK", ["a", "k"], {"a": x(2, 10)}, {"k": np.array([3], np.int64)}, {}, {"outputs": ("y", "i")},
     "topk", {"k": 3, "axis": 1}, ("a",)),
    # gather, scatter
    ("Gather", "Gather", ["w", "i"], {"i": x(2, 7, dt=I64)}, {"w": np.zeros((100, 16), np.float32)}, {}, {}, "gather",
     {}, ("w", "i")),
    ("GatherElements", "GatherElements", ["a", "i"], {"a": x(4, 5), "i": x(4, 2, dt=I64)}, {}, {"axis": 1}, {},
     "gather", {}, ("a", "i")),
    ("GatherND", "GatherND", ["a", "i"], {"a": x(4, 5), "i": x(3, 2, dt=I64)}, {}, {}, {}, "gather", {}, ("a", "i")),
    ("ScatterElements", "ScatterElements", ["a", "i", "u"], {"a": x(4, 5), "i": x(4, 2, dt=I64), "u": x(4, 2)}, {},
     {"axis": 1, "reduction": "add"}, {}, "scatter", {"reduce": "add"}, ("a", "i", "u")),
    ("ScatterND", "ScatterND", ["a", "i", "u"], {"a": x(4, 5), "i": x(3, 1, dt=I64), "u": x(3, 5)}, {}, {}, {},
     "scatter", {"reduce": "none"}, ("a", "i", "u")),
    # data movement and views
    ("Concat", "Concat", ["a", "b"], {"a": x(2, 3), "b": x(2, 5)}, {}, {"axis": -1}, {}, "concat", {"axis": -1},
     ("a", "b")),
    ("Split", "Split", ["a", "s"], {"a": x(2, 6)}, {"s": np.array([2, 4], np.int64)}, {"axis": 1},
     {"outputs": ("y", "z")}, "split", {}, ("a",)),
    ("Slice", "Slice", ["a", "s", "e"], {"a": x(4, 6)}, {"s": np.array([1]), "e": np.array([3])}, {}, {}, "slice",
     {}, ("a",)),
    ("Pad", "Pad", ["a", "p"], {"a": x(4, 6)}, {"p": np.array([1, 1, 1, 1])}, {}, {}, "pad", {}, ("a",)),
    ("Transpose", "Transpose", ["a"], {"a": x(2, 3, 4)}, {}, {"perm": [0, 2, 1]}, {}, "transpose",
     {"perm": (0, 2, 1)}, ("a",)),
    ("Transpose-default", "Transpose", ["a"], {"a": x(2, 3, 4)}, {}, {}, {}, "transpose", {"perm": (2, 1, 0)}, ("a",)),
    ("DepthToSpace", "DepthToSpace", ["a"], {"a": x(1, 8, 2, 2)}, {}, {"blocksize": 2}, {}, "transpose", {}, ("a",)),
    ("SpaceToDepth", "SpaceToDepth", ["a"], {"a": x(1, 2, 4, 4)}, {}, {"blocksize": 2}, {}, "transpose", {}, ("a",)),
    ("Expand", "Expand", ["a", "s"], {"a": x(1, 3)}, {"s": np.array([4, 3])}, {}, {}, "expand", {}, ("a",)),
    ("Tile", "Tile", ["a", "r"], {"a": x(2, 3)}, {"r": np.array([2, 2])}, {}, {}, "copy", {}, ("a",)),
    ("Cast", "Cast", ["a"], {"a": x(2, 3)}, {}, {"to": TensorProto.FLOAT16}, {}, "cast", {}, ("a",)),
    ("CastLike", "CastLike", ["a", "t"], {"a": x(2, 3), "t": x(1, dt=TensorProto.FLOAT16)}, {}, {}, {}, "cast", {},
     ("a",)),
    ("Identity", "Identity", ["a"], {"a": x(2, 3)}, {}, {}, {}, "view", {}, ("a",)),
    ("Reshape", "Reshape", ["a", "s"], {"a": x(2, 3)}, {"s": np.array([3, 2])}, {}, {}, "view", {}, ("a",)),
    ("Squeeze", "Squeeze", ["a", "s"], {"a": x(2, 1)}, {"s": np.array([1])}, {}, {}, "view", {}, ("a",)),
    ("Unsqueeze", "Unsqueeze", ["a", "s"], {"a": x(2)}, {"s": np.array([0])}, {}, {}, "view", {}, ("a",)),
    ("Flatten", "Flatten", ["a"], {"a": x(2, 3, 4)}, {}, {}, {}, "view", {}, ("a",)),
    ("ConstantOfShape", "ConstantOfShape", ["s"], {}, {"s": np.array([128, 64])}, {}, {}, "fill", {}, ()),
    ("Range", "Range", ["s", "l", "d"], {}, {"s": np.int64(0), "l": np.int64(10_000), "d": np.int64(1)}, {}, {},
     "fill", {}, ()),
    ("Resize-nearest", "Resize", ["a", "", "s"], {"a": x(1, 1, 2, 2)}, {"s": np.array([1, 1, 2, 2], np.float32)}, {},
     {}, "copy", {"mode": "nearest"}, ("a",)),
    ("Gelu-ms", "Gelu", ["a"], {"a": x(2, 3)}, {}, {}, {"domain": "com.microsoft"}, "gelu", {}, ("a",)),
    ("FastGelu-ms", "FastGelu", ["a"], {"a": x(2, 3)}, {}, {}, {"domain": "com.microsoft",
     "value_info": [helper.make_tensor_value_info("y", F, [2, 3])]}, "gelu_tanh", {}, ("a",)),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_alias(case):
    _, op_type, inputs, feeds, consts, attrs, extra, target, want_attrs, want_inputs = case
    g = one(op_type, inputs, feeds, consts, outputs=extra.get("outputs", ("y",)), domain=extra.get("domain", ""),
            opset=extra.get("opset", 23), value_info=extra.get("value_info", ()), **attrs)
    node = g.nodes[-1]
    assert node.op == canonical(target)
    assert dict(node.attrs) == want_attrs
    assert node.inputs == want_inputs
    assert node.source_op == (f"{extra['domain']}::{op_type}" if extra.get("domain") else op_type)
    for name in node.outputs:
        assert isinstance(g.values[name].type, TensorType)


def test_every_mapped_op_has_an_alias_case():
    from .test_onnx_ops_more import TESTED  # the tail and contrib ops, one captured model each

    tested = {(c[6].get("domain", ""), c[1]) for c in CASES} | {("", "Attention"), ("", "Resize"), ("", "Upsample"),
                                                                ("", "Scatter"), ("", "Shape"), ("", "Size")} | TESTED
    assert set(onnx_ops.TARGETS) - tested == set()


def test_variadic_sum_becomes_a_chain_of_binary_nodes():
    g = one("Sum", ["a", "b", "c"], {"a": x(2, 1), "b": x(1, 3), "c": x(2, 3)})
    assert [(n.name, str(n.op), n.inputs) for n in g] == [("n/add1", "add", ("a", "b")), ("n", "add", ("n/add1", "c"))]
    assert g.values["n/add1"].type == TensorType((2, 3), "float32")


def test_attention_with_past_concatenates_the_cache_first():
    feeds = {"q": x(1, 4, 1, 8), "k": x(1, 2, 1, 8), "v": x(1, 2, 1, 8), "pk": x(1, 2, 5, 8), "pv": x(1, 2, 5, 8)}
    g = one("Attention", ["q", "k", "v", "", "pk", "pv"], feeds, outputs=("y", "present_k", "present_v"))
    assert [(n.name, str(n.op), n.inputs, n.outputs) for n in g] == [
        ("n/concat_k", "concat", ("pk", "k"), ("present_k",)),
        ("n/concat_v", "concat", ("pv", "v"), ("present_v",)),
        ("n", "attention", ("q", "present_k", "present_v"), ("y",)),
    ]
    assert g.values["present_k"].type == TensorType((1, 2, 6, 8), "float32")


def test_topk_with_a_computed_k_reads_k_from_the_output_shape():
    nodes = [helper.make_node("ReduceMax", ["kf"], ["k"], keepdims=1),
             helper.make_node("TopK", ["a", "k"], ["y", "i"], name="t")]
    vi = [helper.make_tensor_value_info("y", F, [2, 4]), helper.make_tensor_value_info("i", I64, [2, 4])]
    g = capture_onnx(make(nodes, {"a": x(2, 10), "kf": x(1, dt=I64)}, ["y", "i"], value_info=vi))
    assert g.nodes[-1].attrs == {"k": 4, "axis": 1}
    with pytest.raises(UsageError, match=r"node 't' \(TopK\)"):  # no constant k and no output shape
        capture_onnx(make(nodes, {"a": x(2, 10), "kf": x(1, dt=I64)}, ["y", "i"]))


def test_small_constant_subgraphs_fold_into_values():
    # Shape of a static value, arithmetic on it, an Expand of a scalar: runtimes fold these at load
    # time; the capture computes them (<= FOLD_NUMEL elements), so they become weights, not nodes.
    nodes = [helper.make_node("Shape", ["a"], ["s"], name="shape", start=1),
             helper.make_node("Size", ["a"], ["n"], name="size"),
             helper.make_node("Constant", [], ["zero"], value=numpy_helper.from_array(np.array(0.0, np.float32))),
             helper.make_node("CastLike", ["zero", "h"], ["zero16"], name="castlike"),
             helper.make_node("Expand", ["zero16", "s"], ["bias"], name="expand"),
             helper.make_node("Add", ["h", "bias"], ["y"], name="add"),
             helper.make_node("Cast", ["two32"], ["two"], name="cast", to=TensorProto.FLOAT16),
             helper.make_node("Pow", ["h", "two"], ["p"], name="pow"),
             helper.make_node("Reshape", ["y", "n"], ["flat"], name="flat")]
    g = capture_onnx(make(nodes, {"a": x(2, 3), "h": x(2, 3, dt=TensorProto.FLOAT16)}, ["flat", "p"],
                          {"two32": np.float32(2.0)}))
    assert [n.name for n in g] == ["add", "pow", "flat"]
    assert g.meta["folded_nodes"] == {"Cast": 1, "CastLike": 1, "Expand": 1, "Shape": 1, "Size": 1}
    assert g.values["bias"].kind == "weight" and g.values["bias"].type == TensorType((3,), "float16")
    assert g.values["s"].type == TensorType((1,), "int64")
    assert g.nodes[1].attrs == {"exponent": 2} and g.nodes[1].inputs == ("h",)
    assert g.values["flat"].type == TensorType((6,), "float16")


def test_unoptimised_shape_computations_resolve_through_folding():
    # torch.onnx.export(optimize=False) computes a zero bias as Expand(CastLike(0), Shape(w)[0:1]):
    # onnx data propagation stops at Expand; folding gives the Conv its bias shape.
    nodes = [helper.make_node("Shape", ["w"], ["c"], start=0, end=1),
             helper.make_node("ConstantOfShape", ["c"], ["zeros"]),
             helper.make_node("Expand", ["zeros", "c"], ["bias"]),
             helper.make_node("Conv", ["a", "w", "bias"], ["y"], name="conv", pads=[1, 1, 1, 1])]
    g = capture_onnx(make(nodes, {"a": x(1, 3, 8, 8)}, ["y"], {"w": np.zeros((300, 3, 3, 3), np.float32)}))
    assert [n.name for n in g] == ["conv"] and g.types(g.nodes[0].inputs)[2] == TensorType((300,), "float32")


def test_unmapped_ops_stay_as_onnx_ops():
    g = one("MaxRoiPool", ["a", "r"], {"a": x(1, 3, 8, 8), "r": x(2, 5)}, pooled_shape=[2, 2])
    assert g.nodes[0].op == OpId("onnx", "ai.onnx::MaxRoiPool") and g.nodes[0].attrs == {"pooled_shape": (2, 2)}
    # a mapped op whose work is a run-time value (adaptive samples per bin) stays unknown too
    roi = one("RoiAlign", ["a", "r", "b"], {"a": x(1, 3, 8, 8), "r": x(2, 4), "b": x(2, dt=I64)}, sampling_ratio=0)
    assert roi.nodes[0].op == OpId("onnx", "ai.onnx::RoiAlign") and roi.nodes[0].attrs == {"sampling_ratio": 0}
    assert roi.nodes[0].inputs == ("a", "r", "b")


def test_custom_op_with_value_info_is_kept_as_unknown():
    nodes = [helper.make_node("Foo", ["a"], ["f"], name="foo", domain="com.example", alpha=1.5),
             helper.make_node("Relu", ["f"], ["y"], name="r")]
    vi = [helper.make_tensor_value_info("f", F, ["batch", 7])]
    g = capture_onnx(make(nodes, {"a": x("batch", 3)}, ["y"], domains=("com.example",), value_info=vi),
                     dims={"batch": 2})
    foo, relu = g.nodes
    assert foo.op == OpId("onnx", "com.example::Foo") and foo.source_op == "com.example::Foo"
    assert foo.attrs == {"alpha": 1.5}
    assert g.values["f"].type == TensorType((2, 7), "float32") == g.values["y"].type


def test_dims_named_only_in_value_info_are_bindable():
    nodes = [helper.make_node("Foo", ["a"], ["f"], name="foo", domain="com.example")]
    model = make(nodes, {"a": x(2, 3)}, ["f"], domains=("com.example",),
                 value_info=[helper.make_tensor_value_info("f", F, [2, "total"])])
    with pytest.raises(UsageError, match=r"unbound dynamic dimensions total \(node 'foo' output 'f' dim 1\): "
                                         r"bind them with --dim total=N"):
        capture_onnx(model)
    assert capture_onnx(model, dims={"total": 9}).values["f"].type == TensorType((2, 9), "float32")


def test_custom_op_without_value_info_is_an_error_naming_the_node():
    nodes = [helper.make_node("Foo", ["a"], ["f"], name="foo", domain="com.example")]
    with pytest.raises(UsageError, match=r"node 'foo' \(com.example::Foo\).*value_info"):
        capture_onnx(make(nodes, {"a": x(2, 3)}, ["f"], domains=("com.example",)))


def test_model_local_functions_are_inlined():
    fn = helper.make_function("local", "Swishy", ["x"], ["y"],
                              [helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("Mul", ["x", "s"], ["y"])],
                              [helper.make_opsetid("", 23)])
    nodes = [helper.make_node("Swishy", ["a"], ["y"], name="sw", domain="local")]
    g = capture_onnx(make(nodes, {"a": x(2, 3)}, ["y"], domains=("local",), functions=[fn]))
    assert [str(n.op) for n in g] == ["sigmoid", "mul"]


# --- values, names, modules -----------------------------------------------------------------------

def test_value_kinds_and_constants_become_weights():
    w = numpy_helper.from_array(np.ones((3, 4), np.float32), "w")
    nodes = [helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.ones(4, np.float16))),
             helper.make_node("Constant", [], ["k"], value_ints=[1, 2]),
             helper.make_node("MatMul", ["a", "w"], ["m"]),
             helper.make_node("Cast", ["m"], ["h"], to=TensorProto.FLOAT16),
             helper.make_node("Add", ["h", "c"], ["y"])]
    inputs = [helper.make_tensor_value_info("a", F, [2, 3]), helper.make_tensor_value_info("w", F, [3, 4])]
    graph = helper.make_graph(nodes, "g", inputs, [onnx.ValueInfoProto(name="y")], [w])  # IR 3 style: w is an input
    g = capture_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)]))
    kinds = {name: v.kind for name, v in g.values.items()}
    assert kinds == {"a": "input", "w": "weight", "c": "weight", "k": "weight", "m": "activation",
                     "h": "activation", "y": "activation"}
    assert [n.source_op for n in g] == ["MatMul", "Cast", "Add"]  # Constants are values, not nodes
    assert g.values["c"].type == TensorType((4,), "float16") and g.values["k"].type == TensorType((2,), "int64")
    assert g.values["m"].producer == "MatMul_2" and g.values["w"].producer is None
    assert g.outputs == ("y",)
    assert {v.name for v in g.weights()} == {"w", "c", "k"}


def test_node_names_are_unique_and_synthesised_when_empty():
    nodes = [helper.make_node("Relu", ["a"], ["b"]), helper.make_node("Relu", ["b"], ["c"], name="r"),
             helper.make_node("Relu", ["c"], ["d"], name="r")]
    g = capture_onnx(make(nodes, {"a": x(2)}, ["d"]))
    assert [n.name for n in g] == ["Relu_0", "r", "r_1"]


def test_module_paths_from_exporter_metadata():
    assert module_path(": __main__.M/layers.0: __main__.Blk/layers.0.attn: __main__.Attn/"
                       "scaled_dot_product_attention: aten.scaled_dot_product_attention.default") == "layers.0.attn"
    assert module_path(": __main__.M/add: aten.add.Tensor") == ""
    assert module_path("_empty_nn_module_stack_from_metadata_hook: _empty_nn_module_stack_from_metadata_hook/"
                       "sym_size_int_2: aten.sym_size.int") == ""
    assert module_path("garbage") == ""
    n1 = helper.make_node("Relu", ["a"], ["b"], name="n1")
    p = n1.metadata_props.add()
    p.key, p.value = "namespace", ": __main__.M/enc: torch.nn.Sequential/enc.0: Lin/relu: aten.relu.default"
    n2 = helper.make_node("Relu", ["b"], ["c"], name="/encoder/layer.1/act/Relu")  # dynamo=False naming
    n3 = helper.make_node("Relu", ["c"], ["d"], name="plain")
    g = capture_onnx(make([n1, n2, n3], {"a": x(2)}, ["d"]))
    assert [n.module for n in g] == ["enc.0", "encoder.layer.1.act", ""]


# --- dims -----------------------------------------------------------------------------------------

def _dynamic():
    nodes = [helper.make_node("MatMul", ["ids_f", "w"], ["y"], name="mm")]
    feeds = {"ids_f": x("batch", "sequence", 8), "mask": x("batch", "sequence", dt=I64)}
    return make(nodes, feeds, ["y"], {"w": np.zeros((8, 4), np.float32)})


def test_dims_bind_symbolic_input_dims_without_changing_the_proto():
    model = _dynamic()
    g = capture_onnx(model, dims={"batch": 3, "sequence": 5})
    assert g.values["y"].type == TensorType((3, 5, 4), "float32")
    assert g.values["mask"].type == TensorType((3, 5), "int64")
    assert g.meta["dims"] == {"batch": 3, "sequence": 5}
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


def test_unbound_dims_error_names_every_dim_and_where():
    with pytest.raises(UsageError) as e:
        capture_onnx(_dynamic(), dims={"sequence": 5})
    msg = str(e.value)
    assert "\n" not in msg
    assert "batch (input 'ids_f' dim 0, input 'mask' dim 0)" in msg and "--dim batch=N" in msg
    assert "sequence" not in msg
    with pytest.raises(UsageError, match=r"batch \(.*\), sequence \(.*\): "
                                         r"bind them with --dim batch=N --dim sequence=N"):
        capture_onnx(_dynamic())


def test_unnamed_dynamic_dims_are_reported():
    model = make([helper.make_node("Relu", ["a"], ["y"])], {"a": x(None, 3)}, ["y"])
    with pytest.raises(UsageError, match=r"input 'a' dim 0 is dynamic with no name"):
        capture_onnx(model)


@pytest.mark.parametrize("dims, pattern", [
    ({"batch": 2, "sequence": 3, "heads": 4},
     r"'heads' is not in the model; its dynamic dimensions are: batch, sequence"),
    ({"batch": 0, "sequence": 3}, r"batch=0 must be an integer from 1 to 2\*\*31"),
    ({"batch": -2, "sequence": 3}, r"batch=-2"),
    ({"batch": 2**31 + 1, "sequence": 3}, r"batch=2147483649"),
    ({"batch": "8", "sequence": 3}, r"batch='8'"),
    ({"batch": 2**20, "sequence": 2**20}, r"value '\w+' has shape .*2\*\*40 elements"),
])
def test_bad_dims_are_usage_errors(dims, pattern):
    with pytest.raises(UsageError, match=pattern):
        capture_onnx(_dynamic(), dims=dims)


def test_dims_key_on_a_static_model():
    with pytest.raises(UsageError, match="its dynamic dimensions are: none"):
        capture_onnx(make([helper.make_node("Relu", ["a"], ["y"])], {"a": x(2)}, ["y"]), dims={"batch": 1})


# --- external data: weight bytes are never read ---------------------------------------------------

def _external_model(tmp_path, value_info=True):
    nodes = [helper.make_node("Gather", ["emb", "ids"], ["e"], name="embed"),
             helper.make_node("MatMul", ["e", "w"], ["m"], name="proj"),
             helper.make_node("Add", ["m", "b"], ["a"], name="bias"),
             helper.make_node("Reshape", ["a", "shape"], ["y"], name="flat")]
    consts = {"emb": np.random.rand(1000, 64).astype(np.float32), "w": np.random.rand(64, 32).astype(np.float32),
              "b": np.zeros(32, np.float32), "shape": np.array([-1, 32], np.int64)}
    vi = [helper.make_tensor_value_info("y", F, ["batch*seq", 32])] if value_info else []
    model = make(nodes, {"ids": x("batch", "seq", dt=I64)}, ["y"], consts, value_info=vi)
    path = tmp_path / "model.onnx"
    onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                    size_threshold=0, location="model.onnx.data")
    assert os.path.getsize(path) < 2000 and os.path.getsize(tmp_path / "model.onnx.data") > 256_000
    return path, tmp_path / "model.onnx.data"


def _check_external(g):
    assert g.values["emb"].type == TensorType((1000, 64), "float32") and g.values["emb"].kind == "weight"
    assert g.values["m"].type == TensorType((2, 3, 32), "float32")
    assert g.values["y"].type == TensorType((6, 32), "float32")
    assert [str(n.op) for n in g] == ["gather", "matmul", "add", "view"]


def test_external_data_present(tmp_path):
    path, _ = _external_model(tmp_path, value_info=False)  # the Reshape target is read: 16 bytes
    _check_external(capture_onnx(path, dims={"batch": 2, "seq": 3}))


def test_external_data_missing_or_truncated(tmp_path):
    path, data = _external_model(tmp_path)
    os.remove(data)
    _check_external(capture_onnx(path, dims={"batch": 2, "seq": 3}))  # y's shape from value_info "batch*seq"
    data.write_bytes(b"")  # truncated to nothing
    _check_external(capture_onnx(str(path), dims={"batch": 2, "seq": 3}))


def test_external_data_huge_is_not_read(tmp_path):
    path, data = _external_model(tmp_path, value_info=False)
    with open(data, "r+b") as f:  # a sparse 64 GiB tail: reading the weights would take minutes
        f.truncate(os.path.getsize(data) + 2**36)
    t0 = time.perf_counter()
    _check_external(capture_onnx(path, dims={"batch": 2, "seq": 3}))
    assert time.perf_counter() - t0 < 5


def test_external_data_missing_without_value_info_names_node_and_file(tmp_path):
    path, data = _external_model(tmp_path, value_info=False)
    os.remove(data)
    with pytest.raises(UsageError, match=r"model.onnx: cannot infer the output shape of node 'flat' \(Reshape\).*"
                                         r"'shape' is in an external data file.*keep the external data file"):
        capture_onnx(path, dims={"batch": 2, "seq": 3})


# --- bad inputs -----------------------------------------------------------------------------------

def _good_bytes():
    return make([helper.make_node("Relu", ["a"], ["y"])], {"a": x(2, 3)}, ["y"]).SerializeToString()


@pytest.mark.parametrize("kind, pattern", [
    ("missing", "no such file"),
    ("directory", "is a directory"),
    ("empty", "empty file"),
    ("truncated", "not a readable ONNX protobuf.*truncated"),
    ("text", "not a readable ONNX protobuf|not an ONNX model"),
    ("zip", "zip archive"),
    ("no-graph", "not an ONNX model"),
])
def test_unreadable_files_are_usage_errors_naming_the_file(tmp_path, kind, pattern):
    path = tmp_path / f"{kind}.onnx"
    if kind == "directory":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        path.write_bytes(_good_bytes()[:-7])
    elif kind == "text":
        path.write_text("this is a plain text file, not a model\n" * 5)
    elif kind == "zip":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("model/data.pkl", b"x" * 100)
    elif kind == "no-graph":
        path.write_bytes(onnx.ModelProto(producer_name="x").SerializeToString())
    with pytest.raises(UsageError, match=pattern) as e:
        capture_onnx(path)
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)
    assert e.value.exit_code == 2


@pytest.mark.parametrize("nodes, pattern", [
    ([helper.make_node("Relu", ["nope"], ["y"], name="r")], r"node 'r' \(Relu\) reads 'nope' which no input"),
    ([helper.make_node("Relu", ["b"], ["y"], name="r2"), helper.make_node("Relu", ["a"], ["b"], name="r1")],
     r"node 'r2' \(Relu\) reads 'b' which a later node defines \(nodes are not in topological order\)"),
    ([helper.make_node("Relu", ["a"], ["y"], name="r1"), helper.make_node("Relu", ["a"], ["y"], name="r2")],
     r"'y' is defined twice \(node 'r2'\)"),
])
def test_invalid_model_protos_are_usage_errors(tmp_path, nodes, pattern):
    path = tmp_path / "bad.onnx"
    onnx.save_model(make(nodes, {"a": x(2, 3)}, ["y"]), path)
    with pytest.raises(UsageError, match=r"bad.onnx: invalid ONNX model: " + pattern):
        capture_onnx(path)


def test_missing_default_opset_is_an_invalid_model():
    model = make([helper.make_node("Relu", ["a"], ["y"])], {"a": x(2)}, ["y"])
    del model.opset_import[:]
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    with pytest.raises(UsageError, match="no opset_import for the default ONNX domain"):
        capture_onnx(model)


def test_shape_inference_failure_names_the_node_and_op():
    nodes = [helper.make_node("MatMul", ["a", "b"], ["y"], name="mm")]
    with pytest.raises(UsageError, match=r"'g': cannot infer the output shape of node 'mm' \(MatMul\).*"
                                         r"Incompatible dimensions"):
        capture_onnx(make(nodes, {"a": x(2, 3), "b": x(4, 5)}, ["y"]))


def test_data_dependent_shapes_are_usage_errors():
    nodes = [helper.make_node("NonZero", ["a"], ["y"], name="nz")]
    with pytest.raises(UsageError, match=r"node 'nz' \(NonZero\).*static shapes"):
        capture_onnx(make(nodes, {"a": x(2, 3)}, ["y"]))


def test_malformed_node_attributes_are_usage_errors():
    nodes = [helper.make_node("GroupNormalization", ["a", "s", "s"], ["y"], name="gn")]  # no num_groups
    with pytest.raises(UsageError, match=r"node 'gn' \(GroupNormalization\).*check the model"):
        capture_onnx(make(nodes, {"a": x(2, 4, 3)}, ["y"], {"s": np.ones(4, np.float32)}))


def test_not_a_model_argument():
    with pytest.raises(UsageError, match="expected a path or an onnx.ModelProto"):
        capture_onnx(42)


# --- scale ----------------------------------------------------------------------------------------

def test_100k_node_chain_captures_in_seconds():
    n, nodes, prev = 100_000, [], "a"
    for i in range(n):
        op = ("Relu", "Exp", "Add", "Mul", "Sigmoid")[i % 5]
        nodes.append(helper.make_node(op, [prev, "b"] if op in ("Add", "Mul") else [prev], [f"v{i}"], name=f"n{i}"))
        prev = f"v{i}"
    model = make(nodes, {"a": x("batch", 64)}, [prev], {"b": np.ones(64, np.float32)})
    t0 = time.perf_counter()
    g = capture_onnx(model, dims={"batch": 8})
    elapsed = time.perf_counter() - t0
    assert len(g) == n and g.values[prev].type == TensorType((8, 64), "float32")
    assert elapsed < 30, f"100k-node capture took {elapsed:.1f} s"


# --- models exported by torch.onnx.export(dynamo=True, opset_version=23) --------------------------

torch = pytest.importorskip("torch")


def _export(module, args, tmp_path_factory, name, dynamic_shapes=None):
    path = tmp_path_factory.mktemp("export") / f"{name}.onnx"
    program = torch.onnx.export(module.eval(), args, dynamo=True, opset_version=23, dynamic_shapes=dynamic_shapes,
                                verbose=False)
    program.save(str(path))
    return path


@pytest.fixture(scope="module")
def llama_onnx(tmp_path_factory):
    import torch.nn as nn
    import torch.nn.functional as Fn

    class Attn(nn.Module):
        def __init__(self, d=64, h=4, kv=2):
            super().__init__()
            self.h, self.kv, self.hd = h, kv, d // h
            self.q = nn.Linear(d, d, bias=False)
            self.k = nn.Linear(d, kv * self.hd, bias=False)
            self.v = nn.Linear(d, kv * self.hd, bias=False)
            self.o = nn.Linear(d, d, bias=False)

        def forward(self, x):
            b, s, d = x.shape
            q = self.q(x).view(b, s, self.h, self.hd).transpose(1, 2)
            k = self.k(x).view(b, s, self.kv, self.hd).transpose(1, 2)
            v = self.v(x).view(b, s, self.kv, self.hd).transpose(1, 2)
            y = Fn.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
            return self.o(y.transpose(1, 2).reshape(b, s, d))

    class Block(nn.Module):
        def __init__(self, d=64):
            super().__init__()
            self.attn, self.n1, self.n2 = Attn(d), nn.RMSNorm(d), nn.RMSNorm(d)
            self.gate, self.up, self.down = nn.Linear(d, 4 * d, bias=False), nn.Linear(d, 4 * d, bias=False), \
                nn.Linear(4 * d, d, bias=False)

        def forward(self, x):
            x = x + self.attn(self.n1(x))
            h = self.n2(x)
            return x + self.down(Fn.silu(self.gate(h)) * self.up(h))

    class Llama(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb, self.layers, self.norm = nn.Embedding(100, 64), nn.ModuleList([Block(), Block()]), nn.RMSNorm(64)

        def forward(self, ids):
            x = self.emb(ids)
            for layer in self.layers:
                x = layer(x)
            return self.norm(x)

    dyn = ({0: torch.export.Dim("batch"), 1: torch.export.Dim("sequence")},)
    return _export(Llama(), (torch.randint(0, 100, (2, 16)),), tmp_path_factory, "llama", dyn)


def _all_static(g):
    for node in g:
        for name in (*node.inputs, *node.outputs):
            assert name is None or isinstance(g.values[name].type, TensorType), (node.name, name)


def test_exported_llama_block_with_gqa_and_causal_sdpa(llama_onnx):
    g = capture_onnx(llama_onnx, dims={"batch": 3, "sequence": 7})
    _all_static(g)
    assert all(not n.op.domain == "onnx" for n in g), [n.source_op for n in g if n.op.domain == "onnx"]
    att = [n for n in g if n.op == canonical("attention")]
    assert len(att) == 2 and att[0].attrs["is_causal"] is True
    assert g.types(att[0].inputs) == [TensorType((3, 4, 7, 16), "float32"), TensorType((3, 2, 7, 16), "float32"),
                                      TensorType((3, 2, 7, 16), "float32")]
    assert att[0].module == "layers.0.attn" and att[1].module == "layers.1.attn"
    q = next(n for n in g if n.op == canonical("matmul"))
    assert q.module == "layers.0.attn.q" and g.types(q.outputs) == [TensorType((3, 7, 64), "float32")]
    emb = next(n for n in g if n.op == canonical("gather"))
    assert emb.module == "emb" and g.values[emb.inputs[0]].kind == "weight"
    assert sum(n.op == canonical("rms_norm") for n in g) == 5
    assert [v.name for v in g.values.values() if v.kind == "input"] == ["ids"]
    with pytest.raises(UsageError, match=r"batch \(input 'ids' dim 0\), sequence \(input 'ids' dim 1\)"):
        capture_onnx(llama_onnx)


def test_exported_cnn_and_mlp(tmp_path_factory):
    import torch.nn as nn
    import torch.nn.functional as Fn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn, self.pool = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.MaxPool2d(2)
            self.head, self.ln = nn.Linear(8, 16), nn.LayerNorm(16)
            self.fc1, self.fc2 = nn.Linear(16, 32), nn.Linear(32, 16)

        def forward(self, x):
            x = self.pool(Fn.relu(self.bn(self.conv(x))))
            h = self.ln(self.head(Fn.adaptive_avg_pool2d(x, 1).flatten(1)))
            return self.fc2(Fn.gelu(self.fc1(h))) + self.fc2(Fn.gelu(self.fc1(h), approximate="tanh"))

    path = _export(Net(), (torch.randn(2, 3, 16, 16),), tmp_path_factory, "net")
    g = capture_onnx(path)
    _all_static(g)
    ops = {str(n.op) for n in g}
    assert {"conv", "relu", "max_pool", "reduce_mean", "layer_norm", "gelu", "gelu_tanh"} <= ops, ops
    assert not any(n.op.domain == "onnx" for n in g)
    conv = next(n for n in g if n.op == canonical("conv"))
    assert g.types(conv.outputs) == [TensorType((2, 8, 16, 16), "float32")]
    assert next(n for n in g if n.op == canonical("layer_norm")).module == "ln"
