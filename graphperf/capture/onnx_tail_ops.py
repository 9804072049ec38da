"""ONNX default-domain ops beyond the core table in `onnx_ops`: activations, generators, losses, recurrent
layers, transforms, sampling and the other less common ops, each mapped onto canonical ops.

Registered into the `onnx_mapping` registry on import (`onnx_ops` imports this module). Decisions:
- Ops whose inputs only carry a shape (RandomNormalLike, EyeLike, the window generators) keep no input:
  the generated output is written, nothing is read.
- Losses over [N, C, d1, ...] scores are counted as nll_loss on [N * d1 * ..., C] rows (free views);
  SoftmaxCrossEntropyLoss is a log_softmax over the classes, then nll_loss.
- Mean is the chain of adds of Sum and one divide per element; DynamicQuantizeLinear is a max and a min
  over x (giving the scale and the zero point) and one quantize_linear.
- Unique is a sort (of the flattened input without an axis); MaxUnpool zero-fills its output and scatters;
  CenterCropPad is a slice when it only crops, a pad otherwise; Col2Im adds each input element into the
  image once (reduce_sum's one op per input element).
- STFT is a free view of the frames, the window multiply and one fft per frame; DFT is one fft per signal.
- AffineGrid builds the base grid (fill) and contracts it with theta (einsum), as onnxruntime computes it;
  DeformConv samples its input at the offsets (interpolate, into the columns a convolution with stride =
  kernel reads) and convolves them; RoiAlign with sampling_ratio=0 (adaptive: the samples per bin follow
  each ROI's size, a run-time value) stays unknown.
"""

from __future__ import annotations

import math

import numpy as np

from ..ir import TensorType
from .onnx_mapping import (KeepUnknown, MapResult, OnnxNode, Part, UnmappableNode, global_pool_mapper, normalize_axis,
                           pool_mapper, reduce_mapper, register, register_simple, sample_mode, trim_inputs)

__all__: list[str] = []

register_simple({
    "Acos": "acos", "Asin": "asin", "Atan": "atan", "Acosh": "acosh", "Asinh": "asinh", "Atanh": "atanh",
    "Cosh": "cosh", "Sinh": "sinh", "Tan": "tan", "Elu": "elu", "Selu": "selu", "Celu": "celu",
    "HardSigmoid": "hardsigmoid", "HardSwish": "hardswish", "Softplus": "softplus", "Softsign": "softsign",
    "Mish": "mish", "ThresholdedRelu": "thresholded_relu", "Shrink": "shrink", "BitwiseXor": "bitwise_xor",
    "BitShift": "bitwise_shift", "Bernoulli": "bernoulli", "QuantizeLinear": "quantize_linear",
    "DequantizeLinear": "dequantize_linear", "NonZero": "nonzero", "Det": "det", "Multinomial": "multinomial",
})
register_simple({  # generators: the inputs (if any) give only a shape or a size
    "RandomNormal": "random_normal", "RandomUniform": "random_uniform", "RandomNormalLike": "random_normal",
    "RandomUniformLike": "random_uniform", "EyeLike": "fill", "HannWindow": "hann_window",
    "HammingWindow": "hamming_window", "BlackmanWindow": "blackman_window", "MelWeightMatrix": "mel_weight_matrix",
}, keep=())
register_simple({"ReverseSequence": "copy", "Col2Im": "reduce_sum"}, keep=(0,))
register_simple({"Compress": "gather"}, keep=(0, 1))  # reads the condition and the kept slices
register("OneHot", ("one_hot",))(lambda n: n.part("one_hot", (0, 2)))  # (indices, depth, values)
register("LRN", ("lrn",))(lambda n: n.part("lrn", size=int(n.attrs["size"])))
register("ReduceLogSumExp", ("reduce_logsumexp",))(reduce_mapper("reduce_logsumexp"))
register("GlobalLpPool", ("reduce_sum",))(global_pool_mapper("reduce_sum"))  # as ReduceL2: |x|^p not counted
register("LpPool", ("avg_pool",))(pool_mapper("avg_pool"))


