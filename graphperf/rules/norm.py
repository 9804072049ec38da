"""Cost rules for layer_norm, rms_norm, batch_norm (inference and batch-statistics), group_norm and lrn.

Guarantees: the per-element and per-row counts derived below, with n = numel(x); one rsqrt
(transcendental) per normalised row (per channel for batch_norm); the affine weight and bias
each add one flop per element when present; bytes are every input read once (x, weight, bias,
statistics) and every output written once. A missing/inconsistent `norm_numel` or
`num_groups`, or an x without a channel axis, raises `ValueError`.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from ..cost import Cost
from ..errors import RuleError
from ..ir import TensorType
from ._common import int_attr, operand, optional, out0, read_bytes, written_bytes
from .registry import register

__all__ = ["layer_norm_rule", "rms_norm_rule", "batch_norm_rule", "group_norm_rule", "lrn_rule",
           "NORM_FLOPS_PER_ELEMENT", "NORM_FLOPS_PER_ROW", "RMS_FLOPS_PER_ELEMENT", "RMS_FLOPS_PER_ROW"]

# layer_norm over rows of D elements, y = (x - mean) * rsqrt(var + eps) [* w] [+ b]:
#   per element: sum for the mean (1 add), x - mean (1 sub), square (1 mul), sum of squares
#                (1 add), times rstd (1 mul)                              -> 5
#   per row:     mean = sum / D (1 div), var = sumsq / D (1 div), var + eps (1 add) -> 3,
#                rstd = rsqrt(var + eps)                                   -> 1 transcendental
#   affine:      weight (1 mul per element), bias (1 add per element), each only when present.
NORM_FLOPS_PER_ELEMENT = 5
NORM_FLOPS_PER_ROW = 3
# rms_norm over rows of D elements, y = x * rsqrt(mean(x^2) + eps) [* w]:
#   per element: square (1 mul), sum (1 add), times rstd (1 mul)          -> 3
#   per row:     / D (1 div), + eps (1 add) -> 2, rsqrt -> 1 transcendental
#   affine:      weight (1 mul per element) when present.
RMS_FLOPS_PER_ELEMENT = 3
RMS_FLOPS_PER_ROW = 2


def _affine(*params: Optional[TensorType]) -> int:
    return sum(1 for p in params if p is not None)


def _rows(op: str, x: TensorType, row: int, what: str) -> int:
    if row <= 0 or x.numel % row:
        raise RuleError(f"{op}: {what}={row} does not divide numel {x.numel} of x {x}")
    return x.numel // row


@register("layer_norm")
def layer_norm_rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType], attrs: Mapping[str, Any]) -> Cost:
    x = operand("layer_norm", ins, 0, "x")
    out0("layer_norm", outs)
    rows = _rows("layer_norm", x, int_attr("layer_norm", attrs, "norm_numel", 1), "norm_numel")
    per_elem = NORM_FLOPS_PER_ELEMENT + _affine(optional(ins, 1), optional(ins, 2))
    return Cost(per_elem * x.numel + NORM_FLOPS_PER_ROW * rows, 0, rows, read_bytes(ins), written_bytes(outs))


@register("rms_norm")
def rms_norm_rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType], attrs: Mapping[str, Any]) -> Cost:
    x = operand("rms_norm", ins, 0, "x")
    out0("rms_norm", outs)
    rows = _rows("rms_norm", x, int_attr("rms_norm", attrs, "norm_numel", 1), "norm_numel")
    per_elem = RMS_FLOPS_PER_ELEMENT + _affine(optional(ins, 1))
    return Cost(per_elem * x.numel + RMS_FLOPS_PER_ROW * rows, 0, rows, read_bytes(ins), written_bytes(outs))


# batch_norm, x [N, C, *spatial], channel axis 1.
# Inference (running_mean and running_var given), y = (x - mean) * rsqrt(var + eps) [* w] [+ b]:
#   per element: x - mean (1), times rstd (1), [* w (1)], [+ b (1)]        -> 2 + affine
#   per channel: var + eps (1 add), rsqrt (1 transcendental)
# (A kernel may fold w * rstd and b - mean * w * rstd per channel first, leaving 2 per element;
# we count the formula as written, like the unfused graph does.)
# Batch statistics (no running stats: training-mode batch_norm): each channel is a row of
# N * prod(spatial) elements normalised like layer_norm: 5 per element + 3 per channel,
# 1 rsqrt per channel, + affine. (Updating running stats is not counted.)
@register("batch_norm")
def batch_norm_rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType], attrs: Mapping[str, Any]) -> Cost:
    x = operand("batch_norm", ins, 0, "x")
    out0("batch_norm", outs)
    if x.rank < 2:
        raise RuleError(f"batch_norm: x must be [N, C, *spatial], got {x}")
    c = x.shape[1]
    affine = _affine(optional(ins, 1), optional(ins, 2))
    mean, var = optional(ins, 3), optional(ins, 4)
    if (mean is None) != (var is None):
        raise RuleError("batch_norm: give both running_mean and running_var, or neither")
    if mean is not None:
        flops = (2 + affine) * x.numel + c
    else:
        flops = (NORM_FLOPS_PER_ELEMENT + affine) * x.numel + NORM_FLOPS_PER_ROW * c
    return Cost(flops, 0, c, read_bytes(ins), written_bytes(outs))


# group_norm, x [N, C, *spatial], attrs num_groups = G: each sample's C/G channels of a group
# form one row, so rows = N * G of numel / (N * G) elements, counted exactly like layer_norm:
# 5 per element + 3 per row, 1 rsqrt per row; the per-channel weight and bias add 1 each.
@register("group_norm")
def group_norm_rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType], attrs: Mapping[str, Any]) -> Cost:
    x = operand("group_norm", ins, 0, "x")
    out0("group_norm", outs)
    g = int_attr("group_norm", attrs, "num_groups", 1)
    if x.rank < 2 or x.shape[1] % g:
        raise RuleError(f"group_norm: x must be [N, C, *spatial] with C divisible by num_groups={g}, got {x}")
    rows = x.shape[0] * g
    per_elem = NORM_FLOPS_PER_ELEMENT + _affine(optional(ins, 1), optional(ins, 2))
    return Cost(per_elem * x.numel + NORM_FLOPS_PER_ROW * rows, 0, rows, read_bytes(ins), written_bytes(outs))


# lrn (local response normalization) over channels, x [N, C, ...], window of `size` channels:
#   y = x / (bias + alpha / size * sum_{window} x^2) ** beta
#   per element: the window's squares and their sum (size mul + size add), the scale (mul, add),
#   the power (1 transcendental: exp(beta * log s) counted once, as pow) and the divide (1)
#   -> 2 * size + 3 flops, 1 transcendental.
@register("lrn")
def lrn_rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType], attrs: Mapping[str, Any]) -> Cost:
    x = operand("lrn", ins, 0, "x")
    out0("lrn", outs)
    size = int_attr("lrn", attrs, "size", 1)
    if x.rank < 2:
        raise RuleError(f"lrn: x must be [N, C, ...], got {x}")
    return Cost((2 * size + 3) * x.numel, 0, x.numel, read_bytes(ins), written_bytes(outs))
