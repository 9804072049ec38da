"""The canonical op set: every frontend maps its ops onto these identities.

Each canonical op states the order of its inputs and the attributes a capture must supply
(normalised names, Python values). Cost rules (`graphperf.rules`) are registered against these
`OpId`s. A frontend op with no canonical mapping keeps an `OpId` in the frontend's domain
("aten", "onnx", ...) and is reported as unknown.

Input order and attributes:

matmul       (a, b, [bias]); attrs trans_a=False, trans_b=False. out = op(a) @ op(b) (+ bias),
             batch dims broadcast. K = a.shape[-2] if trans_a else a.shape[-1] (a.shape[0] for 1-D a).
             Covers mm, bmm, matmul, linear (weight [N, K] with trans_b=True), addmm, baddbmm, Gemm.
einsum       (operands...); attrs equation="ij,jk->ik".
grouped_matmul  (a, b, [offsets]); one matmul per group, the groups laid along one dimension: a [S, K] with
             b [G, K, N] (rows of a sorted by group, `offsets` [G] their cumulative ends: MoE experts) ->
             [S, N]; a [G, M, K] with b [G, K, N] -> [G, M, N]; a [M, Ktot] with b [Ktot, N] (K split by
             offsets) -> [G, M, N]. FLOPs 2*M*K*N summed over the groups. (aten._grouped_mm,
             transformers::grouped_mm_fallback.)
conv         (x, w, [bias]); attrs transposed=False. x [N, Cin, *spatial]; w [Cout, Cin/groups, *k]
             (transposed: w [Cin, Cout/groups, *k]); out [N, Cout, *out_spatial]. 1d/2d/3d.
attention    (q, k, v, [mask]); attrs is_causal=False, q_num_heads=None, kv_num_heads=None.
             q [..., L, E], k [..., S, E], v [..., S, Ev] (4-D [B, H, L, E]; grouped-query k/v have
             fewer heads). 3-D inputs [B, L, H*E] need q_num_heads and kv_num_heads.
softmax      (x,); attrs axis=-1, log=False (log_softmax).
layer_norm   (x, [weight], [bias]); attrs norm_numel (elements normalised per row).
rms_norm     (x, [weight]); attrs norm_numel.
batch_norm   (x, [weight], [bias], [running_mean], [running_var]); inference form. Channel axis 1.
group_norm   (x, [weight], [bias]); attrs num_groups.
max_pool / avg_pool  (x,); attrs kernel=(kh, kw, ...).
reduce_sum, reduce_mean, reduce_max, reduce_min, reduce_prod, argmax, argmin, reduce_var, reduce_std,
reduce_any, reduce_all, cumsum, reduce_logsumexp  (x,); output shape gives the reduced size.
topk         (x,); attrs k, axis=-1. outputs (values, indices).
sort         (x,); attrs axis=-1.
gather       (data, indices); reads only the gathered elements (embedding, index_select, Gather,
             GatherElements, GatherND, index.Tensor).
scatter      (data, indices, updates); attrs reduce="none"|"add"|"mul"|"max"|"min"
             (scatter, scatter_add, index_add, index_put, ScatterElements, ScatterND).
Elementwise ops (inputs broadcast to the output): see ELEMENTWISE below. `where` is (cond, a, b).
pointwise    (inputs...); the generic elementwise op for a frontend op without an entry of its own
             (graphperf/capture/aten_pointwise.py derives it from torch.Tag.pointwise): attrs
             flops_per_element, transcendentals_per_element (per output element), as an ELEMENTWISE entry.
Data movement, no arithmetic: concat, split, slice, pad, transpose, copy, cast, expand, fill
(constant creation: full, zeros, arange, ConstantOfShape, Range), reshape_copy (a reshape the
runtime must materialise).
fused        (external inputs...); a group of nodes fused into one kernel by a what-if rewrite
             (passes/fusion.py and its rules); attrs members=(node names), member_ops=(op names),
             rule=(the fusion rule),
             cost={"flops", "matrix_flops", "transcendentals"} summed over the members. Bytes are
             the group's external inputs read once and its materialised outputs written once.
linalg       (operands read...); a linalg structured op lowered through torch-mlir (graphperf/mlir/):
             attrs domain=(loop sizes), flops_per_point, transcendentals_per_point, matrix=bool,
             reads=(elements read per input), [writes=(elements written per output)].
view         free: view, reshape without copy, squeeze, unsqueeze, permute/transpose views,
             expand views, slice views, select, split views, detach, alias, Identity, Shape.
quantized_matmul  (a [..., M, K], b, [scales], [zero_points], [bias]); out [..., M, N]. b holds the weights
             as stored (packed N-bit blocks, NF4, FP8, ...): only its bytes are read; K from a, N from out.
             MatMulNBits, MatMulBnb4, MatMulFpQ4, MatMulBlockQuantized*Weight, MatMulPacked.
rnn          (x, w, r, [bias], [initial_h], [initial_c], [peepholes]): the ONNX RNN/GRU/LSTM layout. x [S, B, I]
             ([B, S, I] with layout=1), w [D, G*H, I], r [D, G*H, H]; attrs cell="lstm"|"gru"|"rnn",
             layout=0. outs (y, [y_h], [y_c]).
fft          (x,); attrs length (points per transform), transforms (how many), real (a real input or
             output: half the work). DFT, STFT's transforms, Rfft, Irfft.
interpolate  (x, [grid, rois or offsets...]); attrs mode="nearest"|"linear"|"cubic", spatial (the
             interpolated dims), samples=1 (points averaged per output element). Resize, GridSample,
             RoiAlign, CropAndResize, DeformConv's sampling.
rotary       (x, cos, sin, [position_ids]); x [B, N, S, H] or [B, S, N*H] (attrs num_heads); attrs
             rotary_dim (rotated elements per head row, 0 = all). RotaryEmbedding and its variants.
lrn          (x [N, C, ...],); attrs size (channels summed per element). LRN.
det, inverse (x [..., n, n],); determinant and inverse of square matrices (LU).
nonzero      (x,); out the indices of the non-zero elements (NonZero).
multinomial  (x [B, C] log-probabilities,); out [B, samples] (Multinomial).
all_reduce, all_gather, reduce_scatter, all_to_all  (x,); collectives of a device group (passes/shard.py inserts
             them); attrs group_size, algorithm="ring"|"tree", [link="scale_up"|"scale_out"], [axis] (all_gather,
             reduce_scatter: the gathered or scattered dim). Rules and link times: graphperf/rules/collective.py.

Training ops (forward-only training ops, losses and backward ops from aot_autograd graphs; rules in
graphperf/rules/backward.py). Elementwise ones are in ELEMENTWISE_TRAINING, inputs as ATen orders
them (grad_out first). Outputs are the gradients the node computes (`output_mask` says which).
attention_backward   (grad_out, q, k, v, out, logsumexp, [mask]); attrs is_causal=False. outs dq, dk, dv.
conv_backward        (grad_out, x, w); attrs transposed=False, output_mask=(True, True, True)
                     (grad_input, grad_weight, grad_bias).
softmax_backward     (grad_out, out); attrs axis=-1, log=False.
layer_norm_backward  (grad_out, x, mean, rstd, [weight]); attrs norm_numel, output_mask.
batch_norm_backward  (grad_out, x, [weight], [running_mean], [running_var], [save_mean], [save_invstd]);
                     attrs training (batch statistics), output_mask. Channel axis 1.
embedding_backward   (grad_out [..., D], indices [...]); out the dense [V, D] weight gradient.
max_pool_backward    (grad_out, indices); out grad_input.
avg_pool_backward    (grad_out,); attrs kernel=(kh, kw, ...); out grad_input.
nll_loss             (x [N, C] or [C], target, [weight]); attrs reduction="mean"|"sum"|"none".
nll_loss_backward    (grad_out, target, [weight], [total_weight]); attrs reduction; out grad_input [N, C].
mse_loss             (x, target); attrs reduction.
mse_loss_backward    (grad_out, x, target); attrs reduction; out grad_input.
"""