@register("Hardmax", ("argmax",))
def _hardmax(n: OnnxNode) -> Part:  # one compare per element along the axis, then a one-hot write
    x = n.in_type(0)
    axis = normalize_axis(int(n.attrs.get("axis", -1 if n.opset >= 13 else 1)), x and x.rank)
    return n.part("argmax", (0,), axes=(axis,), keepdims=True)


def _norm_of(n: OnnxNode, axes) -> int:
    x = n.in_type(0)
    if x is None:
        raise UnmappableNode("the input's shape is unknown")
    return math.prod(x.shape[normalize_axis(int(a), x.rank)] for a in axes)


# LpNormalization: x / ||x||_p along one axis: per element |x| or x^2, a sum and a divide, one root per
# row: the rms_norm count (the p = 1 form skips the root; counted alike)
register("LpNormalization", ("rms_norm",))(
    lambda n: n.part("rms_norm", (0,), norm_numel=_norm_of(n, (n.attrs.get("axis", -1),))))
register("MeanVarianceNormalization", ("layer_norm",))(
    lambda n: n.part("layer_norm", (0,), norm_numel=_norm_of(n, n.attrs.get("axes", (0, 2, 3)))))


@register("Mean", ("add", "div"))
def _mean(n: OnnxNode) -> MapResult:
    ins = [i for i in n.inputs if i is not None]
    parts, acc = [], ins[0]
    for k, nxt in enumerate(ins[1:], 1):
        a, b = n.type(acc), n.type(nxt)
        shape = tuple(np.broadcast_shapes(a.shape, b.shape)) if a and b else None
        out_type = n.out_type(0)
        tmp = n.temp(f"add{k}", None if shape is None or out_type is None else TensorType(shape, out_type.dtype))
        parts.append(Part("add", (acc, nxt), (tmp,), suffix=f"add{k}"))
        acc = tmp
    return [*parts, Part("div", (acc,), n.outputs)]  # one divide per element (x / 1 for a single input)


@register("DynamicQuantizeLinear", ("reduce_max", "reduce_min", "quantize_linear"))
def _dynamic_quantize(n: OnnxNode) -> list[Part]:
    y, scale, zero = (n.outputs + ("", "", ""))[:3]
    x = n.input(0)
    parts = [Part("quantize_linear", (x,), (y,))]
    if scale:
        parts.append(Part("reduce_max", (x,), (scale,), {"axes": None, "keepdims": False}, suffix="max"))
    if zero:
        parts.append(Part("reduce_min", (x,), (zero,), {"axes": None, "keepdims": False}, suffix="min"))
    return parts


# --- losses ---------------------------------------------------------------------------------------

def _rows(n: OnnxNode, scores: str, target: str, tag: str) -> tuple[list[Part], str, str]:
    """Views of scores [N, C, d...] as [N*d..., C] and of target [N, d...] as [N*d...] (free)."""
    x, t = n.type(scores), n.type(target)
    if x is None or t is None or x.rank <= 2:
        return [], scores, target
    c = x.shape[1]
    rows = x.numel // c if c else 0
    xs = n.temp(f"{tag}_rows", TensorType((rows, c), x.dtype))
    ts = n.temp(f"{tag}_targets", TensorType((rows,), t.dtype))
    return [Part("view", (scores,), (xs,), suffix=f"{tag}_rows"),
            Part("view", (target,), (ts,), suffix=f"{tag}_targets")], xs, ts


@register("NegativeLogLikelihoodLoss", ("nll_loss", "view"))
def _nll(n: OnnxNode) -> MapResult:
    views, x, t = _rows(n, n.input(0), n.input(1), "nll")
    reduction = str(n.attrs.get("reduction", "mean"))
    return [*views, Part("nll_loss", trim_inputs((x, t, n.input(2))), n.outputs, {"reduction": reduction})]


@register("SoftmaxCrossEntropyLoss", ("softmax", "nll_loss", "view"))
def _softmax_cross_entropy(n: OnnxNode) -> MapResult:
    outs = n.outputs + ("",) * (2 - len(n.outputs))
    log_prob = outs[1] or n.temp("log_prob", n.in_type(0))
    parts = [Part("softmax", (n.input(0),), (log_prob,), {"axis": 1, "log": True}, suffix="log_softmax")]
    views, x, t = _rows(n, log_prob, n.input(1), "nll")
    reduction = str(n.attrs.get("reduction", "mean"))
    return [*parts, *views, Part("nll_loss", trim_inputs((x, t, n.input(2))), (outs[0],), {"reduction": reduction})]


