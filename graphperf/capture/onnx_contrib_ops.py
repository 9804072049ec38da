"""The ``com.microsoft`` contrib ops (onnxruntime's transformer optimizer and quantization tools) mapped onto
canonical ops, but for attention and rotary embedding (`onnx_contrib_attention`).

Registered into the `onnx_mapping` registry on import (`onnx_ops` imports this module). Decisions:
- A fused contrib op is counted as its unfused canonical parts (the README's bytes convention: what unfused
  kernels move), so a graph optimized by onnxruntime counts the same work as the graph it came from; the
  what-if fusion passes say what fusing saves. SkipLayerNormalization is add (+ bias add) then layer_norm;
  BiasGelu is add then gelu; FusedConv is conv (+ add) then the activation; GemmFastGelu is matmul then
  gelu_tanh; EmbedLayerNormalization is the gathers, the adds and layer_norm.
- The attention ops and rotary embeddings are mapped in `onnx_contrib_attention`.
- Weight-only quantized matmuls (MatMulNBits and its relatives) are ``quantized_matmul``: the stored weights
  read at their width, the dequantization counted per weight. Integer and float8 GEMMs (QGemm,
  MatMulIntegerToFloat, GemmFloat8, ...) are ``matmul`` on their operands, as QLinearMatMul; the QLinear
  elementwise ops map to their float op (requantization not counted, as for QLinearMatMul).
- NHWC ops (NhwcConv, GroupNorm with channels_last) run the NCHW rules on free views.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from ..ir import TensorType
from .onnx_mapping import (MS, KeepUnknown, MapResult, OnnxNode, Part, norm_numel, normalize_axis, pool_mapper,
                           register_contrib, register_simple, sample_mode, temp_value, trim_inputs, typed_value,
                           view_part)

__all__: list[str] = []

_ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid", "leakyrelu": "leaky_relu", "clip": "clamp",
                "hardsigmoid": "hardsigmoid", "gelu": "gelu", "fastgelu": "gelu_tanh", "silu": "silu",
                "swish": "silu", "quickgelu": "quick_gelu"}


def _activation(name: Any) -> Optional[str]:
    """The canonical op of an activation attribute ("Relu", "RELU", "silu", ...); None for none."""
    key = str(name or "").lower().replace("_", "")
    if key in ("", "none", "identity"):
        return None
    op = _ACTIVATIONS.get(key)
    if op is None:
        raise KeepUnknown(f"activation {name!r}")
    return op


def _chain(n: OnnxNode, first: Part, *steps: tuple[str, tuple[Optional[str], ...]]) -> list[Part]:
    """`first` (written to a temporary), then each (op, extra inputs) on the previous result; the last step
    writes the node's outputs. Steps with op None are skipped."""
    steps = tuple(s for s in steps if s[0] is not None)
    if not steps:
        return [Part(first.op, first.inputs, n.outputs, first.attrs)]
    out_type = n.out_type(0)
    parts, prev = [], None
    for i, (op, extra) in enumerate((("", ()),) + steps):
        last = i == len(steps)
        outs = n.outputs if last else (n.temp(f"{(first.op if i == 0 else op)}{i}", out_type),)
        if i == 0:
            part = Part(first.op, first.inputs, outs, first.attrs, suffix=first.op)
        else:
            part = Part(op, trim_inputs((prev, *extra)), outs, {}, suffix="" if last else f"{op}{i}")
        parts.append(part)
        prev = outs[0]
    return parts


# --- elementwise and bias fusions ------------------------------------------------------------------------

register_simple({"Gelu": "gelu", "QuickGelu": "quick_gelu", "ComplexMul": "complex_mul", "ComplexMulConj": "complex_mul",
         "Inverse": "inverse", "IsAllFinite": "reduce_all", "Trilu": "masked_fill", "ExpandDims": "view",
         "UnfoldTensor": "copy", "Pad": "pad", "QuantizeWithOrder": "quantize_linear",
         "DequantizeWithOrder": "dequantize_linear", "DequantizeBFP": "dequantize_linear",
         "QLinearSigmoid": "sigmoid", "QLinearLeakyRelu": "leaky_relu", "QOrderedGelu": "gelu",
         "ReduceSumInteger": "reduce_sum"}, keep=(0,), domain=MS)
