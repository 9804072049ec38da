"""Cost rules for training graphs: backward ops, losses and training-mode dropout (aot_autograd graphs).

Guarantees:
- `attention_backward` and `conv_backward` count their matrix work as the matmuls/convolutions a
  kernel runs (derivations below); for non-causal attention and ungrouped convolution the matrix
  FLOPs equal FlopCounterMode's `sdpa_backward_flop_count` / `conv_backward_flop`. Causal
  attention halves the score work (the forward convention); FlopCounterMode counts grouped
  convolution weight gradients `groups` times over, we count the dense work once.
- Elementwise training ops cost the per-element figures of `graphperf.ops.ELEMENTWISE_TRAINING`.
- Bytes: every input read once, every output written once (one unfused kernel per node), except
  `nll_loss`, which reads only the gathered logits (the gather convention).
- `output_mask` attributes decide which gradients a node computes; its outputs must match them.
Shapes or attributes a rule cannot interpret raise `ValueError` naming the op.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from ..cost import Cost
from ..dtypes import itemsize_bits
from ..errors import RuleError
from ..ir import TensorType
from ..ops import ELEMENTWISE_TRAINING
from ._common import axis_of, int_attr, operand, optional, out0, read_bytes, written_bytes
from .attention import _heads
from .conv import conv_rule
from .elementwise import elementwise_rule
from .pooling import _taps
from .registry import register

__all__ = ["ATTENTION_BACKWARD_VECTOR_FLOPS_PER_SCORE", "REDUCTIONS", "output_mask"]

Ins = Sequence[Optional[TensorType]]
Outs = Sequence[TensorType]

for _name, (_flops, _trans) in ELEMENTWISE_TRAINING.items():
    register(_name)(elementwise_rule(_name, _flops, _trans))

REDUCTIONS = ("mean", "sum", "none")


def output_mask(op: str, attrs: Mapping[str, Any], outs: Outs, size: int = 3) -> tuple[bool, ...]:
    """The node's `output_mask` (default all True), checked against the outputs it has."""
    mask = attrs.get("output_mask", (True,) * size)
    if not isinstance(mask, (tuple, list)) or len(mask) != size or not all(isinstance(m, bool) for m in mask):
        raise RuleError(f"{op}: output_mask={mask!r} must be {size} bools")
    if sum(mask) != len(outs) or not outs:
        raise RuleError(f"{op}: output_mask {tuple(mask)} asks for {sum(mask)} gradient(s), node has {len(outs)}")
    return tuple(mask)


def _reduction(op: str, attrs: Mapping[str, Any]) -> str:
    r = attrs.get("reduction", "mean")
    if r not in REDUCTIONS:
        raise RuleError(f"{op}: reduction={r!r} is not one of {REDUCTIONS}")
    return r


# attention_backward (FlashAttention-style, as the CPU/flash/efficient kernels run it), per batch
# and query head, with P the L x S attention probabilities and D_i = rowsum(dO_i * O_i):
#   recompute S = Q K^T        : 2*L*S*E   (matrix)
#   dV = P^T dO                : 2*L*S*Ev  (matrix)
#   dP = dO V^T                : 2*L*S*Ev  (matrix)
#   dQ = dS K                  : 2*L*S*E   (matrix)
#   dK = dS^T Q                : 2*L*S*E   (matrix)   -> 2*L*S*(3E + 2Ev), 2.5x the forward when E = Ev
#   per score: P = exp(scale * s - lse) (scale, subtract + 1 exp), dS = P * (dP - D) (subtract,
#   multiply), the softmax scale on dS (multiply) -> 4 flops + 1 transcendental; a mask adds 1
#   per row: D = rowsum(dO * O) -> 2*Ev
# Causal: exactly half of everything that scales with the scores (as in the forward); D is not
# halved. Grouped-query K/V: every query head does its own work (dK/dV accumulate across the
# group inside the matmuls), so the count uses the query heads.
ATTENTION_BACKWARD_VECTOR_FLOPS_PER_SCORE = 4