from __future__ import annotations

from typing import Any, Mapping

from .ir import OpId

__all__ = ["OpId", "canonical", "CANONICAL", "ELEMENTWISE", "ELEMENTWISE_TRAINING", "TRAINING", "DATA_MOVEMENT",
           "REDUCTIONS", "GEMM_OPS", "MATRIX_FAMILIES", "LIBRARY_CALL_OPS", "EPILOGUE_MATRIX_OPS", "NORM_OPS",
           "ROW_REDUCTIONS", "ROW_KERNEL_OPS", "STRIDED_KERNEL_OPS", "POINTWISE_OPS", "BROADCASTING_OPS", "COLLECTIVE_OPS",
           "LAYOUT_OPS", "is_canonical",
           "op_name", "matrix_family"]

DOMAIN = "graphperf"

# Elementwise ops: (flops per output element, transcendentals per output element).
# Derivations: a FLOP is one add/sub/mul/div/compare/select; exp, log, erf, tanh, sigmoid's exp,
# sqrt, rsqrt, sin, cos, pow with a non-integer exponent are transcendentals.
ELEMENTWISE: dict[str, tuple[int, int]] = {
    "add": (1, 0), "sub": (1, 0), "mul": (1, 0), "div": (1, 0), "neg": (1, 0), "abs": (1, 0),
    "maximum": (1, 0), "minimum": (1, 0), "clamp": (2, 0), "reciprocal": (1, 0), "square": (1, 0),
    "relu": (1, 0),          # max(x, 0)
    "leaky_relu": (2, 0),    # compare, multiply-select
    "hardtanh": (2, 0),
    "gelu": (4, 1),          # 0.5 * x * (1 + erf(x / sqrt 2)): mul, add, mul, mul + erf
    "gelu_tanh": (8, 1),     # 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715 x^3))): x^3 (2), *0.044715, +x, *sqrt(2/pi), +1, *x, *0.5 + tanh
    "silu": (3, 1),          # x * sigmoid(x): exp(-x) (1 trans), add 1, div, mul; neg folded
    "sigmoid": (2, 1),       # 1 / (1 + exp(-x)): add, div + exp
    "tanh": (0, 1), "exp": (0, 1), "log": (0, 1), "erf": (0, 1), "sqrt": (0, 1), "rsqrt": (0, 1),
    "sin": (0, 1), "cos": (0, 1),
    "pow": (0, 1),           # tensor or fractional exponent: exp(y * log x), one transcendental;
                             # attrs exponent=<int> (scalar): max(|e|-1, 1) multiplies, +1 divide if e<0 (x**2: 1)
    "where": (1, 0), "masked_fill": (1, 0),
    "eq": (1, 0), "ne": (1, 0), "lt": (1, 0), "le": (1, 0), "gt": (1, 0), "ge": (1, 0),
    "logical_and": (1, 0), "logical_or": (1, 0), "logical_not": (1, 0), "logical_xor": (1, 0),
    "bitwise_and": (1, 0), "bitwise_or": (1, 0), "bitwise_not": (1, 0),
    "floor": (1, 0), "ceil": (1, 0), "round": (1, 0), "sign": (1, 0), "mod": (1, 0), "floor_div": (1, 0),
    "isnan": (1, 0), "isinf": (1, 0),
    "dropout": (1, 0),       # inference: identity-like; counted as one select per element when present
    # one libm call each, like tanh
    "tan": (0, 1), "acos": (0, 1), "asin": (0, 1), "atan": (0, 1), "sinh": (0, 1), "cosh": (0, 1),
    "asinh": (0, 1), "acosh": (0, 1), "atanh": (0, 1),
    "elu": (3, 1),           # x > 0 ? x : alpha * (exp(x) - 1): sub, mul, compare-select + exp
    "selu": (4, 1),          # gamma * elu(x): elu's 3, mul + exp
    "celu": (6, 1),          # max(0, x) + min(0, alpha * (exp(x / alpha) - 1)): div, sub, mul, min, max, add + exp
    "hardsigmoid": (4, 0),   # max(0, min(1, alpha * x + beta)): mul, add, min, max
    "hardswish": (5, 0),     # x * hardsigmoid(x): 4 + mul
    "softplus": (1, 2),      # log(1 + exp(x)): add + exp, log
    "mish": (2, 3),          # x * tanh(softplus(x)): softplus's 1 + 2, tanh, mul
    "softsign": (3, 0),      # x / (1 + |x|): abs, add, div
    "thresholded_relu": (1, 0),  # x > alpha ? x : 0: compare-select, as relu
    "shrink": (3, 0),        # x < -l ? x + b : x > l ? x - b : 0: two compare-selects, add or sub
    "quick_gelu": (4, 1),    # x * sigmoid(alpha * x): mul, sigmoid's 2 + exp, mul
    "bitwise_xor": (1, 0), "bitwise_shift": (1, 0),
    "quantize_linear": (5, 0),    # saturate(round(x / scale) + zero_point): div, round, add, clamp (2)
    "dequantize_linear": (2, 0),  # (q - zero_point) * scale: sub, mul
    "complex_mul": (3, 0),   # (a+bi)(c+di) on [..., 2] pairs: 4 mul + 2 add per complex = 3 per real output element
    "one_hot": (2, 0),       # out[..., j] = index == j ? on : off: compare, select
    # generators (no tensor input; the cost is per output element). A random draw counts as one op
    # (as dropout_train); Box-Muller shares log and sqrt between the two outputs of a pair.
    "random_uniform": (3, 0),    # draw, * (high - low), + low
    "random_normal": (5, 2),     # draw, 2 pi * u, product, * scale, + mean; log and sqrt (one per output), cos or sin
    "bernoulli": (2, 0),         # draw, compare with p
    "hann_window": (4, 1), "hamming_window": (4, 1),  # a0 - a1 * cos(2 pi n / N): mul, div, mul, sub + cos
    "blackman_window": (7, 2),   # a0 - a1 cos(2 pi n / N) + a2 cos(4 pi n / N): 3 for the angles, 2 mul, sub, add + 2 cos
    "mel_weight_matrix": (6, 0),  # triangular filter per (bin, mel band): 2 compares, 2 sub, div, select
}