# --- search, scatter, crop ------------------------------------------------------------------------

@register("Unique", ("sort", "view"))
def _unique(n: OnnxNode) -> MapResult:
    x = n.in_type(0)
    if "axis" in n.attrs:
        return n.part("sort", (0,), axis=normalize_axis(int(n.attrs["axis"]), x and x.rank))
    if x is None:
        raise UnmappableNode("the input's shape is unknown")
    flat = n.temp("flat", TensorType((x.numel,), x.dtype))
    return [Part("view", (n.input(0),), (flat,), suffix="flat"), Part("sort", (flat,), n.outputs, {"axis": 0})]


@register("MaxUnpool", ("fill", "scatter"))
def _max_unpool(n: OnnxNode) -> list[Part]:
    zeros = n.temp("zeros", n.out_type(0))
    return [Part("fill", (), (zeros,), suffix="zeros"), Part("scatter", (zeros, n.input(1), n.input(0)), n.outputs,
                                                          {"reduce": "none"})]


@register("CenterCropPad", ("slice", "pad"))
def _center_crop_pad(n: OnnxNode) -> Part:
    x, out = n.in_type(0), n.out_type(0)
    crops = x is not None and out is not None and all(o <= i for i, o in zip(x.shape, out.shape))
    return n.part("slice" if crops else "pad", (0,))


# --- recurrent layers ------------------------------------------------------------------------------

def _rnn(cell: str, keep: tuple[int, ...]):
    return lambda n: n.part("rnn", keep, cell=cell, layout=int(n.attrs.get("layout", 0)))


# canonical (x, w, r, bias, initial_h, initial_c, peepholes); ONNX (X, W, R, B, sequence_lens, initial_h, ...)
register("LSTM", ("rnn",))(_rnn("lstm", (0, 1, 2, 3, 5, 6, 7)))
register("GRU", ("rnn",))(_rnn("gru", (0, 1, 2, 3, 5)))
register("RNN", ("rnn",))(_rnn("rnn", (0, 1, 2, 3, 5)))


# --- transforms ----------------------------------------------------------------------------------

@register("DFT", ("fft",))
def _dft(n: OnnxNode) -> Part:
    x = n.in_type(0)
    if x is None:
        raise UnmappableNode("the input's shape is unknown")
    if n.opset >= 20:
        axis_value = n.const_input(2)
        axis = -2 if n.input(2) is None else (None if axis_value is None else int(axis_value.reshape(-1)[0]))
        if axis is None:
            raise KeepUnknown("axis is not a constant")
    else:
        axis = int(n.attrs.get("axis", 1))
    axis = normalize_axis(axis, x.rank)
    length_value = n.const_input(1)
    length = x.shape[axis] if n.input(1) is None or length_value is None else int(length_value.reshape(-1)[0])
    if n.input(1) is not None and length_value is None:
        out = n.out_type(0)
        if out is None:
            raise KeepUnknown("dft_length is not a constant")
        length = out.shape[axis] if not n.attrs.get("onesided") else 2 * (out.shape[axis] - 1)
    channels = x.shape[-1]
    transforms = x.numel // (x.shape[axis] * channels) if x.shape[axis] * channels else 0
    return n.part("fft", (0,), length=length, transforms=transforms, real=channels == 1)