@register("attention_backward")
def attention_backward_rule(ins: Ins, outs: Outs, attrs: Mapping[str, Any]) -> Cost:
    op = "attention_backward"
    operand(op, ins, 0, "grad_out")
    q, k, v = operand(op, ins, 1, "q"), operand(op, ins, 2, "k"), operand(op, ins, 3, "v")
    out0(op, outs)
    try:
        bh, l, s, e, ev = _heads(q, k, v, attrs)
    except ValueError as exc:
        raise RuleError(f"{op}: {str(exc).removeprefix('attention: ')}") from None
    scores = bh * l * s
    matrix = 2 * scores * (3 * e + 2 * ev)
    per_score = (ATTENTION_BACKWARD_VECTOR_FLOPS_PER_SCORE + (1 if optional(ins, 6) is not None else 0)) * scores
    trans = scores
    if attrs.get("is_causal"):
        matrix, per_score, trans = matrix // 2, (per_score + 1) // 2, (trans + 1) // 2
    vector = per_score + 2 * bh * l * ev
    return Cost(matrix + vector, matrix, trans, read_bytes(ins), written_bytes(outs))


# conv_backward (grad_out, x, w) -> (grad_input, grad_weight, grad_bias) as output_mask selects:
#   grad_input  = conv_transpose(grad_out, w): every multiply-add of the forward once more
#                 -> the forward's 2 * N * Cout * prod(out_spatial) * (Cin/groups) * prod(k)
#   grad_weight = conv(x, grad_out) over the batch: again every forward multiply-add once
#                 -> the same count (FlopCounterMode multiplies this term by groups)
#   grad_bias   = sum of grad_out over batch and space: numel(grad_out) adds (vector)
# The forward count comes from the conv rule with grad_out standing for the forward output.
@register("conv_backward")
def conv_backward_rule(ins: Ins, outs: Outs, attrs: Mapping[str, Any]) -> Cost:
    op = "conv_backward"
    grad_out = operand(op, ins, 0, "grad_out")
    x, w = operand(op, ins, 1, "x"), operand(op, ins, 2, "w")
    mask = output_mask(op, attrs, outs)
    try:
        forward = conv_rule([x, w], [grad_out], {"transposed": bool(attrs.get("transposed"))}).matrix_flops
    except ValueError as exc:
        raise RuleError(f"{op}: {str(exc).removeprefix('conv: ')}") from None
    matrix = forward * (int(mask[0]) + int(mask[1]))
    vector = grad_out.numel if mask[2] else 0
    return Cost(matrix + vector, matrix, 0, read_bytes(ins), written_bytes(outs))


# softmax_backward (grad_out g, out y) along `axis`:
#   softmax:     dx = y * (g - sum(g * y)): g*y, row sum, subtract, multiply -> 4 per element
#   log_softmax: dx = g - exp(y) * sum(g): row sum, exp, multiply, subtract -> 3 per element + 1 exp
@register("softmax_backward")
def softmax_backward_rule(ins: Ins, outs: Outs, attrs: Mapping[str, Any]) -> Cost:
    op = "softmax_backward"
    operand(op, ins, 0, "grad_out")
    y = operand(op, ins, 1, "out")
    n = out0(op, outs).numel
    axis_of(op, attrs, y.rank)
    if attrs.get("log"):
        return Cost(3 * n, 0, n, read_bytes(ins), written_bytes(outs))
    return Cost(4 * n, 0, 0, read_bytes(ins), written_bytes(outs))


# Normalisation backward, n elements in r rows (layer_norm: rows of norm_numel; batch_norm with
# batch statistics: one row per channel), xhat = (x - mean) * rstd from the saved statistics:
#   xhat (needed by grad_input and grad_weight)            : 2 per element (subtract, multiply)
#   grad_input  dx = rstd * (g - a - xhat * b), g = dy * w, a = mean(g), b = mean(g * xhat):
#               dy*w (1, with a weight), sum g (1), g*xhat (1), its sum (1), xhat*b (1), two
#               subtracts (2), * rstd (1) -> 7 (+1) per element; a and b divide once per row (2)
#   grad_weight sum over rows of dy * xhat                  : 2 per element
#   grad_bias   sum over rows of dy                         : 1 per element
NORM_BACKWARD_INPUT_PER_ELEMENT = 7
NORM_BACKWARD_INPUT_PER_ROW = 2


