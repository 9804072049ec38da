"""Cost rules for reductions (`graphperf.ops.REDUCTIONS`), softmax/log_softmax, topk, sort, nonzero and
multinomial (the scans and searches).

Guarantees: the per-element and per-row counts derived below, with n = numel(input) and
m = numel(output); compares count as flops; bytes are every input read once and every output
written once (topk/sort write values and indices). Missing inputs, bad axes and a missing or
out-of-range topk `k` raise `ValueError`.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from ..cost import Cost
from ..errors import RuleError
from ..ir import TensorType
from ._common import axis_of, int_attr, operand, out0, read_bytes, written_bytes
from .registry import Rule, register

__all__ = ["reduce_rule", "mean_rule", "var_rule", "std_rule", "softmax_rule", "topk_rule", "sort_rule",
           "logsumexp_rule", "nonzero_rule", "multinomial_rule"]


# Reductions: one op (add, multiply, compare, logical and/or) per input element, n flops. The
# first element of each output is strictly a load, not an op (n - m); like FlopCounterMode's
# "2MKN" for matmul we count the uniform n. argmax/argmin: n compares. cumsum: n adds.
def reduce_rule(op: str) -> Rule:
    """The one-op-per-input-element rule for `op`."""

    def rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType], attrs: Mapping[str, Any]) -> Cost:
        x = operand(op, ins, 0, "x")
        out0(op, outs)
        return Cost(x.numel, 0, 0, read_bytes(ins), written_bytes(outs))

    rule.__name__ = rule.__qualname__ = f"{op}_rule"
    return rule


for _op in ("reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "reduce_any", "reduce_all",
            "argmax", "argmin", "cumsum"):
    register(_op)(reduce_rule(_op))


# mean: the sum (n adds) and one divide per output element (m): n + m.
@register("reduce_mean")
def mean_rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType], attrs: Mapping[str, Any]) -> Cost:
    x = operand("reduce_mean", ins, 0, "x")
    return Cost(x.numel + out0("reduce_mean", outs).numel, 0, 0, read_bytes(ins), written_bytes(outs))


# var, two-pass (what torch and numpy compute; one-pass Welford does more per element):
#   pass 1, mean:      n adds + m divides
#   pass 2, variance:  n subtracts (x - mean) + n squares + n adds + m divides (by N - correction)
#   total:             4n + 2m flops, 0 transcendentals.
# std: var + one sqrt per output element, m transcendentals.
def _var(op: str, ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType], sqrt: bool) -> Cost:
    n = operand(op, ins, 0, "x").numel
    m = out0(op, outs).numel
    return Cost(4 * n + 2 * m, 0, m if sqrt else 0, read_bytes(ins), written_bytes(outs))


@register("reduce_var")
def var_rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType], attrs: Mapping[str, Any]) -> Cost:
    return _var("reduce_var", ins, outs, sqrt=False)


@register("reduce_std")
def std_rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType], attrs: Mapping[str, Any]) -> Cost:
    return _var("reduce_std", ins, outs, sqrt=True)


def _row(op: str, x: TensorType, attrs: Mapping[str, Any]) -> tuple[int, int]:
    """(rows, row length) of `x` along attrs axis (default -1); a 0-D x is one row of one."""
    if x.rank == 0:
        return 1, 1
    d = x.shape[axis_of(op, attrs, x.rank)]
    return (x.numel // d if d else 0), d


# softmax over an axis of length D, rows = n / D, numerically stable form:
#   max over the row (1 compare/elem), x - max (1), exp (1 transcendental), sum (1 add),
#   divide by the sum (1)                          -> 4n flops, n transcendentals.
# log_softmax (attrs log=True): x - max - log(sum(exp(x - max))):
#   max (1), x - max (1), exp (1 transcendental), sum (1), log of the sum (1 transcendental per
#   row), (x - max) - logsum (1)                   -> 4n flops, n + rows transcendentals.
@register("softmax")
def softmax_rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType], attrs: Mapping[str, Any]) -> Cost:
    x = operand("softmax", ins, 0, "x")
    out0("softmax", outs)
    rows, _ = _row("softmax", x, attrs)
    trans = x.numel + (rows if attrs.get("log") else 0)
    return Cost(4 * x.numel, 0, trans, read_bytes(ins), written_bytes(outs))


# topk(k) per row of length D: a bounded binary heap of the k best seen so far. Each of the D
# elements is compared with the heap root and, in the worst case, sifted down its depth,
# k.bit_length() = floor(log2 k) + 1 levels, one compare per level:
#     flops = rows * D * k.bit_length()     (k = 1 gives D compares: exactly argmax)
# Ordering the k winners (k pops, at most k.bit_length() compares each) is not added: it is a
# k/D fraction of the worst-case scan, which already bounds the typical scan from above.
@register("topk")
def topk_rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType], attrs: Mapping[str, Any]) -> Cost:
    x = operand("topk", ins, 0, "x")
    out0("topk", outs)
    k = int_attr("topk", attrs, "k", minimum=0)
    rows, d = _row("topk", x, attrs)
    if k > d:
        raise RuleError(f"topk: k={k} exceeds the axis length {d} of {x}")
    return Cost(rows * d * k.bit_length(), 0, 0, read_bytes(ins), written_bytes(outs))


# sort per row of length D: a comparison sort needs ceil(log2 D!) ~ D log2 D compares; merge sort
# does at most D * ceil(log2 D). We count that bound, with ceil(log2 D) = (D - 1).bit_length():
#     flops = rows * D * ceil(log2 D)      (D = 1: 0; D = 2: 2; D = 1024: 10 * 1024 per row)
# GPU radix sorts do O(D) passes over the key bits instead; the comparison count is the
# portable, dtype-independent convention.
@register("sort")
def sort_rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType], attrs: Mapping[str, Any]) -> Cost:
    x = operand("sort", ins, 0, "x")
    out0("sort", outs)
    rows, d = _row("sort", x, attrs)
    return Cost(rows * d * (d - 1).bit_length() if d else 0, 0, 0, read_bytes(ins), written_bytes(outs))


# logsumexp over the reduced axes, numerically stable: max (1 compare per element), x - max (1),
# exp (1 transcendental), sum (1 add); per output element: log (1 transcendental), + max (1):
#     flops = 3n + m, transcendentals = n + m.
@register("reduce_logsumexp")
def logsumexp_rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType], attrs: Mapping[str, Any]) -> Cost:
    n = operand("reduce_logsumexp", ins, 0, "x").numel
    m = out0("reduce_logsumexp", outs).numel
    return Cost(3 * n + m, 0, n + m, read_bytes(ins), written_bytes(outs))


# nonzero: one compare per element, and a prefix sum over the hits that gives each its output row
# (one add per element): 2n flops; it writes the index tensor.
@register("nonzero")
def nonzero_rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType], attrs: Mapping[str, Any]) -> Cost:
    n = operand("nonzero", ins, 0, "x").numel
    out0("nonzero", outs)
    return Cost(2 * n, 0, 0, read_bytes(ins), written_bytes(outs))


# multinomial from log-probabilities x [B, C], out [B, S] samples. Per row: exp (C transcendentals)
# and a running sum (C adds) build the cumulative distribution; per sample: one draw (counted as one
# op, as dropout_train) and a binary search of ceil(log2 C) compares:
#     flops = B*C + B*S*(1 + ceil(log2 C)), transcendentals = B*C.
@register("multinomial")
def multinomial_rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType], attrs: Mapping[str, Any]) -> Cost:
    x = operand("multinomial", ins, 0, "x")
    out = out0("multinomial", outs)
    if x.rank != 2 or out.rank != 2 or out.shape[0] != x.shape[0]:
        raise RuleError(f"multinomial: expected x [B, C] and out [B, samples], got x {x} and out {out}")
    classes = x.shape[1]
    search = 1 + (classes - 1).bit_length()
    return Cost(x.numel + out.numel * search, 0, x.numel, read_bytes(ins), written_bytes(outs))