REDUCTIONS = (
    "reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "reduce_prod", "argmax", "argmin",
    "reduce_var", "reduce_std", "reduce_any", "reduce_all", "cumsum", "reduce_logsumexp",
)

DATA_MOVEMENT = (
    "concat", "split", "slice", "pad", "transpose", "copy", "cast", "expand", "fill", "reshape_copy",
)

# Training-only elementwise ops: (flops, transcendentals) per output element, derived from the
# PyTorch kernels' formulas (g = incoming gradient, y = the forward output, x = its input).
ELEMENTWISE_TRAINING: dict[str, tuple[int, int]] = {
    "threshold_backward": (2, 0),    # relu': g if x > 0 else 0: compare, select
    "gelu_backward": (9, 2),         # g * (cdf + x * pdf): cdf = 0.5 * (1 + erf(x / sqrt 2)) (3 + erf),
                                     # pdf = exp(-0.5 * x * x) / sqrt(2 pi) (3 + exp), x * pdf, +, * g (3)
    "gelu_tanh_backward": (17, 1),   # PyTorch's tanh-form kernel: inner = b(x + k x^3) (5) + tanh,
                                     # 0.5x, 1+t, 0.5(1+t), 1-t^2 (2), b(1 + 3k x^2) (3), 2 products, sum, * g (4)
    "silu_backward": (7, 1),         # g * s * (1 + x * (1 - s)), s = sigmoid(x) (2 + exp): 1-s, x*, 1+, s*, g*
    "sigmoid_backward": (3, 0),      # g * y * (1 - y)
    "tanh_backward": (3, 0),         # g * (1 - y * y)
    "dropout_train": (4, 0),         # training dropout: one random draw (counted as 1 op), compare with p,
                                     # x * 1/(1-p), select by the mask; outputs (y, mask)
    "dropout_backward": (2, 0),      # g * mask * scale: select, multiply
}