def _norm_backward(mask: tuple[bool, ...], n: int, rows: int, weight: bool) -> int:
    flops = 2 * n if (mask[0] or mask[1]) else 0
    if mask[0]:
        flops += (NORM_BACKWARD_INPUT_PER_ELEMENT + (1 if weight else 0)) * n + NORM_BACKWARD_INPUT_PER_ROW * rows
    if mask[1]:
        flops += 2 * n
    if mask[2]:
        flops += n
    return flops


@register("layer_norm_backward")
def layer_norm_backward_rule(ins: Ins, outs: Outs, attrs: Mapping[str, Any]) -> Cost:
    op = "layer_norm_backward"
    operand(op, ins, 0, "grad_out")
    x = operand(op, ins, 1, "x")
    mask = output_mask(op, attrs, outs)
    d = int_attr(op, attrs, "norm_numel", 1)
    if x.numel % d:
        raise RuleError(f"{op}: norm_numel={d} does not divide numel {x.numel} of x {x}")
    flops = _norm_backward(mask, x.numel, x.numel // d, optional(ins, 4) is not None)
    return Cost(flops, 0, 0, read_bytes(ins), written_bytes(outs))


# batch_norm_backward, x [N, C, *spatial]:
#   training (batch statistics): the normalisation backward above with one row per channel.
#   inference (running statistics, constants to the gradient): rstd = rsqrt(var + eps) once per
#   channel (1 add + 1 rsqrt, when grad_input or grad_weight is asked for);
#   grad_input dx = dy * (w * rstd): w * rstd per channel (with a weight), 1 multiply per element;
#   grad_weight sum(dy * xhat): xhat 2 + multiply-accumulate 2 per element; grad_bias 1 per element.
@register("batch_norm_backward")
def batch_norm_backward_rule(ins: Ins, outs: Outs, attrs: Mapping[str, Any]) -> Cost:
    op = "batch_norm_backward"
    operand(op, ins, 0, "grad_out")
    x = operand(op, ins, 1, "x")
    mask = output_mask(op, attrs, outs)
    if x.rank < 2:
        raise RuleError(f"{op}: x must be [N, C, *spatial], got {x}")
    n, c, weight = x.numel, x.shape[1], optional(ins, 2) is not None
    if attrs.get("training"):
        return Cost(_norm_backward(mask, n, c, weight), 0, 0, read_bytes(ins), written_bytes(outs))
    stats = mask[0] or mask[1]
    flops = c if stats else 0
    if mask[0]:
        flops += n + (c if weight else 0)
    if mask[1]:
        flops += 4 * n
    if mask[2]:
        flops += n
    return Cost(flops, 0, c if stats else 0, read_bytes(ins), written_bytes(outs))


# embedding_backward: the dense [V, D] weight gradient; every gathered row of grad_out is added
# into its row (one add per grad_out element). The gradient is written once (zero-initialised
# and accumulated in place); grad_out and the indices are read once.
@register("embedding_backward")
def embedding_backward_rule(ins: Ins, outs: Outs, attrs: Mapping[str, Any]) -> Cost:
    op = "embedding_backward"
    g = operand(op, ins, 0, "grad_out")
    idx = operand(op, ins, 1, "indices")
    out = out0(op, outs)
    if out.rank != 2 or g.rank != idx.rank + 1 or g.shape[-1] != out.shape[1]:
        raise RuleError(f"{op}: expected grad_out [..., D], indices [...], out [V, D]; got {g}, {idx}, {out}")
    return Cost(g.numel, 0, 0, read_bytes(ins), written_bytes(outs))


# max_pool_backward: each grad_out element is added at its argmax (windows may overlap): one add
# per grad_out element; grad_input is zero-initialised and written once.
@register("max_pool_backward")
def max_pool_backward_rule(ins: Ins, outs: Outs, attrs: Mapping[str, Any]) -> Cost:
    g = operand("max_pool_backward", ins, 0, "grad_out")
    operand("max_pool_backward", ins, 1, "indices")
    out0("max_pool_backward", outs)
    return Cost(g.numel, 0, 0, read_bytes(ins), written_bytes(outs))


# avg_pool_backward: each grad_out element is divided by its window (1) and added to its w taps
# (w adds): the forward's count mirrored, m * (w + 1) with m = numel(grad_out).
@register("avg_pool_backward")
def avg_pool_backward_rule(ins: Ins, outs: Outs, attrs: Mapping[str, Any]) -> Cost:
    g = operand("avg_pool_backward", ins, 0, "grad_out")
    out = out0("avg_pool_backward", outs)
    return Cost(g.numel * (_taps("avg_pool_backward", out, attrs) + 1), 0, 0, read_bytes(ins), written_bytes(outs))


def _loss_rows(op: str, x: TensorType) -> int:
    """Rows of a [N, C] (or [C]) score tensor."""
    if x.rank not in (1, 2) or x.shape[-1] == 0:
        raise RuleError(f"{op}: expected scores [N, C] or [C], got {x}")
    return x.shape[0] if x.rank == 2 else 1


def _row_bytes(rows: int, t: TensorType) -> int:
    """Bytes of `rows` single elements of `t` (the gathered scores or class weights)."""
    return (rows * itemsize_bits(t.dtype) + 7) // 8


# nll_loss over r rows of x [N, C]: per row pick -x[target] (1 negate), times weight[target]
# (1, with class weights), add to the total (1, unless reduction="none"); "mean" also sums the
# weights (1 per row) and divides once. Reads only the r gathered scores (and weights).
@register("nll_loss")
def nll_loss_rule(ins: Ins, outs: Outs, attrs: Mapping[str, Any]) -> Cost:
    op = "nll_loss"
    x = operand(op, ins, 0, "x")
    target = operand(op, ins, 1, "target")
    out0(op, outs)
    red, weight = _reduction(op, attrs), optional(ins, 2)
    r = _loss_rows(op, x)
    per_row = 1 + (weight is not None) + (red != "none") + (red == "mean")
    read = _row_bytes(r, x) + target.nbytes + (_row_bytes(r, weight) if weight is not None else 0)
    return Cost(per_row * r + (red == "mean"), 0, 0, read, written_bytes(outs))


# nll_loss_backward: grad_input [N, C] is zero-filled and gets -g (1) [* weight[target] (1)]
# [/ total_weight (1, "mean")] at each row's target.
@register("nll_loss_backward")
def nll_loss_backward_rule(ins: Ins, outs: Outs, attrs: Mapping[str, Any]) -> Cost:
    op = "nll_loss_backward"
    operand(op, ins, 0, "grad_out")
    operand(op, ins, 1, "target")
    out = out0(op, outs)
    red = _reduction(op, attrs)
    r = _loss_rows(op, out)
    per_row = 1 + (optional(ins, 2) is not None) + (red == "mean")
    return Cost(per_row * r, 0, 0, read_bytes(ins), written_bytes(outs))


# mse_loss over n elements: subtract, square (2 per element); reduced: add to the total (1 per
# element), "mean" divides once.
@register("mse_loss")
def mse_loss_rule(ins: Ins, outs: Outs, attrs: Mapping[str, Any]) -> Cost:
    x = operand("mse_loss", ins, 0, "x")
    operand("mse_loss", ins, 1, "target")
    out0("mse_loss", outs)
    red = _reduction("mse_loss", attrs)
    n = x.numel
    return Cost((2 + (red != "none")) * n + (red == "mean"), 0, 0, read_bytes(ins), written_bytes(outs))


# mse_loss_backward: dx = g * 2 * (x - target) [/ n]: subtract, * 2, * g (3), "mean" 1 divide.
@register("mse_loss_backward")
def mse_loss_backward_rule(ins: Ins, outs: Outs, attrs: Mapping[str, Any]) -> Cost:
    operand("mse_loss_backward", ins, 0, "grad_out")
    operand("mse_loss_backward", ins, 1, "x")
    operand("mse_loss_backward", ins, 2, "target")
    n = out0("mse_loss_backward", outs).numel
    red = _reduction("mse_loss_backward", attrs)
    return Cost((3 + (red == "mean")) * n, 0, 0, read_bytes(ins), written_bytes(outs))