register_simple({"QuantizeLinear": "quantize_linear", "DequantizeLinear": "dequantize_linear"}, domain=MS)
register_simple({"GatherND": "gather", "GatherBlockQuantized": "gather", "GatherPacked": "gather",
         "MatMulInteger16": "matmul"}, keep=(0, 1), domain=MS)
register_simple({"TorchEmbedding": "gather"}, keep=(0, 1), domain=MS)  # (weight, indices)
register_simple({"QLinearAdd": "add", "QLinearMul": "mul"}, keep=(0, 3), domain=MS)  # (a, a_s, a_zp, b, b_s, b_zp, ...)
register_simple({"MulInteger": "mul"}, keep=(0, 2), domain=MS)  # (a, a_zp, b, b_zp)
register_simple({"QLinearWhere": "where"}, keep=(0, 1, 4), domain=MS)  # (cond, x, x_s, x_zp, y, ...)
register_simple({"Range": "fill"}, keep=(), domain=MS)
register_contrib("MaxpoolWithMask", ("max_pool",))(pool_mapper("max_pool"))
register_contrib("NhwcMaxPool", ("max_pool",))(pool_mapper("max_pool"))  # the rule reads the window and the output only
register_contrib("QLinearAveragePool", ("avg_pool",))(lambda n: n.part("avg_pool", (0,), kernel=tuple(n.attrs["kernel_shape"])))
register_contrib("SimplifiedLayerNormalization", ("rms_norm",))(lambda n: n.part("rms_norm", (0, 1), norm_numel=norm_numel(n)))


@register_contrib("QuantizeBFP", ("quantize_linear", "fill"))
def _quantize_bfp(n: OnnxNode) -> list[Part]:
    y, shape, strides = (n.outputs + ("", "", ""))[:3]
    parts = [Part("quantize_linear", (n.input(0),), (y,))]
    parts += [Part("fill", (), (o,), suffix=f"fill{i}") for i, o in enumerate((shape, strides)) if o]
    return parts


@register_contrib("QLinearSoftmax", ("softmax",))
def _qlinear_softmax(n: OnnxNode) -> Part:
    x = n.in_type(0)
    return n.part("softmax", (0,), axis=normalize_axis(int(n.attrs.get("axis", -1)), x and x.rank), log=False)


@register_contrib("QLinearGlobalAveragePool", ("reduce_mean",))
def _qlinear_global_pool(n: OnnxNode) -> Part:
    x = typed_value(n, n.input(0), "X")
    axes = tuple(range(1, x.rank - 1)) if n.attrs.get("channels_last") else tuple(range(2, x.rank))
    return n.part("reduce_mean", (0,), axes=axes, keepdims=True)


@register_contrib("QLinearReduceMean", ("reduce_mean",))
def _qlinear_reduce_mean(n: OnnxNode) -> Part:
    x = n.in_type(0)
    axes = n.attrs.get("axes")
    axes = None if axes is None or x is None else tuple(sorted(normalize_axis(int(a), x.rank) for a in axes))
    return n.part("reduce_mean", (0,), axes=axes, keepdims=bool(n.attrs.get("keepdims", 1)))


@register_contrib("QLinearConcat", ("concat",))
def _qlinear_concat(n: OnnxNode) -> Part:  # (y_scale, y_zp, then (x, x_scale, x_zp) per input)
    return Part("concat", tuple(n.inputs[2::3]), n.outputs, {"axis": int(n.attrs["axis"])})


def _bias_then(op: str):
    """(x, [bias]) -> op(x + bias): an add when the bias is given."""
    def map_bias(n: OnnxNode) -> MapResult:
        if n.input(1) is None:
            return n.part(op, (0,))
        return _chain(n, Part("add", (n.input(0), n.input(1)), ()), (op, ()))
    return map_bias


register_contrib("FastGelu", ("add", "gelu_tanh"))(_bias_then("gelu_tanh"))
register_contrib("BiasGelu", ("add", "gelu"))(_bias_then("gelu"))


@register_contrib("BiasAdd", ("add",))
def _bias_add(n: OnnxNode) -> list[Part]:  # X + bias + skip
    return _chain(n, Part("add", (n.input(0), n.input(1)), ()), ("add", (n.input(2),)))