@register("STFT", ("view", "mul", "fft"))
def _stft(n: OnnxNode) -> list[Part]:
    """(signal [B, L, c], frame_step, window [W], frame_length) -> [B, frames, bins, 2]."""
    signal, out = n.in_type(0), n.out_type(0)
    window = n.in_type(2)
    length_value = n.const_input(3)
    if signal is None or out is None:
        raise UnmappableNode("the signal's or the output's shape is unknown")
    length = int(length_value.reshape(-1)[0]) if length_value is not None else window.shape[0] if window else None
    if length is None:
        raise KeepUnknown("frame_length is not a constant and there is no window")
    batch, frames, channels = signal.shape[0], out.shape[1], signal.shape[-1]
    framed = n.temp("frames", TensorType((batch, frames, length, channels), signal.dtype))
    parts = [Part("view", (n.input(0),), (framed,), suffix="frames")]
    if window is not None:
        column = n.temp("window", TensorType((length, 1), window.dtype))
        windowed = n.temp("windowed", n.type(framed))
        parts += [Part("view", (n.input(2),), (column,), suffix="window"),
                  Part("mul", (framed, column), (windowed,), suffix="windowed")]
        framed = windowed
    parts.append(Part("fft", (framed,), n.outputs, {"length": length, "transforms": batch * frames,
                                                    "real": channels == 1}))
    return parts


# --- sampling ----------------------------------------------------------------------------------------

@register("GridSample", ("interpolate",))
def _grid_sample(n: OnnxNode) -> Part:
    x = n.in_type(0)
    if x is None:
        raise UnmappableNode("the input's shape is unknown")
    return n.part("interpolate", (0, 1), mode=sample_mode(n, "linear"), spatial=x.rank - 2)


@register("RoiAlign", ("interpolate",))
def _roi_align(n: OnnxNode) -> Part:
    ratio = int(n.attrs.get("sampling_ratio", 0))
    if ratio <= 0:
        raise KeepUnknown("sampling_ratio=0: the samples per bin follow each ROI's size, a run-time value")
    return n.part("interpolate", (0, 1), mode="linear", spatial=2, samples=ratio * ratio)


@register("AffineGrid", ("fill", "einsum"))
def _affine_grid(n: OnnxNode) -> list[Part]:
    """theta [N, 2, 3] (or [N, 3, 4]) x the base grid [H, W, 3] ([D, H, W, 4]) -> [N, H, W, 2]."""
    theta, out = n.in_type(0), n.out_type(0)
    if theta is None or out is None:
        raise UnmappableNode("theta's or the output's shape is unknown")
    spatial = out.shape[1:-1]
    base = n.temp("base_grid", TensorType((*spatial, theta.shape[-1]), theta.dtype))
    dims = "dhw"[-len(spatial):]
    equation = f"nij,{dims}j->n{dims}i"
    return [Part("fill", (), (base,), suffix="base_grid"), Part("einsum", (n.input(0), base), n.outputs,
                                                               {"equation": equation})]


@register("DeformConv", ("interpolate", "conv"))
def _deform_conv(n: OnnxNode) -> list[Part]:
    """(X, W, offset, B, mask): the input sampled at every kernel tap's offset position (the columns,
    laid out [N, C, oh*kh, ow*kw]), then a convolution with stride = kernel over them."""
    x, w, out = n.in_type(0), n.in_type(1), n.out_type(0)
    if x is None or w is None or out is None or x.rank != 4:
        raise UnmappableNode("a 2-D deformable convolution needs typed X, W and output")
    kh, kw = w.shape[2:]
    columns = n.temp("columns", TensorType((x.shape[0], x.shape[1], out.shape[2] * kh, out.shape[3] * kw), x.dtype))
    sample = Part("interpolate", trim_inputs((n.input(0), n.input(2), n.input(4))), (columns,),
                  {"mode": "linear", "spatial": 2}, suffix="sample")
    return [sample, Part("conv", trim_inputs((columns, n.input(1), n.input(3))), n.outputs, {"transposed": False})]


# --- experimental ops onnxruntime still registers in the default domain (removed from ONNX in opset 10) ---

register_simple({"Scale": "mul", "ParametricSoftplus": "softplus", "ScaledTanh": "tanh", "Crop": "slice",
         "DynamicSlice": "slice", "MemcpyFromHost": "copy", "MemcpyToHost": "copy"}, keep=(0,))
register_simple({"GivenTensorFill": "fill"}, keep=())


@register(("Affine", "ImageScaler"), ("mul", "add"))
def _scale_shift(n: OnnxNode) -> list[Part]:  # alpha * x + beta (per channel for ImageScaler)
    scaled = n.temp("scaled", n.out_type(0))
    return [Part("mul", (n.input(0),), (scaled,), suffix="scale"), Part("add", (scaled,), n.outputs)]
