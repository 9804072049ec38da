"""The less common ONNX default-domain ops (onnx_tail_ops) and the com.microsoft contrib ops (onnx_contrib_ops):
each as a tiny one-node model, captured and counted with every node costed (coverage 1.0), decomposed into the
canonical ops its mapper documents. Formula checks for the contrib ops onnxruntime's transformer optimizer emits,
and onnxruntime runs the contrib graphs its CPU build has kernels for, giving the output shapes graphperf inferred.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from graphperf.capture.onnx_capture import capture_onnx
from graphperf.count import count

F, H, I64, I32, U8, I8, BOOL = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.INT64, TensorProto.INT32,
                                TensorProto.UINT8, TensorProto.INT8, TensorProto.BOOL)
MS = "com.microsoft"


def f32(*shape):
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def case(id, op_type, inputs, feeds, ops, consts=None, outs=(("y", None),), domain="", opset=23, **attrs):
    """feeds {name: (elem_type, shape)}; outs ((name, (elem_type, shape) or None), ...), "" names omitted
    outputs; ops: the canonical ops of the captured nodes, in order."""
    return pytest.param(dict(op_type=op_type, inputs=inputs, feeds=feeds, consts=consts or {}, outs=outs,
                             domain=domain, opset=opset, attrs=attrs), ops, id=id)


def build(spec) -> onnx.ModelProto:
    names = [name for name, _ in spec["outs"]]
    node = helper.make_node(spec["op_type"], spec["inputs"], names, name="n", domain=spec["domain"], **spec["attrs"])
    feeds = [helper.make_tensor_value_info(k, dt, shape) for k, (dt, shape) in spec["feeds"].items()]
    outputs = [helper.make_tensor_value_info(name, *t) if t else onnx.ValueInfoProto(name=name)
               for name, t in spec["outs"] if name]
    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in spec["consts"].items()]
    opsets = [helper.make_opsetid("", spec["opset"])] + ([helper.make_opsetid(MS, 1)] if spec["domain"] else [])
    return helper.make_model(helper.make_graph([node], "g", feeds, outputs, inits), opset_imports=opsets)


def x(*shape, dt=F):
    return (dt, list(shape))


UNARY = {"Acos": "acos", "Asin": "asin", "Atan": "atan", "Acosh": "acosh", "Asinh": "asinh", "Atanh": "atanh",
         "Cosh": "cosh", "Sinh": "sinh", "Tan": "tan", "Elu": "elu", "Selu": "selu", "Celu": "celu",
         "HardSigmoid": "hardsigmoid", "HardSwish": "hardswish", "Softplus": "softplus", "Softsign": "softsign",
         "Mish": "mish", "ThresholdedRelu": "thresholded_relu", "Shrink": "shrink", "Bernoulli": "bernoulli"}

TAIL = [
    *[case(op, op, ["a"], {"a": x(2, 3)}, [t]) for op, t in UNARY.items()],
    case("BitwiseXor", "BitwiseXor", ["a", "b"], {"a": x(4, dt=I32), "b": x(4, dt=I32)}, ["bitwise_xor"]),
    case("BitShift", "BitShift", ["a", "b"], {"a": x(4, dt=TensorProto.UINT32), "b": x(4, dt=TensorProto.UINT32)},
         ["bitwise_shift"], direction="LEFT"),
    case("QuantizeLinear", "QuantizeLinear", ["a", "s", "z"], {"a": x(2, 3)}, ["quantize_linear"],
         {"s": np.float32(0.1), "z": np.uint8(3)}),
    case("DequantizeLinear", "DequantizeLinear", ["a", "s", "z"], {"a": x(2, 3, dt=U8)}, ["dequantize_linear"],
         {"s": np.float32(0.1), "z": np.uint8(3)}),
    case("NonZero", "NonZero", ["a"], {"a": x(2, 3)}, ["nonzero"], outs=(("y", x(2, 4, dt=I64)),)),
    case("Det", "Det", ["a"], {"a": x(3, 4, 4)}, ["det"]),
    case("Multinomial", "Multinomial", ["a"], {"a": x(2, 10)}, ["multinomial"], sample_size=3),
    case("RandomNormal", "RandomNormal", [], {}, ["random_normal"], shape=[2, 3]),
    case("RandomUniform", "RandomUniform", [], {}, ["random_uniform"], shape=[2, 3]),
    case("RandomNormalLike", "RandomNormalLike", ["a"], {"a": x(2, 3)}, ["random_normal"]),
    case("RandomUniformLike", "RandomUniformLike", ["a"], {"a": x(2, 3)}, ["random_uniform"]),
    case("EyeLike", "EyeLike", ["a"], {"a": x(4, 4)}, ["fill"]),
    *[case(op, op, ["n_"], {}, [t], {"n_": np.int64(16)}) for op, t in
      (("HannWindow", "hann_window"), ("HammingWindow", "hamming_window"), ("BlackmanWindow", "blackman_window"))],
    case("MelWeightMatrix", "MelWeightMatrix", ["m", "d", "r", "lo", "hi"], {}, ["mel_weight_matrix"],
         {"m": np.int64(8), "d": np.int64(32), "r": np.int64(16000), "lo": np.float32(0), "hi": np.float32(8000)}),
    case("ReverseSequence", "ReverseSequence", ["a", "l"], {"a": x(4, 2, 3)}, ["copy"], {"l": np.array([4, 3])},
         batch_axis=1, time_axis=0),
    case("Col2Im", "Col2Im", ["a", "i", "b"], {"a": x(1, 4, 9)}, ["reduce_sum"],
         {"i": np.array([4, 4]), "b": np.array([2, 2])}),
    case("Compress", "Compress", ["a", "c"], {"a": x(4, 5), "c": x(4, dt=BOOL)}, ["gather"],
         outs=(("y", x(2, 5)),), axis=0),
    case("OneHot", "OneHot", ["i", "d", "v"], {"i": x(3, dt=I64)}, ["one_hot"],
         {"d": np.int64(5), "v": np.array([0, 1], np.float32)}),
    case("LRN", "LRN", ["a"], {"a": x(1, 4, 5, 5)}, ["lrn"], size=3),
    case("ReduceLogSumExp", "ReduceLogSumExp", ["a", "ax"], {"a": x(2, 3, 4)}, ["reduce_logsumexp"],
         {"ax": np.array([-1])}, keepdims=0),
    case("GlobalLpPool", "GlobalLpPool", ["a"], {"a": x(1, 3, 4, 4)}, ["reduce_sum"]),
    case("LpPool", "LpPool", ["a"], {"a": x(1, 3, 8, 8)}, ["avg_pool"], kernel_shape=[2, 2]),
    case("Hardmax", "Hardmax", ["a"], {"a": x(2, 5)}, ["argmax"]),
    case("LpNormalization", "LpNormalization", ["a"], {"a": x(2, 5)}, ["rms_norm"]),
    case("MeanVarianceNormalization", "MeanVarianceNormalization", ["a"], {"a": x(2, 3, 4, 4)}, ["layer_norm"]),
    case("Mean", "Mean", ["a", "b", "c"], {"a": x(2, 3), "b": x(2, 3), "c": x(1, 3)}, ["add", "add", "div"]),
    case("DynamicQuantizeLinear", "DynamicQuantizeLinear", ["a"], {"a": x(2, 3)},
         ["quantize_linear", "reduce_max", "reduce_min"], outs=(("y", None), ("s", None), ("z", None))),
    case("NegativeLogLikelihoodLoss", "NegativeLogLikelihoodLoss", ["a", "t"], {"a": x(4, 5), "t": x(4, dt=I64)},
         ["nll_loss"]),
    case("NegativeLogLikelihoodLoss-nd", "NegativeLogLikelihoodLoss", ["a", "t"],
         {"a": x(2, 5, 3), "t": x(2, 3, dt=I64)}, ["view", "view", "nll_loss"], reduction="sum"),
    case("SoftmaxCrossEntropyLoss", "SoftmaxCrossEntropyLoss", ["a", "t"], {"a": x(4, 5), "t": x(4, dt=I64)},
         ["softmax", "nll_loss"], outs=(("y", None), ("lp", None))),
    case("Unique", "Unique", ["a"], {"a": x(6)}, ["view", "sort"],
         outs=(("y", x(4)), ("i", x(4, dt=I64)), ("inv", x(6, dt=I64)), ("c", x(4, dt=I64)))),
    case("MaxUnpool", "MaxUnpool", ["a", "i"], {"a": x(1, 1, 2, 2), "i": x(1, 1, 2, 2, dt=I64)}, ["fill", "scatter"],
         kernel_shape=[2, 2], strides=[2, 2]),
    case("CenterCropPad-crop", "CenterCropPad", ["a", "s"], {"a": x(4, 6)}, ["slice"], {"s": np.array([2, 4])}),
    case("CenterCropPad-pad", "CenterCropPad", ["a", "s"], {"a": x(4, 6)}, ["pad"], {"s": np.array([6, 8])}),
    case("LSTM", "LSTM", ["X", "W", "R"], {"X": x(5, 2, 6)}, ["rnn"], {"W": f32(1, 16, 6), "R": f32(1, 16, 4)},
         outs=(("y", None), ("yh", None)), hidden_size=4),
    case("GRU", "GRU", ["X", "W", "R", "B"], {"X": x(5, 2, 6)}, ["rnn"],
         {"W": f32(2, 12, 6), "R": f32(2, 12, 4), "B": f32(2, 24)}, hidden_size=4, direction="bidirectional"),
    case("RNN", "RNN", ["X", "W", "R"], {"X": x(2, 5, 6)}, ["rnn"], {"W": f32(1, 4, 6), "R": f32(1, 4, 4)},
         hidden_size=4, layout=1),
    case("DFT", "DFT", ["a"], {"a": x(2, 16, 1)}, ["fft"]),
    case("DFT-17", "DFT", ["a"], {"a": x(2, 16, 2)}, ["fft"], opset=17, axis=1),
    case("STFT", "STFT", ["a", "s", "w", "l"], {"a": x(1, 64, 1)}, ["view", "view", "mul", "fft"],
         {"s": np.int64(8), "w": np.ones(16, np.float32), "l": np.int64(16)}),
    case("GridSample", "GridSample", ["a", "g"], {"a": x(1, 3, 8, 8), "g": x(1, 4, 4, 2)}, ["interpolate"],
         mode="cubic"),
    case("RoiAlign", "RoiAlign", ["a", "r", "b"], {"a": x(1, 3, 8, 8), "r": x(2, 4), "b": x(2, dt=I64)},
         ["interpolate"], output_height=2, output_width=2, sampling_ratio=2),
    case("AffineGrid", "AffineGrid", ["t", "s"], {"t": x(2, 2, 3)}, ["fill", "einsum"], {"s": np.array([2, 3, 4, 5])}),
    case("DeformConv", "DeformConv", ["a", "w", "o"], {"a": x(1, 2, 5, 5), "o": x(1, 18, 3, 3)},
         ["interpolate", "conv"], {"w": f32(3, 2, 3, 3)}),
    case("Resize-linear", "Resize", ["a", "", "s"], {"a": x(1, 1, 4, 4)}, ["interpolate"],
         {"s": np.array([1, 1, 2, 2], np.float32)}, mode="linear"),
    # the experimental ops onnxruntime keeps in the default domain (onnx has no schema: shapes given)
    case("Scale", "Scale", ["a"], {"a": x(2, 3)}, ["mul"], outs=(("y", x(2, 3)),), scale=2.0),
    case("ParametricSoftplus", "ParametricSoftplus", ["a"], {"a": x(2, 3)}, ["softplus"], outs=(("y", x(2, 3)),)),
    case("ScaledTanh", "ScaledTanh", ["a"], {"a": x(2, 3)}, ["tanh"], outs=(("y", x(2, 3)),)),
    case("Crop", "Crop", ["a"], {"a": x(1, 3, 8, 8)}, ["slice"], outs=(("y", x(1, 3, 4, 4)),), border=[2, 2, 2, 2]),
    case("DynamicSlice", "DynamicSlice", ["a", "s", "e"], {"a": x(4, 6)}, ["slice"],
         {"s": np.array([1]), "e": np.array([3])}, outs=(("y", x(2, 6)),)),
    case("MemcpyFromHost", "MemcpyFromHost", ["a"], {"a": x(2, 3)}, ["copy"], outs=(("y", x(2, 3)),)),
    case("MemcpyToHost", "MemcpyToHost", ["a"], {"a": x(2, 3)}, ["copy"], outs=(("y", x(2, 3)),)),
    case("GivenTensorFill", "GivenTensorFill", [], {}, ["fill"], outs=(("y", x(2, 3)),), shape=[2, 3]),
    case("Affine", "Affine", ["a"], {"a": x(2, 3)}, ["mul", "add"], outs=(("y", x(2, 3)),)),
    case("ImageScaler", "ImageScaler", ["a"], {"a": x(1, 3, 4, 4)}, ["mul", "add"], outs=(("y", x(1, 3, 4, 4)),)),
    case("RotaryEmbedding-23", "RotaryEmbedding", ["a", "c", "s", "p"], {"a": x(2, 4, 6, 8), "p": x(2, 6, dt=I64)},
         ["rotary"], {"c": f32(16, 4), "s": f32(16, 4)}),
]

B, S, D, N, NKV = 2, 8, 32, 4, 2  # batch, sequence, hidden, heads, kv heads
HD = D // N
GH, GD = 16, 16 * N  # GroupQueryAttention on onnxruntime's CPU needs head sizes that are multiples of 16
W4 = np.zeros((16, D // 16, 8), np.uint8)  # MatMulNBits, N=16, K=32, 4-bit blocks of 16: [N, blocks, 8 bytes]
Y = (("y", x(B, S, D)),)


def ms(id, op_type, inputs, feeds, ops, consts=None, outs=Y, **attrs):
    return case(id, op_type, inputs, feeds, ops, consts, outs, domain=MS, **attrs)


CONTRIB = [
    ms("QuickGelu", "QuickGelu", ["a"], {"a": x(2, 3)}, ["quick_gelu"], outs=(("y", x(2, 3)),), alpha=1.702),
    ms("FastGelu-bias", "FastGelu", ["a", "b"], {"a": x(B, S, D)}, ["add", "gelu_tanh"], {"b": f32(D)}),
    ms("BiasGelu", "BiasGelu", ["a", "b"], {"a": x(B, S, D)}, ["add", "gelu"], {"b": f32(D)}),
    ms("BiasAdd", "BiasAdd", ["a", "b", "s"], {"a": x(B, S, D), "s": x(B, S, D)}, ["add", "add"], {"b": f32(D)}),
    ms("BiasSoftmax", "BiasSoftmax", ["a", "b"], {"a": x(B, N, S, S), "b": x(B, 1, S, S)}, ["add", "softmax"],
       outs=(("y", x(B, N, S, S)),), axis=3),
    ms("BiasSplitGelu", "BiasSplitGelu", ["a", "b"], {"a": x(B, S, 2 * D)}, ["add", "view", "view", "gelu", "mul"],
       {"b": f32(2 * D)}),
    ms("ComplexMul", "ComplexMul", ["a", "b"], {"a": x(4, 2), "b": x(4, 2)}, ["complex_mul"], outs=(("y", x(4, 2)),)),
    ms("ComplexMulConj", "ComplexMulConj", ["a", "b"], {"a": x(4, 2), "b": x(4, 2)}, ["complex_mul"],
       outs=(("y", x(4, 2)),)),
    ms("Inverse", "Inverse", ["a"], {"a": x(3, 4, 4)}, ["inverse"], outs=(("y", x(3, 4, 4)),)),
    ms("IsAllFinite", "IsAllFinite", ["a"], {"a": x(2, 3)}, ["reduce_all"], outs=(("y", x(dt=BOOL)),)),
    ms("Trilu", "Trilu", ["a"], {"a": x(4, 4)}, ["masked_fill"], outs=(("y", x(4, 4)),)),
    ms("ExpandDims", "ExpandDims", ["a", "ax"], {"a": x(4, 4)}, ["view"], {"ax": np.int32(0)},
       outs=(("y", x(1, 4, 4)),)),
    ms("UnfoldTensor", "UnfoldTensor", ["a"], {"a": x(2, 10)}, ["copy"], outs=(("y", x(2, 4, 4)),), dim=1, size=4,
       step=2),
    ms("Pad", "Pad", ["a", "p"], {"a": x(4, 6)}, ["pad"], {"p": np.array([1, 1, 1, 1])}, outs=(("y", x(6, 8)),)),
    ms("QuantizeLinear", "QuantizeLinear", ["a", "s", "z"], {"a": x(2, 3)}, ["quantize_linear"],
       {"s": np.float32(0.1), "z": np.uint8(3)}, outs=(("y", x(2, 3, dt=U8)),)),
    ms("DequantizeLinear", "DequantizeLinear", ["a", "s", "z"], {"a": x(2, 3, dt=U8)}, ["dequantize_linear"],
       {"s": np.float32(0.1), "z": np.uint8(3)}, outs=(("y", x(2, 3)),)),
    ms("QuantizeWithOrder", "QuantizeWithOrder", ["a", "s"], {"a": x(32, 32)}, ["quantize_linear"],
       {"s": np.float32(0.1)}, outs=(("y", x(32, 32, dt=I8)),), order_input=1, order_output=1),
    ms("DequantizeWithOrder", "DequantizeWithOrder", ["a", "s"], {"a": x(32, 32, dt=I8)}, ["dequantize_linear"],
       {"s": np.float32(0.1)}, outs=(("y", x(32, 32)),), order_input=1, order_output=1, to=F),
    ms("QuantizeBFP", "QuantizeBFP", ["a"], {"a": x(4, 8)}, ["quantize_linear", "fill", "fill"],
       outs=(("y", x(16, dt=U8)), ("sh", x(2, dt=I64)), ("st", x(2, dt=I64))), bfp_type=1),
    ms("DequantizeBFP", "DequantizeBFP", ["a", "sh", "st"], {"a": x(16, dt=U8)}, ["dequantize_linear"],
       {"sh": np.array([4, 8]), "st": np.array([8, 1])}, outs=(("y", x(4, 8)),), bfp_type=1),
    ms("QLinearSigmoid", "QLinearSigmoid", ["a", "s", "z", "s", "z"], {"a": x(2, 3, dt=U8)}, ["sigmoid"],
       {"s": np.float32(0.1), "z": np.uint8(0)}, outs=(("y", x(2, 3, dt=U8)),)),
    ms("QLinearLeakyRelu", "QLinearLeakyRelu", ["a", "s", "z", "s", "z"], {"a": x(2, 3, dt=U8)}, ["leaky_relu"],
       {"s": np.float32(0.1), "z": np.uint8(0)}, outs=(("y", x(2, 3, dt=U8)),)),
    ms("QOrderedGelu", "QOrderedGelu", ["a", "s", "s"], {"a": x(2, 32, dt=I8)}, ["gelu"], {"s": np.float32(0.1)},
       outs=(("y", x(2, 32, dt=I8)),)),
    ms("ReduceSumInteger", "ReduceSumInteger", ["a"], {"a": x(2, 3, dt=I8)}, ["reduce_sum"],
       outs=(("y", x(2, dt=I32)),), axes=[1], keepdims=0),
    ms("GatherND", "GatherND", ["a", "i"], {"a": x(4, 5), "i": x(3, 1, dt=I64)}, ["gather"], outs=(("y", x(3, 5)),)),
    ms("GatherBlockQuantized", "GatherBlockQuantized", ["a", "i", "s"], {"a": x(16, 32, dt=TensorProto.UINT4),
       "i": x(2, 3, dt=I64)}, ["gather"], {"s": f32(16, 2)}, outs=(("y", x(2, 3, 32)),), block_size=16),
    ms("GatherPacked", "GatherPacked", ["a", "i"], {"a": x(16, 64, dt=U8), "i": x(2, 3, dt=I64)}, ["gather"],
       outs=(("y", x(2, 3, 64)),), K=64),
    ms("TorchEmbedding", "TorchEmbedding", ["w", "i"], {"i": x(2, 3, dt=I64)}, ["gather"], {"w": f32(10, 4)},
       outs=(("y", x(2, 3, 4)),)),
    ms("MatMulInteger16", "MatMulInteger16", ["a", "b"], {"a": x(2, 8, dt=TensorProto.INT16),
       "b": x(8, 4, dt=TensorProto.INT16)}, ["matmul"], outs=(("y", x(2, 4, dt=I32)),)),
    ms("QLinearAdd", "QLinearAdd", ["a", "s", "z", "b", "s", "z", "s", "z"], {"a": x(2, 3, dt=U8), "b": x(2, 3, dt=U8)},
       ["add"], {"s": np.float32(0.1), "z": np.uint8(0)}, outs=(("y", x(2, 3, dt=U8)),)),
    ms("QLinearMul", "QLinearMul", ["a", "s", "z", "b", "s", "z", "s", "z"], {"a": x(2, 3, dt=U8), "b": x(2, 3, dt=U8)},
       ["mul"], {"s": np.float32(0.1), "z": np.uint8(0)}, outs=(("y", x(2, 3, dt=U8)),)),
    ms("MulInteger", "MulInteger", ["a", "z", "b", "z"], {"a": x(2, 3, dt=U8), "b": x(2, 3, dt=U8)}, ["mul"],
       {"z": np.uint8(0)}, outs=(("y", x(2, 3, dt=I32)),)),
    ms("QLinearWhere", "QLinearWhere", ["c", "a", "s", "z", "b", "s", "z", "s", "z"],
       {"c": x(2, 3, dt=BOOL), "a": x(2, 3, dt=U8), "b": x(2, 3, dt=U8)}, ["where"],
       {"s": np.float32(0.1), "z": np.uint8(0)}, outs=(("y", x(2, 3, dt=U8)),)),
    ms("Range", "Range", ["s", "l", "d"], {}, ["fill"], {"s": np.int64(0), "l": np.int64(10), "d": np.int64(1)},
       outs=(("y", x(10, dt=I64)),)),
    ms("MaxpoolWithMask", "MaxpoolWithMask", ["a", "m"], {"a": x(1, 1, 4, 4), "m": x(1, 1, 4, 4, dt=I32)},
       ["max_pool"], outs=(("y", x(1, 1, 2, 2)),), kernel_shape=[2, 2], strides=[2, 2]),
    ms("NhwcMaxPool", "NhwcMaxPool", ["a"], {"a": x(1, 4, 4, 3, dt=U8)}, ["max_pool"], outs=(("y", x(1, 2, 2, 3, dt=U8)),),
       kernel_shape=[2, 2], strides=[2, 2]),
    ms("QLinearAveragePool", "QLinearAveragePool", ["a", "s", "z", "s", "z"], {"a": x(1, 3, 4, 4, dt=U8)}, ["avg_pool"],
       {"s": np.float32(0.1), "z": np.uint8(0)}, outs=(("y", x(1, 3, 2, 2, dt=U8)),), kernel_shape=[2, 2],
       strides=[2, 2]),
    ms("QLinearSoftmax", "QLinearSoftmax", ["a", "s", "z", "s", "z"], {"a": x(2, 5, dt=U8)}, ["softmax"],
       {"s": np.float32(0.1), "z": np.uint8(0)}, outs=(("y", x(2, 5, dt=U8)),), opset=13),
    ms("QLinearGlobalAveragePool", "QLinearGlobalAveragePool", ["a", "s", "z", "s", "z"], {"a": x(1, 3, 4, 4, dt=U8)},
       ["reduce_mean"], {"s": np.float32(0.1), "z": np.uint8(0)}, outs=(("y", x(1, 3, 1, 1, dt=U8)),)),
    ms("QLinearReduceMean", "QLinearReduceMean", ["a", "s", "z", "s", "z"], {"a": x(2, 5, dt=U8)}, ["reduce_mean"],
       {"s": np.float32(0.1), "z": np.uint8(0)}, outs=(("y", x(2, 1, dt=U8)),), axes=[1], keepdims=1),
    ms("QLinearConcat", "QLinearConcat", ["s", "z", "a", "s", "z", "b", "s", "z"],
       {"a": x(2, 3, dt=U8), "b": x(2, 5, dt=U8)}, ["concat"], {"s": np.float32(0.1), "z": np.uint8(0)},
       outs=(("y", x(2, 8, dt=U8)),), axis=1),
    ms("ScaledSiLU", "ScaledSiLU", ["a"], {"a": x(2, 3)}, ["mul", "silu"], outs=(("y", x(2, 3)),), alpha=2.0),
    ms("SwiGLU", "SwiGLU", ["g", "u"], {"g": x(2, 8), "u": x(2, 8)}, ["clamp", "clamp", "add", "quick_gelu", "mul"],
       outs=(("y", x(2, 8)),), limit=7.0, activation_beta=1.0),
    ms("GatedAdd", "GatedAdd", ["a", "b", "g"], {"a": x(2, 8), "b": x(2, 8), "g": x(2, 1)}, ["mul", "add"],
       outs=(("y", x(2, 8)),)),
    ms("LinearAttentionGate", "LinearAttentionGate", ["a", "dt", "sc", "b"], {"a": x(2, 4), "b": x(2, 4)},
       ["add", "softplus", "mul", "sigmoid"], {"dt": f32(4), "sc": f32(4)}, outs=(("d", x(2, 4)), ("be", x(2, 4)))),
    ms("SkipLayerNormalization", "SkipLayerNormalization", ["a", "s", "g", "b", "bias"],
       {"a": x(B, S, D), "s": x(B, S, D)}, ["add", "add", "layer_norm"], {"g": f32(D), "b": f32(D), "bias": f32(D)},
       outs=(("y", x(B, S, D)), ("", None), ("", None), ("sum", x(B, S, D)))),
    ms("SkipSimplifiedLayerNormalization", "SkipSimplifiedLayerNormalization", ["a", "s", "g"],
       {"a": x(B, S, D), "s": x(B, S, D)}, ["add", "rms_norm"], {"g": f32(D)}),
    ms("QOrderedLayerNormalization", "QOrderedLayerNormalization", ["a", "sx", "g", "b", "sy"], {"a": x(B, S, D, dt=I8)},
       ["layer_norm"], {"sx": np.float32(0.1), "sy": np.float32(0.1), "g": f32(D).astype(np.float16),
                        "b": f32(D).astype(np.float16)}, outs=(("y", x(B, S, D, dt=I8)),)),
    ms("BranchwiseRMSNorm", "BranchwiseRMSNorm", ["a", "g"], {"a": x(B, S, D)}, ["rms_norm"], {"g": f32(8)},
       num_branches=4),
    ms("GatedRMSNorm", "GatedRMSNorm", ["a", "g", "z"], {"a": x(B, S, D), "z": x(B, S, D)},
       ["rms_norm", "silu", "mul"], {"g": f32(8)}),
    ms("GroupNorm", "GroupNorm", ["a", "g", "b"], {"a": x(1, 4, 4, 8)}, ["view", "group_norm", "silu"],
       {"g": f32(8), "b": f32(8)}, outs=(("y", x(1, 4, 4, 8)),), groups=2, activation=1, epsilon=1e-5),
    ms("SkipGroupNorm", "SkipGroupNorm", ["a", "g", "b", "s"], {"a": x(1, 4, 4, 8), "s": x(1, 4, 4, 8)},
       ["add", "view", "group_norm"], {"g": f32(8), "b": f32(8)}, outs=(("y", x(1, 4, 4, 8)),), groups=2,
       epsilon=1e-5),
    ms("EmbedLayerNormalization", "EmbedLayerNormalization", ["ids", "seg", "we", "pe", "se", "g", "b", "m"],
       {"ids": x(B, S, dt=I32), "seg": x(B, S, dt=I32), "m": x(B, S, dt=I32)},
       ["gather", "slice", "gather", "add", "add", "layer_norm", "reduce_sum"],
       {"we": f32(50, D), "pe": f32(16, D), "se": f32(2, D), "g": f32(D), "b": f32(D)},
       outs=(("y", x(B, S, D)), ("mi", x(B, dt=I32)))),
    ms("QEmbedLayerNormalization", "QEmbedLayerNormalization",
       ["ids", "seg", "we", "pe", "se", "g", "b", "", "s", "s", "s", "s", "s", "z", "z", "z", "z", "z"],
       {"ids": x(B, S, dt=I32), "seg": x(B, S, dt=I32)}, ["gather", "slice", "gather", "add", "add", "layer_norm", "fill"],
       {"we": np.zeros((50, D), np.uint8), "pe": np.zeros((16, D), np.uint8), "se": np.zeros((2, D), np.uint8),
        "g": np.zeros(D, np.uint8), "b": np.zeros(D, np.uint8), "s": np.float32(0.1), "z": np.uint8(0)},
       outs=(("y", x(B, S, D)), ("mi", x(B, dt=I32)))),
    ms("TransposeMatMul", "TransposeMatMul", ["a", "b"], {"a": x(4, 2), "b": x(3, 4)}, ["matmul"],
       outs=(("y", x(2, 3)),), transA=1, transB=1),
    ms("FusedMatMulActivation", "FusedMatMulActivation", ["a", "b"], {"a": x(2, 4), "b": x(4, 3)},
       ["matmul", "relu"], outs=(("y", x(2, 3)),), activation="Relu"),
    ms("FusedGemm", "FusedGemm", ["a", "b", "c"], {"a": x(2, 4)}, ["matmul", "leaky_relu"],
       {"b": f32(4, 3), "c": f32(3)}, outs=(("y", x(2, 3)),), activation="LeakyRelu"),
    ms("GemmFloat8", "GemmFloat8", ["a", "b"], {"a": x(2, 16), "b": x(8, 16)}, ["matmul", "gelu"],
       outs=(("y", x(2, 8)),), transB=1, activation="GELU"),
    ms("QGemm", "QGemm", ["a", "s", "z", "b", "s", "z"], {"a": x(2, 8, dt=U8)}, ["matmul"],
       {"b": np.zeros((8, 4), np.uint8), "s": np.float32(0.1), "z": np.uint8(0)}, outs=(("y", x(2, 4)),)),
    ms("QOrderedMatMul", "QOrderedMatMul", ["a", "s", "b", "s", "s"], {"a": x(32, 32, dt=I8), "b": x(32, 32, dt=I8)},
       ["matmul"], {"s": np.float32(0.1)}, outs=(("y", x(32, 32, dt=I8)),), order_A=1, order_B=0, order_Y=1),
    ms("MatMulIntegerToFloat", "MatMulIntegerToFloat", ["a", "b", "s", "s"], {"a": x(2, 8, dt=U8)}, ["matmul"],
       {"b": np.zeros((8, 4), np.uint8), "s": np.float32(0.1)}, outs=(("y", x(2, 4)),)),
    ms("DynamicQuantizeMatMul", "DynamicQuantizeMatMul", ["a", "b", "s"], {"a": x(2, 8)}, ["matmul"],
       {"b": np.zeros((8, 4), np.int8), "s": np.float32(0.1)}, outs=(("y", x(2, 4)),)),
    ms("GemmFastGelu", "GemmFastGelu", ["a", "w", "b"], {"a": x(B, S, D)}, ["matmul", "gelu_tanh"],
       {"w": f32(D, 16), "b": f32(16)}, outs=(("y", x(B, S, 16)),)),
    ms("MatMulNBits", "MatMulNBits", ["a", "w", "s"], {"a": x(B, S, D)}, ["quantized_matmul"],
       {"w": W4, "s": f32(16 * 2)}, outs=(("y", x(B, S, 16)),), K=D, N=16, bits=4, block_size=16),
    ms("MatMulBnb4", "MatMulBnb4", ["a", "w", "s"], {"a": x(B, S, D)}, ["quantized_matmul"],
       {"w": np.zeros(16 * D // 2, np.uint8), "s": f32(16 * D // 16)}, outs=(("y", x(B, S, 16)),), K=D, N=16,
       block_size=16, quant_type=1),
    ms("MatMulFpQ4", "MatMulFpQ4", ["a", "w", "sh"], {"a": x(B, S, D)}, ["quantized_matmul"],
       {"w": np.zeros(320, np.uint8), "sh": np.array([D, 16])}, outs=(("y", x(B, S, 16)),)),
    ms("MatMulBlockQuantizedFp4Weight", "MatMulBlockQuantizedFp4Weight", ["a", "w", "s", "s2"], {"a": x(B, S, D)},
       ["quantized_matmul"], {"w": np.zeros((16, D // 2), np.uint8), "s": np.zeros((16, 2), np.uint8),
                              "s2": np.float32(1)}, outs=(("y", x(B, S, 16)),), block_size=16),
    ms("MatMulBlockQuantizedFp8Weight", "MatMulBlockQuantizedFp8Weight", ["a", "w", "s"], {"a": x(B, S, D)},
       ["quantized_matmul"], {"w": np.zeros((16, D), np.uint8), "s": f32(16, 1)}, outs=(("y", x(B, S, 16)),),
       block_size=32),
    ms("MatMulPacked", "MatMulPacked", ["a", "w"], {"a": x(B, S, D)}, ["quantized_matmul"],
       {"w": np.zeros((16, 24), np.uint8)}, outs=(("y", x(B, S, 16)),), K=D, N=16),
    ms("MatMulNBitsMlp", "MatMulNBitsMlp", ["a", "s", "ns", "gw", "gs", "", "uw", "us"],
       {"a": x(B, S, D), "s": x(B, S, D)}, ["add", "rms_norm", "quantized_matmul", "quantized_matmul", "silu", "mul"],
       {"ns": f32(D), "gw": W4, "gs": f32(32), "uw": W4, "us": f32(32)},
       outs=(("y", x(B, S, 16)), ("sum", x(B, S, D))), K=D, N=16, bits=4, block_size=16, activation="silu"),
    ms("MatMulNBitsQkv", "MatMulNBitsQkv", ["a", "", "ns", "w", "s", "", "w", "s", "", "w", "s"], {"a": x(B, S, D)},
       ["rms_norm", "quantized_matmul", "quantized_matmul", "quantized_matmul"],
       {"ns": f32(D), "w": W4, "s": f32(32)}, outs=(("q", x(B, S, 16)), ("k", x(B, S, 16)), ("v", x(B, S, 16))),
       K=D, Nq=16, Nkv=16, bits=4, block_size=16),
    ms("MatMulNBitsQLoRA", "MatMulNBitsQLoRA", ["a", "w", "s", "la", "las", "lb", "lbs"], {"a": x(B, S, D)},
       ["quantized_matmul", "quantized_matmul", "quantized_matmul", "add"],
       {"w": W4, "s": f32(32), "la": np.zeros((4, 2, 8), np.uint8), "las": f32(8), "lb": np.zeros((16, 1, 2), np.uint8),
        "lbs": f32(16)}, outs=(("y", x(B, S, 16)),), K=D, N=16, bits=4, block_size=16, lora_bits=4,
       lora_block_size=4),
    ms("RouterGateUpProj", "RouterGateUpProj", ["a", "w"], {"a": x(B, S, D)},
       ["matmul", "view", "view", "quick_gelu", "mul", "slice"], {"w": f32(D, 8 + 2 * 16)},
       outs=(("r", x(B, S, 8)), ("act", x(B, S, 16))), router_size=8, activation="swiglu"),
    ms("CDist", "CDist", ["a", "b"], {"a": x(4, 8), "b": x(5, 8)}, ["einsum", "sqrt"], outs=(("y", x(4, 5)),),
       metric="euclidean"),
    ms("FusedConv", "FusedConv", ["a", "w", "b", "z"], {"a": x(1, 3, 8, 8), "z": x(1, 4, 8, 8)},
       ["conv", "add", "relu"], {"w": f32(4, 3, 3, 3), "b": f32(4)}, outs=(("y", x(1, 4, 8, 8)),),
       activation="Relu", pads=[1, 1, 1, 1]),
    ms("QLinearConv", "QLinearConv", ["a", "s", "z", "w", "s", "z", "s", "z"], {"a": x(1, 3, 8, 8, dt=U8)}, ["conv"],
       {"w": np.zeros((4, 3, 3, 3), np.uint8), "s": np.float32(0.1), "z": np.uint8(0)},
       outs=(("y", x(1, 4, 6, 6, dt=U8)),)),
    ms("ConvTransposeWithDynamicPads", "ConvTransposeWithDynamicPads", ["a", "w"], {"a": x(1, 4, 4, 4)}, ["conv"],
       {"w": f32(4, 2, 2, 2)}, outs=(("y", x(1, 2, 8, 8)),), strides=[2, 2]),
    ms("NhwcConv", "NhwcConv", ["a", "w"], {"a": x(1, 8, 8, 3)}, ["view", "view", "conv", "view"],
       {"w": f32(4, 3, 3, 3)}, outs=(("y", x(1, 6, 6, 4)),)),
    ms("NhwcFusedConv", "NhwcFusedConv", ["a", "w", "b", "z"], {"a": x(1, 8, 8, 3), "z": x(1, 4, 6, 6)},
       ["view", "view", "conv", "add", "relu", "view"], {"w": f32(4, 3, 3, 3), "b": f32(4)},
       outs=(("y", x(1, 6, 6, 4)),), activation="Relu"),
    ms("RotaryEmbedding", "RotaryEmbedding", ["a", "p", "c", "s"], {"a": x(B, S, D), "p": x(B, S, dt=I64)}, ["rotary"],
       {"c": f32(16, HD // 2), "s": f32(16, HD // 2)}, num_heads=N),
    ms("MRotaryEmbedding", "MRotaryEmbedding", ["a", "p", "c", "s"], {"a": x(B, S, D), "p": x(3, B, S, dt=I64)},
       ["rotary"], {"c": f32(16, HD // 2), "s": f32(16, HD // 2)}, num_heads=N, mrope_section=[2, 1, 1]),
    ms("GemmaRotaryEmbedding", "GemmaRotaryEmbedding", ["e", "q", "qr", "k", "kr"],
       {"e": x(B, 1, S, HD), "q": x(B, N, S, HD), "qr": x(B, N, S, HD), "k": x(B, N, S, HD), "kr": x(B, N, S, HD)},
       ["cos", "sin", "mul", "mul", "add", "mul", "mul", "add"],
       outs=(("o1", x(B, N, S, HD)), ("o2", x(B, N, S, HD)))),
    ms("Attention", "Attention", ["a", "w", "b"], {"a": x(B, S, D)}, ["matmul", "view", "view", "view", "attention"],
       {"w": f32(D, 3 * D), "b": f32(3 * D)}, num_heads=N, unidirectional=1),
    ms("Attention-past", "Attention", ["a", "w", "b", "", "past"], {"a": x(B, 1, D), "past": x(2, B, N, S, HD)},
       ["matmul", "view", "view", "view", "concat", "view", "view", "attention"], {"w": f32(D, 3 * D), "b": f32(3 * D)},
       outs=(("y", x(B, 1, D)), ("present", x(2, B, N, S + 1, HD))), num_heads=N, unidirectional=1),
    ms("QAttention", "QAttention", ["a", "w", "b", "s", "s"], {"a": x(B, S, D, dt=U8)},
       ["matmul", "view", "view", "view", "attention"],
       {"w": np.zeros((D, 3 * D), np.uint8), "b": f32(3 * D), "s": np.float32(0.1)}, num_heads=N),
    ms("DecoderMaskedSelfAttention", "DecoderMaskedSelfAttention", ["a", "w", "b", "", "past"],
       {"a": x(B, 1, D), "past": x(2, B, N, S, HD)}, ["matmul", "view", "view", "view", "concat", "view", "view",
                                                      "attention"],
       {"w": f32(D, 3 * D), "b": f32(3 * D)}, outs=(("y", x(B, 1, D)), ("present", x(2, B, N, S + 1, HD))),
       num_heads=N),
    ms("MultiHeadAttention", "MultiHeadAttention", ["q", "k", "v", "b"], {"q": x(B, S, D), "k": x(B, S, D),
       "v": x(B, S, D)}, ["view", "add", "view", "add", "view", "add", "view", "view", "view", "attention"],
       {"b": f32(3 * D)}, num_heads=N),
    ms("MultiHeadAttention-past", "MultiHeadAttention", ["q", "k", "v", "", "", "", "pk", "pv"],
       {"q": x(B, 1, D), "k": x(B, 1, D), "v": x(B, 1, D), "pk": x(B, N, S, HD), "pv": x(B, N, S, HD)},
       ["view", "view", "view", "concat", "concat", "attention"],
       outs=(("y", x(B, 1, D)), ("pk_out", x(B, N, S + 1, HD)), ("pv_out", x(B, N, S + 1, HD))), num_heads=N),
    ms("MultiHeadAttention-packed-qkv", "MultiHeadAttention", ["q"], {"q": x(B, S, N, 3, HD)},
       ["view", "view", "view", "attention"], num_heads=N),
    ms("MultiHeadAttention-bnsh-kv", "MultiHeadAttention", ["q", "k", "v"],
       {"q": x(B, S, D), "k": x(B, N, 12, HD), "v": x(B, N, 12, HD)}, ["view", "attention"], num_heads=N),
    ms("DecoderMaskedMultiHeadAttention", "DecoderMaskedMultiHeadAttention", ["q", "k", "v", "", "", "pk", "pv"],
       {"q": x(B, 1, D), "k": x(B, 1, D), "v": x(B, 1, D), "pk": x(B, N, S, HD), "pv": x(B, N, S, HD)},
       ["view", "view", "view", "concat", "concat", "attention"],
       outs=(("y", x(B, 1, D)), ("pk_out", x(B, N, S + 1, HD)), ("pv_out", x(B, N, S + 1, HD))), num_heads=N),
    ms("GroupQueryAttention", "GroupQueryAttention", ["q", "k", "v", "pk", "pv", "sl", "tl"],
       {"q": x(1, S, GD), "k": x(1, S, NKV * GH), "v": x(1, S, NKV * GH), "pk": x(1, NKV, 4, GH),
        "pv": x(1, NKV, 4, GH), "sl": x(1, dt=I32)}, ["view", "view", "view", "concat", "concat", "attention"],
       {"tl": np.int32(S + 4)}, outs=(("y", x(1, S, GD)), ("pk_out", x(1, NKV, S + 4, GH)),
                                      ("pv_out", x(1, NKV, S + 4, GH))), num_heads=N, kv_num_heads=NKV),
    ms("GroupQueryAttention-rotary-shared", "GroupQueryAttention", ["q", "", "", "pk", "pv", "sl", "tl", "c", "s"],
       {"q": x(B, 1, (N + 2 * NKV) * GH), "pk": x(B, NKV, 16, GH), "pv": x(B, NKV, 16, GH), "sl": x(B, dt=I32)},
       ["view", "view", "view", "view", "view", "rotary", "rotary", "view", "view", "attention"],
       {"tl": np.int32(9), "c": f32(16, GH // 2), "s": f32(16, GH // 2)},
       outs=(("y", x(B, 1, GD)), ("pk_out", x(B, NKV, 16, GH)), ("pv_out", x(B, NKV, 16, GH))), num_heads=N,
       kv_num_heads=NKV, do_rotary=1),
    ms("Rfft", "Rfft", ["a"], {"a": x(2, 16)}, ["fft"], outs=(("y", x(2, 9, 2)),), signal_ndim=1),
    ms("Irfft", "Irfft", ["a"], {"a": x(2, 9, 2)}, ["fft"], outs=(("y", x(2, 16)),), signal_ndim=1),
    ms("GridSample", "GridSample", ["a", "g"], {"a": x(1, 3, 8, 8), "g": x(1, 4, 4, 2)}, ["interpolate"],
       outs=(("y", x(1, 3, 4, 4)),)),
    ms("CropAndResize", "CropAndResize", ["a", "r", "b", "c"], {"a": x(1, 3, 8, 8), "r": x(2, 4), "b": x(2, dt=I32)},
       ["interpolate"], {"c": np.array([4, 4], np.int32)}, outs=(("y", x(2, 3, 4, 4)),)),
    ms("Unique", "Unique", ["a"], {"a": x(6)}, ["sort"], outs=(("y", x(4)), ("i", x(4, dt=I64)), ("c", x(4, dt=I64)))),
    ms("SampleOp", "SampleOp", ["a"], {"a": x(2, 3)}, ["copy"], outs=(("y", x(2, 3)),)),
    ms("DynamicQuantizeLSTM", "DynamicQuantizeLSTM", ["X", "W", "R", "", "", "", "", "", "ws", "wz", "rs", "rz"],
       {"X": x(5, 2, 6)}, ["view", "view", "rnn"], {"W": np.zeros((1, 6, 16), np.int8), "R": np.zeros((1, 4, 16), np.int8),
                                     "ws": f32(1), "wz": np.zeros(1, np.int8), "rs": f32(1), "rz": np.zeros(1, np.int8)},
       outs=(("y", x(5, 1, 2, 4)),), hidden_size=4),
]

CASES = TAIL + CONTRIB
TESTED = {(p.values[0]["domain"], p.values[0]["op_type"]) for p in CASES}


def _capture(spec):
    graph = capture_onnx(build(spec))
    return graph, count(graph)


@pytest.mark.parametrize("spec, ops", CASES)
def test_op_is_captured_and_fully_costed(spec, ops):
    graph, counts = _capture(spec)
    assert [str(n.op) for n in graph.nodes] == ops
    unknown = [(str(c.node.op), c.reason) for c in counts if c.cost is None]
    assert unknown == []


def _totals(counts):
    return {k: sum(getattr(c.cost, k) for c in counts) for k in ("flops", "matrix_flops", "transcendentals",
                                                                  "bytes_read", "bytes_written")}


def _by_id(id):
    return next(p.values[0] for p in CASES if p.id == id)


F32 = 4
SCORES = B * N * S * S  # attention score entries, batch B, N heads, S x S
FORMULAS = {
    # qkv projection 2*B*S*D*3D + its bias; causal attention: half of 2 * scores * (E + Ev)
    "Attention": {"matrix_flops": 2 * B * S * D * 3 * D + 2 * SCORES * 2 * HD // 2,
                  "flops": 2 * B * S * D * 3 * D + B * S * 3 * D + 2 * SCORES * 2 * HD // 2 + (5 * SCORES + 1) // 2},
    # decode step over the past S tokens and the new one: scores B*N*1*(S+1), not causal-halved (unidirectional
    # over a one-row query still counts half, as the rule's causal convention)
    "MultiHeadAttention-past": {"matrix_flops": 2 * B * N * 1 * (S + 1) * 2 * HD},
    # queries of N heads against S + 4 cached keys of NKV heads (grouped: the count uses the query heads), causal
    "GroupQueryAttention": {"matrix_flops": 2 * 1 * N * S * (S + 4) * 2 * GH // 2},
    # skip add, bias add, layer norm with weight and bias (7 per element, 3 per row)
    "SkipLayerNormalization": {"flops": 2 * B * S * D + 7 * B * S * D + 3 * B * S, "matrix_flops": 0},
    # 2MKN on the matrix unit, 2 per weight to dequantize; the 4-bit weights read at their stored bytes
    "MatMulNBits": {"matrix_flops": 2 * B * S * 16 * D, "flops": 2 * B * S * 16 * D + 2 * D * 16,
                    "bytes_read": F32 * B * S * D + W4.nbytes + F32 * 32, "bytes_written": F32 * B * S * 16},
    # word, position (first S rows) and segment rows, two adds, layer norm
    "EmbedLayerNormalization": {"matrix_flops": 0, "flops": 2 * B * S * D + 7 * B * S * D + 3 * B * S + B * S},
    # LSTM: projections 2 * steps * batch * (I + H) * 4H, and the cell's 10 flops and 5 transcendentals per hidden
    "LSTM": {"matrix_flops": 2 * 5 * 2 * (6 + 4) * 16, "transcendentals": 5 * 2 * 5 * 4},
    # one real transform per frame: 2.5 N log2 N, N = 16, 7 frames; the window multiply per framed element
    "STFT": {"flops": 7 * 16 + round(7 * 5 * 16 * 4 / 2)},
}


@pytest.mark.parametrize("id", sorted(FORMULAS))
def test_totals_follow_the_formulas(id):
    totals = _totals(_capture(_by_id(id))[1])
    assert {k: totals[k] for k in FORMULAS[id]} == FORMULAS[id]


ORT_CPU_RUNS = (
    "QuickGelu", "FastGelu-bias", "BiasGelu", "SkipLayerNormalization", "SkipSimplifiedLayerNormalization",
    "EmbedLayerNormalization", "QEmbedLayerNormalization", "MatMulNBits", "MatMulBnb4", "Attention", "Attention-past",
    "QAttention", "MultiHeadAttention", "MultiHeadAttention-past", "MultiHeadAttention-bnsh-kv", "GroupQueryAttention",
    "GroupQueryAttention-rotary-shared", "RotaryEmbedding", "MRotaryEmbedding", "FusedConv", "QLinearConv", "QGemm",
    "MatMulIntegerToFloat", "DynamicQuantizeMatMul", "TransposeMatMul", "Inverse", "GridSample", "CropAndResize",
    "DynamicQuantizeLSTM", "GatedRMSNorm", "BranchwiseRMSNorm", "LinearAttentionGate", "ScaledSiLU", "GatedAdd", "CDist",
)
_NP = {TensorProto.FLOAT: np.float32, I64: np.int64, I32: np.int32, U8: np.uint8, I8: np.int8, BOOL: np.bool_,
       TensorProto.INT16: np.int16}


@pytest.mark.parametrize("id", ORT_CPU_RUNS)
def test_onnxruntime_runs_the_contrib_graph_with_the_captured_shapes(id):
    ort = pytest.importorskip("onnxruntime")
    spec = _by_id(id)
    rng = np.random.default_rng(0)
    feeds = {}
    for name, (dt, shape) in spec["feeds"].items():
        if dt in (I64, I32):  # ids, positions and lengths: small valid values
            feeds[name] = np.full(shape, 1 if name in ("sl",) else 0, _NP[dt])
        else:
            feeds[name] = rng.random(shape).astype(_NP[dt])
    if id == "GroupQueryAttention-rotary-shared":
        feeds["sl"][:] = 8  # 8 cached tokens + the new one = total_sequence_length 9
    elif id == "GroupQueryAttention":
        feeds["sl"][:] = S + 4 - 1
    session = ort.InferenceSession(build(spec).SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, feeds)
    graph, counts = _capture(spec)
    names = [o.name for o in session.get_outputs()]
    assert {n: tuple(a.shape) for n, a in zip(names, got)} == {n: graph.values[n].type.shape for n in names}
    assert all(c.cost is not None for c in counts)
    assert all(np.isfinite(a).all() for a in got if a.dtype.kind == "f")


def test_contrib_shapes_come_from_onnxruntime_when_the_file_has_none():
    """An optimized BERT-style block without value_info: onnx cannot infer the contrib ops, onnxruntime's symbolic
    shape inference does; every node is costed."""
    nodes = [helper.make_node("Attention", ["x", "w", "b"], ["a"], name="att", domain=MS, num_heads=N),
             helper.make_node("SkipLayerNormalization", ["a", "x", "g", "bb"], ["y", "", "", "s"], name="ln", domain=MS),
             helper.make_node("MatMulNBits", ["y", "q", "sc"], ["z"], name="mm", domain=MS, K=D, N=16, bits=4,
                              block_size=16),
             helper.make_node("Relu", ["z"], ["o"], name="relu")]
    consts = {"w": f32(D, 3 * D), "b": f32(3 * D), "g": f32(D), "bb": f32(D), "q": W4, "sc": f32(32)}
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", F, [B, S, D])],
                              [onnx.ValueInfoProto(name="o")], [numpy_helper.from_array(v, k) for k, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)])
    g = capture_onnx(model)
    assert g.values["o"].type.shape == (B, S, 16) and g.values["s"].type.shape == (B, S, D)
    assert all(c.cost is not None for c in count(g))