@register_contrib("BiasSoftmax", ("add", "softmax"))
def _bias_softmax(n: OnnxNode) -> list[Part]:
    x = typed_value(n, n.input(0), "data")
    parts = _chain(n, Part("add", (n.input(0), n.input(1)), ()), ("softmax", ()))
    parts[-1].attrs.update(axis=x.rank - 1, log=False)
    return parts


@register_contrib("BiasSplitGelu", ("add", "view", "gelu", "mul"))
def _bias_split_gelu(n: OnnxNode) -> list[Part]:
    """X + bias [.., 2D], split into halves: left * gelu(right)."""
    x = typed_value(n, n.input(0), "X")
    half = (*x.shape[:-1], x.shape[-1] // 2)
    summed = n.temp("biased", x)
    left_view, left = view_part(n, summed, "left", half, x.dtype)
    right_view, right = view_part(n, summed, "right", half, x.dtype)
    gelu = temp_value(n, "gelu", half, x.dtype)
    return [Part("add", (n.input(0), n.input(1)), (summed,), suffix="bias"), left_view, right_view,
            Part("gelu", (right,), (gelu,), suffix="gelu"), Part("mul", (left, gelu), n.outputs)]


@register_contrib("ScaledSiLU", ("mul", "silu"))
def _scaled_silu(n: OnnxNode) -> list[Part]:
    return _chain(n, Part("mul", trim_inputs((n.input(0), n.input(1))), ()), ("silu", ()))


@register_contrib("SwiGLU", ("clamp", "quick_gelu", "add", "mul"))
def _swiglu(n: OnnxNode) -> list[Part]:
    """clamp(gate) * sigmoid(alpha * clamp(gate)) * (clamp(up) + beta)."""
    gate, up = n.input(0), n.input(1)
    g_t, u_t = typed_value(n, gate, "gate"), typed_value(n, up, "up")
    parts: list[Part] = []
    if float(n.attrs.get("limit", 0) or 0) > 0:
        gate_c, up_c = n.temp("gate_clamped", g_t), n.temp("up_clamped", u_t)
        parts += [Part("clamp", (gate,), (gate_c,), suffix="clamp_gate"), Part("clamp", (up,), (up_c,), suffix="clamp_up")]
        gate, up = gate_c, up_c
    if float(n.attrs.get("activation_beta", 0) or 0) != 0:
        up_b = n.temp("up_beta", u_t)
        parts.append(Part("add", (up,), (up_b,), suffix="beta"))
        up = up_b
    act = n.temp("act", g_t)
    return [*parts, Part("quick_gelu", (gate,), (act,), suffix="act"), Part("mul", (act, up), n.outputs)]


@register_contrib("GatedAdd", ("mul", "add"))
def _gated_add(n: OnnxNode) -> list[Part]:  # X + gate * Y (per-row gate)
    scaled = n.temp("gated", n.in_type(1))
    return [Part("mul", (n.input(1), n.input(2)), (scaled,), suffix="gate"), Part("add", (n.input(0), scaled), n.outputs)]


@register_contrib("LinearAttentionGate", ("add", "softplus", "mul", "sigmoid"))
def _linear_attention_gate(n: OnnxNode) -> list[Part]:
    """decay = decay_scale * softplus(a + dt_bias); beta = sigmoid(b)."""
    decay, beta = (n.outputs + ("", ""))[:2]
    a = typed_value(n, n.input(0), "a")
    s1, s2 = n.temp("biased", a), n.temp("softplus", a)
    parts = [Part("add", (n.input(0), n.input(1)), (s1,), suffix="bias"), Part("softplus", (s1,), (s2,), suffix="softplus"),
             Part("mul", trim_inputs((s2, n.input(2))), (decay,))]
    if beta and n.input(3) is not None:
        parts.append(Part("sigmoid", (n.input(3),), (beta,), suffix="beta"))
    return parts


# --- normalizations --------------------------------------------------------------------------------------

def _skip_norm(norm: str, keep: int):
    """(input, skip, gamma, [beta], bias) -> (output, mean, inv_std_var, input_skip_bias_sum)."""
    def map_skip(n: OnnxNode) -> list[Part]:
        x = typed_value(n, n.input(0), "input")
        out, mean, inv_std, summed = (n.outputs + ("", "", "", ""))[:4]
        bias = n.input(keep)
        total = summed or n.temp("sum", x)
        first = n.temp("skip_sum", x) if bias is not None else total
        parts = [Part("add", (n.input(0), n.input(1)), (first,), suffix="skip")]
        if bias is not None:
            parts.append(Part("add", (first, bias), (total,), suffix="bias"))
        params = (n.input(2), n.input(3)) if norm == "layer_norm" else (n.input(2),)
        outs = tuple(o for o in (out, mean, inv_std) if o)
        return [*parts, Part(norm, trim_inputs((total, *params)), outs, {"norm_numel": x.shape[-1]})]
    return map_skip


register_contrib("SkipLayerNormalization", ("add", "layer_norm"))(_skip_norm("layer_norm", 4))
register_contrib("SkipSimplifiedLayerNormalization", ("add", "rms_norm"))(_skip_norm("rms_norm", 3))
register_contrib("QOrderedLayerNormalization", ("layer_norm",))(  # (X, scale_X, scale, B, scale_Y)
    lambda n: n.part("layer_norm", (0, 2, 3), norm_numel=norm_numel(n)))


@register_contrib("BranchwiseRMSNorm", ("rms_norm",))
def _branchwise_rms_norm(n: OnnxNode) -> Part:
    x = typed_value(n, n.input(0), "X")
    branches = int(n.attrs.get("num_branches", 0) or 0)
    return n.part("rms_norm", (0, 1), norm_numel=x.shape[-1] // branches if branches else x.shape[-1])


@register_contrib("GatedRMSNorm", ("rms_norm", "silu", "sigmoid", "mul"))
def _gated_rms_norm(n: OnnxNode) -> list[Part]:
    x, scale = typed_value(n, n.input(0), "X"), typed_value(n, n.input(1), "scale")
    act = _activation(n.attrs.get("activation", "silu"))
    normed, gate = n.temp("normed", x), n.temp("gate_act", typed_value(n, n.input(2), "gate"))
    return [Part("rms_norm", (n.input(0), n.input(1)), (normed,), {"norm_numel": scale.shape[-1]}, suffix="norm"),
            Part(act, (n.input(2),), (gate,), suffix="gate"), Part("mul", (normed, gate), n.outputs)]


def _group_norm_nhwc(n: OnnxNode, x_name: str, gamma: Optional[str], beta: Optional[str]) -> list[Part]:
    """group_norm (+ silu when activation=1) of x, NHWC unless channels_last=0."""
    x = typed_value(n, x_name, "X")
    parts: list[Part] = []
    if int(n.attrs.get("channels_last", 1)):
        view, x_name = view_part(n, x_name, "nchw", (x.shape[0], x.shape[-1], *x.shape[1:-1]), x.dtype)
        parts.append(view)
    groups = int(n.attrs["groups"])
    if int(n.attrs.get("activation", 0)):
        normed = n.temp("normed", n.out_type(0))
        return [*parts, Part("group_norm", trim_inputs((x_name, gamma, beta)), (normed,), {"num_groups": groups}, suffix="norm"),
                Part("silu", (normed,), (n.outputs[0],))]
    return [*parts, Part("group_norm", trim_inputs((x_name, gamma, beta)), (n.outputs[0],), {"num_groups": groups})]


register_contrib("GroupNorm", ("view", "group_norm", "silu"))(lambda n: _group_norm_nhwc(n, n.input(0), n.input(1), n.input(2)))


@register_contrib("SkipGroupNorm", ("add", "view", "group_norm", "silu"))
def _skip_group_norm(n: OnnxNode) -> list[Part]:  # (X, gamma, beta, skip, bias) -> (Y, S = X + skip + bias)
    x = typed_value(n, n.input(0), "X")
    summed = n.outputs[1] if len(n.outputs) > 1 and n.outputs[1] else n.temp("sum", x)
    first = n.temp("skip_sum", x) if n.input(4) is not None else summed
    parts = [Part("add", (n.input(0), n.input(3)), (first,), suffix="skip")]
    if n.input(4) is not None:
        parts.append(Part("add", (first, n.input(4)), (summed,), suffix="bias"))
    return [*parts, *_group_norm_nhwc(n, summed, n.input(1), n.input(2))]


# --- embeddings --------------------------------------------------------------------------------------------

def _embed_layer_norm(ids: int, segment_ids: int, word: int, position: int, segment: int, gamma: int, beta: int,
                      mask: int, position_ids: Optional[int]):
    def map_embed(n: OnnxNode) -> list[Part]:
        id_t, table = typed_value(n, n.input(ids), "input_ids"), typed_value(n, n.input(word), "word_embedding")
        g = typed_value(n, n.input(gamma), "gamma")
        dim, dtype = table.shape[-1], g.dtype
        outs = n.outputs + ("", "", "")
        rows = (*id_t.shape, dim)
        parts, terms = [], []
        words = temp_value(n, "word", rows, dtype)
        parts.append(Part("gather", (n.input(word), n.input(ids)), (words,), suffix="word"))
        terms.append(words)
        pos_ids = n.input(position_ids) if position_ids is not None else None
        if pos_ids is not None:
            positions = temp_value(n, "position", (*typed_value(n, pos_ids, "position_ids").shape, dim), dtype)
            parts.append(Part("gather", (n.input(position), pos_ids), (positions,), suffix="position"))
        else:  # positions 0..S-1: the first S rows of the table
            positions = temp_value(n, "position", (id_t.shape[-1], dim), dtype)
            parts.append(Part("slice", (n.input(position),), (positions,), suffix="position"))
        terms.append(positions)
        if n.input(segment_ids) is not None and n.input(segment) is not None:
            segments = temp_value(n, "segment", rows, dtype)
            parts.append(Part("gather", (n.input(segment), n.input(segment_ids)), (segments,), suffix="segment"))
            terms.append(segments)
        total = terms[0]
        for i, term in enumerate(terms[1:], 1):
            last = i == len(terms) - 1
            out = outs[2] if last and len(n.outputs) > 2 and outs[2] else temp_value(n, f"sum{i}", rows, dtype)
            parts.append(Part("add", (total, term), (out,), suffix=f"sum{i}"))
            total = out
        parts.append(Part("layer_norm", trim_inputs((total, n.input(gamma), n.input(beta))), (outs[0],), {"norm_numel": dim}))
        if outs[1]:  # mask_index: the tokens per sequence
            if n.input(mask) is not None:
                parts.append(Part("reduce_sum", (n.input(mask),), (outs[1],), {"axes": (1,), "keepdims": False},
                                  suffix="mask_index"))
            else:
                parts.append(Part("fill", (), (outs[1],), suffix="mask_index"))
        return parts
    return map_embed


register_contrib("EmbedLayerNormalization", ("gather", "slice", "add", "layer_norm", "reduce_sum", "fill"))(
    _embed_layer_norm(0, 1, 2, 3, 4, 5, 6, 7, 8))
register_contrib("QEmbedLayerNormalization", ("gather", "slice", "add", "layer_norm", "reduce_sum", "fill"))(
    _embed_layer_norm(0, 1, 2, 3, 4, 5, 6, 7, None))


# --- matmuls and convolutions --------------------------------------------------------------------------

def _trans(n: OnnxNode) -> dict[str, bool]:
    if n.attrs.get("transBatchA", 0) or n.attrs.get("transBatchB", 0):
        raise KeepUnknown("transBatchA/transBatchB")
    return {"trans_a": bool(n.attrs.get("transA", 0)), "trans_b": bool(n.attrs.get("transB", 0))}


register_contrib(("FusedMatMul", "TransposeMatMul"), ("matmul",))(lambda n: n.part("matmul", (0, 1), **_trans(n)))


@register_contrib("FusedMatMulActivation", ("matmul",) + tuple(_ACTIVATIONS.values()))
def _fused_matmul_activation(n: OnnxNode) -> list[Part]:
    return _chain(n, Part("matmul", (n.input(0), n.input(1)), (), _trans(n)), (_activation(n.attrs.get("activation")), ()))


def _gemm_bias(n: OnnxNode, c: int) -> tuple[Optional[str], ...]:
    return (n.input(c),) if float(n.attrs.get("beta", 1.0)) != 0.0 and n.input(c) is not None else ()


@register_contrib("FusedGemm", ("matmul",) + tuple(_ACTIVATIONS.values()))
def _fused_gemm(n: OnnxNode) -> list[Part]:
    mm = Part("matmul", (n.input(0), n.input(1), *_gemm_bias(n, 2)), (), _trans(n))
    return _chain(n, mm, (_activation(n.attrs.get("activation")), ()))


@register_contrib("GemmFloat8", ("matmul", "relu", "gelu"))
def _gemm_float8(n: OnnxNode) -> list[Part]:
    mm = Part("matmul", (n.input(0), n.input(1), *_gemm_bias(n, 2)), (), _trans(n))
    return _chain(n, mm, (_activation(n.attrs.get("activation")), ()))


register_contrib("QGemm", ("matmul",))(lambda n: Part("matmul", trim_inputs((n.input(0), n.input(3), n.input(6))), n.outputs, _trans(n)))
register_contrib("QOrderedMatMul", ("matmul",))(lambda n: n.part("matmul", (0, 2, 5)))  # (A, scale_A, B, scale_B, scale_Y, bias)
register_contrib("MatMulIntegerToFloat", ("matmul",))(lambda n: n.part("matmul", (0, 1, 6)))
register_contrib("DynamicQuantizeMatMul", ("matmul",))(lambda n: n.part("matmul", (0, 1, 4)))
register_contrib("GemmFastGelu", ("matmul", "gelu_tanh"))(
    lambda n: _chain(n, Part("matmul", trim_inputs((n.input(0), n.input(1), n.input(2))), ()), ("gelu_tanh", ())))


def _quantized(a: int, b: int, scales: Optional[int], zero_points: Optional[int], bias: Optional[int]):
    def map_quantized(n: OnnxNode) -> Part:
        pick = [None if i is None else n.input(i) for i in (a, b, scales, zero_points, bias)]
        return Part("quantized_matmul", trim_inputs(pick), n.outputs)
    return map_quantized


register_contrib("MatMulNBits", ("quantized_matmul",))(_quantized(0, 1, 2, 3, 5))  # (A, B, scales, zero_points, g_idx, bias)
register_contrib("MatMulBnb4", ("quantized_matmul",))(_quantized(0, 1, 2, None, None))  # (A, B, absmax)
register_contrib("MatMulFpQ4", ("quantized_matmul",))(_quantized(0, 1, None, None, None))  # (A, B, B_shape)
register_contrib("MatMulBlockQuantizedFp4Weight", ("quantized_matmul",))(_quantized(0, 1, 2, None, 5))
register_contrib("MatMulBlockQuantizedFp8Weight", ("quantized_matmul",))(_quantized(0, 1, 2, None, 4))
register_contrib("MatMulPacked", ("quantized_matmul",))(_quantized(0, 1, 2, None, None))


def _prologue_norm(n: OnnxNode, skip: int, scale: int, sum_out: Optional[str]) -> tuple[list[Part], str]:
    """The optional (Skip)SimplifiedLayerNormalization before the fused projections: (parts, normalized input)."""
    a = n.input(0)
    if n.input(scale) is None:
        return [], a
    x = typed_value(n, a, "A")
    parts = []
    if n.input(skip) is not None:
        summed = sum_out or n.temp("skip_sum", x)
        parts.append(Part("add", (a, n.input(skip)), (summed,), suffix="skip"))
        a = summed
    normed = n.temp("normed", x)
    parts.append(Part("rms_norm", (a, n.input(scale)), (normed,), {"norm_numel": x.shape[-1]}, suffix="norm"))
    return parts, normed


@register_contrib("MatMulNBitsMlp", ("add", "rms_norm", "quantized_matmul", "silu", "gelu", "mul"))
def _matmul_nbits_mlp(n: OnnxNode) -> list[Part]:
    """(A, skip, norm_scale, gate_B, gate_scales, gate_bias, up_B, up_scales, up_bias) -> activation(gate) * up."""
    outs = n.outputs + ("", "")
    parts, a = _prologue_norm(n, 1, 2, outs[1] or None)
    y = typed_value(n, outs[0], "Y")
    gate, up, act = n.temp("gate", y), n.temp("up", y), n.temp("act", y)
    op = _activation(n.attrs.get("activation", "silu")) or "silu"
    return [*parts,
            Part("quantized_matmul", trim_inputs((a, n.input(3), n.input(4), None, n.input(5))), (gate,), suffix="gate"),
            Part("quantized_matmul", trim_inputs((a, n.input(6), n.input(7), None, n.input(8))), (up,), suffix="up"),
            Part(op, (gate,), (act,), suffix="act"), Part("mul", (act, up), (outs[0],))]


@register_contrib("MatMulNBitsQkv", ("add", "rms_norm", "quantized_matmul"))
def _matmul_nbits_qkv(n: OnnxNode) -> list[Part]:
    """(A, skip, norm_scale, q_B, q_scales, q_bias, k_B, k_scales, k_bias, v_B, v_scales, v_bias) -> Q, K, V."""
    outs = n.outputs + ("", "", "", "")
    parts, a = _prologue_norm(n, 1, 2, outs[3] or None)
    for i, tag in enumerate("qkv"):
        if outs[i]:
            base = 3 + 3 * i
            parts.append(Part("quantized_matmul", trim_inputs((a, n.input(base), n.input(base + 1), None, n.input(base + 2))),
                              (outs[i],), suffix="" if i == 0 else tag))
    return parts


@register_contrib("MatMulNBitsQLoRA", ("quantized_matmul", "add"))
def _matmul_nbits_qlora(n: OnnxNode) -> list[Part]:
    """X @ W + (X @ lora_A) @ lora_B, each a MatMulNBits projection."""
    x, y = typed_value(n, n.input(0), "X"), typed_value(n, n.outputs[0], "Y")
    rank = typed_value(n, n.input(3), "lora_A").shape[0]
    base, low, lora = n.temp("base", y), temp_value(n, "lora_a", (*x.shape[:-1], rank), x.dtype), n.temp("lora_b", y)
    return [Part("quantized_matmul", trim_inputs((n.input(0), n.input(1), n.input(2))), (base,), suffix="base"),
            Part("quantized_matmul", trim_inputs((n.input(0), n.input(3), n.input(4))), (low,), suffix="lora_a"),
            Part("quantized_matmul", trim_inputs((low, n.input(5), n.input(6))), (lora,), suffix="lora_b"),
            Part("add", (base, lora), n.outputs)]


@register_contrib("RouterGateUpProj", ("matmul", "slice", "view", "quick_gelu", "mul"))
def _router_gate_up(n: OnnxNode) -> list[Part]:
    """One GEMM X @ W = [router | gate | up]; router copied out; SwiGLU of gate and up."""
    if str(n.attrs.get("activation", "swiglu")) != "swiglu":
        raise KeepUnknown(f"activation {n.attrs.get('activation')!r}")
    x, w = typed_value(n, n.input(0), "X"), typed_value(n, n.input(1), "W")
    router_size = int(n.attrs["router_size"])
    inter = (w.shape[-1] - router_size) // 2
    router, activated = (n.outputs + ("", ""))[:2]
    rows = x.shape[:-1]
    full = temp_value(n, "gemm", (*rows, w.shape[-1]), x.dtype)
    gate_view, gate = view_part(n, full, "gate", (*rows, inter), x.dtype)
    up_view, up = view_part(n, full, "up", (*rows, inter), x.dtype)
    act = temp_value(n, "act", (*rows, inter), x.dtype)
    parts = [Part("matmul", (n.input(0), n.input(1)), (full,), suffix="gemm"), gate_view, up_view,
             Part("quick_gelu", (gate,), (act,), suffix="act"), Part("mul", (act, up), (activated,))]
    if router:
        parts.append(Part("slice", (full,), (router,), suffix="router"))
    return parts


@register_contrib("CDist", ("einsum", "sqrt"))
def _cdist(n: OnnxNode) -> list[Part]:  # the GEMM form onnxruntime uses: -2 A B^T + norms (norms not counted)
    gemm = Part("einsum", (n.input(0), n.input(1)), (), {"equation": "md,nd->mn"})
    return _chain(n, gemm, ("sqrt" if str(n.attrs.get("metric", "sqeuclidean")) == "euclidean" else None, ()))


def _conv_then(n: OnnxNode, conv: Part, z: Optional[str]) -> list[Part]:
    return _chain(n, conv, ("add" if z is not None else None, (z,)), (_activation(n.attrs.get("activation")), ()))


register_contrib("FusedConv", ("conv", "add") + tuple(_ACTIVATIONS.values()))(
    lambda n: _conv_then(n, Part("conv", trim_inputs((n.input(0), n.input(1), n.input(2))), (), {"transposed": False}),
                         n.input(3)))
register_contrib("QLinearConv", ("conv",))(lambda n: n.part("conv", (0, 3, 8), transposed=False))
register_contrib("ConvTransposeWithDynamicPads", ("conv",))(lambda n: n.part("conv", (0, 1, 3), transposed=True))


def _nhwc_conv(n: OnnxNode) -> list[Part]:
    """NHWC input and output, OHWI weights: the NCHW conv on free views."""
    x, w, y = typed_value(n, n.input(0), "X"), typed_value(n, n.input(1), "W"), typed_value(n, n.outputs[0], "Y")
    x_view, x_nchw = view_part(n, n.input(0), "x_nchw", (x.shape[0], x.shape[-1], *x.shape[1:-1]), x.dtype)
    w_view, w_oihw = view_part(n, n.input(1), "w_oihw", (w.shape[0], w.shape[-1], *w.shape[1:-1]), w.dtype)
    y_nchw = temp_value(n, "y_nchw", (y.shape[0], y.shape[-1], *y.shape[1:-1]), y.dtype)
    conv = Part("conv", trim_inputs((x_nchw, w_oihw, n.input(2))), (y_nchw,), {"transposed": False}, suffix="conv")
    act = _activation(n.attrs.get("activation")) if n.op_type == "NhwcFusedConv" else None
    z = n.input(3) if n.op_type == "NhwcFusedConv" else None
    tail, prev = [], y_nchw
    for op, extra in (("add", (z,)) if z is not None else (None, ()), (act, ())):
        if op is not None:
            nxt = n.temp(op, n.type(y_nchw))
            tail.append(Part(op, trim_inputs((prev, *extra)), (nxt,), suffix=op))
            prev = nxt
    return [x_view, w_view, conv, *tail, Part("view", (prev,), n.outputs)]


register_contrib(("NhwcConv", "NhwcFusedConv"), ("view", "conv", "add") + tuple(_ACTIVATIONS.values()))(_nhwc_conv)


# --- transforms and sampling ------------------------------------------------------------------------------

@register_contrib("Rfft", ("fft",))
def _rfft(n: OnnxNode) -> Part:
    x = typed_value(n, n.input(0), "X")
    length = x.shape[-1]
    return n.part("fft", (0,), length=length, transforms=x.numel // length if length else 0, real=True)


@register_contrib("Irfft", ("fft",))
def _irfft(n: OnnxNode) -> Part:
    y = typed_value(n, n.outputs[0], "Y")
    length = y.shape[-1]
    return n.part("fft", (0,), length=length, transforms=y.numel // length if length else 0, real=True)


@register_contrib(("GridSample", "CropAndResize"), ("interpolate",))
def _contrib_sample(n: OnnxNode) -> Part:
    x = typed_value(n, n.input(0), "X")
    return n.part("interpolate", (0, 1), mode=sample_mode(n, "bilinear"), spatial=x.rank - 2)


@register_contrib("Unique", ("sort",))
def _contrib_unique(n: OnnxNode) -> Part:  # x [N] -> (uniques, indices, counts): a sort and a pass over it
    return n.part("sort", (0,), axis=0)


register_contrib("SampleOp", ("copy",))(lambda n: n.part("copy", (0,)))  # onnxruntime's example op: an echo


# --- quantized LSTM ------------------------------------------------------------------------------------

@register_contrib("DynamicQuantizeLSTM", ("view", "rnn"))
def _dynamic_quantize_lstm(n: OnnxNode) -> list[Part]:
    """W [D, I, 4H] and R [D, H, 4H] (transposed against LSTM's): free views in LSTM's layout, then the LSTM."""
    parts, names = [], []
    for i, tag in ((1, "w"), (2, "r")):
        t = typed_value(n, n.input(i), tag.upper())
        view, name = view_part(n, n.input(i), f"{tag}_gates_first", (t.shape[0], t.shape[2], t.shape[1]), t.dtype)
        parts.append(view)
        names.append(name)
    ins = (n.input(0), *names, n.input(3), n.input(5), n.input(6), n.input(7))
    return [*parts, Part("rnn", trim_inputs(ins), n.outputs, {"cell": "lstm", "layout": 0})]