TRAINING = (
    "attention_backward", "conv_backward", "softmax_backward", "layer_norm_backward", "batch_norm_backward",
    "embedding_backward", "max_pool_backward", "avg_pool_backward", "nll_loss", "nll_loss_backward",
    "mse_loss", "mse_loss_backward",
)

# -- op groups ----------------------------------------------------------------------------------
# Every module that treats a set of ops alike asks one of these; none keeps a list of its own.

#: Ops that run as a GEMM on a matrix unit with operands laid out in memory (cuBLAS/cuDNN/flash kernels):
#: their operand strides matter (graphperf/alignment.py) and the tile model tiles them (passes/tiling.py).
GEMM_OPS = ("matmul", "conv", "attention")
#: Op families whose matrix work has an efficiency of its own (`matrix_family`; target fields
#: matrix_efficiency, matrix_efficiency_conv, matrix_efficiency_attention); the size-aware kernel model's
#: matrix classes (graphperf/project.py `kernel_class`).
MATRIX_FAMILIES = ("matmul", "conv", "attention")
#: Ops eager PyTorch hands to a vendor library (cuBLAS, cuDNN, flash/cuDNN attention) after choosing an
#: algorithm on the host: each costs the host more than a TensorIterator kernel (graphperf/execution.py).
LIBRARY_CALL_OPS = (*GEMM_OPS, "batch_norm")
#: Matrix ops a fused epilogue can follow (passes/fuse_chains.py): their output tile is in registers.
EPILOGUE_MATRIX_OPS = frozenset(("matmul", "einsum", "conv"))
#: Ops that reduce each row and write a row-sized output (norms, softmax): one fusable row pass.
NORM_OPS = frozenset(("layer_norm", "rms_norm", "group_norm", "softmax"))
#: Reductions over trailing axes that a row kernel fuses with its pointwise producers (passes/fuse_chains.py).
ROW_REDUCTIONS = frozenset(("reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "reduce_prod", "reduce_var",
                            "reduce_std"))
#: Kernels that read whole rows (softmax, norms, reductions): the kernel model's "row" class (graphperf/kernel_time.py).
ROW_KERNEL_OPS = frozenset({*NORM_OPS, "batch_norm", *REDUCTIONS})
#: Kernels with non-vectorized index arithmetic per element (copies between layouts, casts, padding, pooling):
#: the kernel model's "strided" class (graphperf/kernel_time.py).
STRIDED_KERNEL_OPS = frozenset({"concat", "pad", "cast", "transpose", "expand", "reshape_copy", "max_pool",
                                "avg_pool", "split", "slice"})
#: Elementwise ops whose operands may broadcast: their kernel class depends on the operand shapes
#: (graphperf/kernel_time.py `stream_class`).
BROADCASTING_OPS = frozenset((*ELEMENTWISE, "pointwise"))
#: Pointwise ops: one output element from the same-index input elements (fusable into any chain).
POINTWISE_OPS = frozenset((*ELEMENTWISE, "cast"))
#: Collectives (graphperf/rules/collective.py): priced on a link, and issued by the host as a library call of
#: their own (`collective_base_us`, graphperf/execution.py).
COLLECTIVE_OPS = frozenset(("all_reduce", "all_gather", "reduce_scatter", "all_to_all"))
#: Layout ops that eager frontends (PyTorch) run as views, not copies (passes/canonicalize.py).
LAYOUT_OPS = ("transpose", "split", "slice")


def op_name(op: OpId) -> str:
    """The canonical name of `op` ("matmul"), or "" for an op of another domain (a frontend's or a user's op).

    Parameters
    ----------
    op : OpId
        A node's op.

    Returns
    -------
    str
        The name to look up in the op groups of this module.

    Example
    -------
    >>> op_name(canonical("matmul")), op_name(OpId("aten", "frobnicate"))
    ('matmul', '')
    """
    return op.name if is_canonical(op) else ""


def matrix_family(op: str, attrs: Mapping[str, Any] | None = None) -> str:
    """The op family whose matrix efficiency a node's matrix work runs at: one of `MATRIX_FAMILIES`.

    A what-if `fused` node takes its kernel's family: a flash-attention group is "attention", a group
    holding a convolution (a conv epilogue) is "conv"; everything else is "matmul".

    Example
    -------
    >>> matrix_family("conv"), matrix_family("fused", {"kernel": "flash_attention"}), matrix_family("einsum")
    ('conv', 'attention', 'matmul')
    """
    if op == "fused" and attrs is not None:
        if attrs.get("kernel") == "flash_attention":
            return "attention"
        members = attrs.get("member_ops") or ()
        for family in ("conv", "attention"):
            if family in members:
                return family
        return "matmul"
    return op if op in MATRIX_FAMILIES else "matmul"

_OTHERS = (
    "matmul", "einsum", "conv", "attention", "softmax",
    "layer_norm", "rms_norm", "batch_norm", "group_norm",
    "max_pool", "avg_pool", "topk", "sort", "gather", "scatter", "view", "fused",
    "linalg",  # MLIR level (graphperf/mlir/): one rule from iteration domain, body and indexing maps
    "quantized_matmul", "rnn", "fft", "interpolate", "rotary", "lrn", "det", "inverse", "nonzero", "multinomial",
    "pointwise", "grouped_matmul",
    "all_reduce", "all_gather", "reduce_scatter", "all_to_all",  # collectives (graphperf/rules/collective.py)
)

CANONICAL: frozenset[str] = frozenset((*ELEMENTWISE, *REDUCTIONS, *DATA_MOVEMENT, *_OTHERS, *ELEMENTWISE_TRAINING,
                                       *TRAINING))

_CACHE: dict[str, OpId] = {}


def canonical(name: str) -> OpId:
    """The canonical OpId called `name`; KeyError if graphperf has no such canonical op.

    Parameters
    ----------
    name : str
        A canonical op name (the module docstring lists them: ``"matmul"``, ``"softmax"``, ``"add"``, ...).

    Returns
    -------
    OpId
        ``OpId("graphperf", name)``, the same object on every call.

    Raises
    ------
    KeyError
        `name` is not a canonical op.

    Example
    -------
    >>> import graphperf
    >>> op = graphperf.canonical("matmul")
    >>> op.domain, op.name, op is graphperf.canonical("matmul")
    ('graphperf', 'matmul', True)
    >>> graphperf.canonical("frobnicate")
    Traceback (most recent call last):
    ...
    KeyError: "'frobnicate' is not a canonical graphperf op"
    """
    if name not in CANONICAL:
        raise KeyError(f"{name!r} is not a canonical graphperf op")
    op = _CACHE.get(name)
    if op is None:
        op = _CACHE[name] = OpId(DOMAIN, name)
    return op


def is_canonical(op: OpId) -> bool:
    """Whether `op` is one of graphperf's canonical ops (domain ``"graphperf"`` and a known name)."""
    """True when `op` is one of graphperf's canonical ops (domain "graphperf", a name in `CANONICAL`)."""
    return op.domain == DOMAIN and op.name in CANONICAL
