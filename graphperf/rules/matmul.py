"""Cost rules for matmul (mm, bmm, addmm, linear, Gemm, ...), einsum and quantized_matmul (weights stored
quantized and dequantized in the kernel).

Guarantees: `matrix_flops` is exactly FlopCounterMode's count for the same matmul/einsum
(2 per multiply-add); the bias of a matmul adds `numel(out)` vector flops; bytes are every input
read once and every output written once. Shapes the rule cannot interpret raise `ValueError`.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any, Mapping, Optional, Sequence

from ..cost import Cost
from ..errors import RuleError
from ..ir import TensorType
from ._common import operand, optional, out0, read_bytes, written_bytes
from .registry import register

__all__ = ["matmul_rule", "matmul_dims", "grouped_matmul_rule", "einsum_rule", "quantized_matmul_rule"]


# matmul: out[..., m, n] = sum_k op(a)[..., m, k] * op(b)[..., k, n] (+ bias[..., m, n]).
# Each output element is a dot product of length K: K multiplies and K adds (the first add is
# into zero, as FlopCounterMode counts it), so flops = 2 * numel(out) * K. numel(out) already
# holds the broadcast batch dims and M and N (or just N for a 1-D `a`, just M for a 1-D `b`).
# K is read off `a`: a.shape[-2] if trans_a else a.shape[-1]; a 1-D `a` is a [K] vector.
# `b` must agree: b.shape[-1] if trans_b else b.shape[-2] (b.shape[0] for a 1-D `b`).
# A bias (addmm, linear, Gemm's C) is one add per output element, on the vector unit; Gemm's
# alpha/beta scalings are not counted (they are 1.0 in every captured model we know).
def matmul_dims(a: TensorType, b: TensorType, attrs: Mapping[str, Any]) -> tuple[int, int, int]:
    """(M, N, K) of one matmul of `a` and `b` under `attrs` (trans_a, trans_b): the one reading of a matmul's
    shapes, shared by the cost rule and the tile model (passes/tiling.py). A 1-D `a` gives M = 1, a 1-D `b`
    N = 1. RuleError for a rank-0 operand or contraction sizes that differ."""
    if a.rank == 0 or b.rank == 0:
        raise RuleError(f"matmul: operands must have rank >= 1, got a {a} and b {b}")
    if a.rank == 1:
        m, k = 1, a.shape[0]
    else:
        m, k = (a.shape[-1], a.shape[-2]) if attrs.get("trans_a") else (a.shape[-2], a.shape[-1])
    if b.rank == 1:
        n, k_b = 1, b.shape[0]
    else:
        n, k_b = (b.shape[-2], b.shape[-1]) if attrs.get("trans_b") else (b.shape[-1], b.shape[-2])
    if k != k_b:
        raise RuleError(f"matmul: contraction sizes differ: a {a} gives K={k}, b {b} gives K={k_b}")
    return m, n, k


@register("matmul")
def matmul_rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType], attrs: Mapping[str, Any]) -> Cost:
    a = operand("matmul", ins, 0, "a")
    b = operand("matmul", ins, 1, "b")
    out = out0("matmul", outs)
    _, _, k = matmul_dims(a, b, attrs)
    matrix = 2 * out.numel * k
    bias = optional(ins, 2)
    vector = out.numel if bias is not None else 0
    return Cost(matrix + vector, matrix, 0, read_bytes(ins), written_bytes(outs))


# grouped_matmul: one matmul per group (MoE experts). Each output element is still a dot product over
# its group's K, so as for matmul flops = 2 * numel(out) * K, all on the matrix unit:
#   a [S, K]    @ b [G, K, N] -> [S, N]     each row of a (a token, sorted by expert) times its group's [K, N]
#   a [G, M, K] @ b [G, K, N] -> [G, M, N]  a batched matmul
#   a [M, Ktot] @ b [Ktot, N] -> [G, M, N]  K split by offsets: group g sums over its K_g, and
#                                           sum_g K_g = Ktot, so flops = 2 * (numel(out) / G) * Ktot
# Bytes: every input read once (each group's weights loaded once), the output written once.
@register("grouped_matmul")
def grouped_matmul_rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType],
                        attrs: Mapping[str, Any]) -> Cost:
    a = operand("grouped_matmul", ins, 0, "a")
    b = operand("grouped_matmul", ins, 1, "b")
    out = out0("grouped_matmul", outs)
    if a.rank not in (2, 3) or b.rank not in (2, 3):
        raise RuleError(f"grouped_matmul: operands must be 2-D or 3-D, got a {a} and b {b}")
    k = a.shape[-1]
    if b.shape[-2] != k:
        raise RuleError(f"grouped_matmul: contraction sizes differ: a {a} gives K={k}, b {b} gives K={b.shape[-2]}")
    if a.rank == 2 and b.rank == 2:  # K split into the groups of the output's first dimension
        if out.rank != 3 or out.shape[0] == 0:
            raise RuleError(f"grouped_matmul: a 2-D x 2-D grouped matmul writes [G, M, N], got {out}")
        matrix = 2 * (out.numel // out.shape[0]) * k
    else:
        matrix = 2 * out.numel * k
    return Cost(matrix, matrix, 0, read_bytes(ins), written_bytes(outs))


# einsum.
# One operand: a permutation (or a diagonal, "ii->i") is a copy, 0 flops; if any index of the
# input is absent from the output it is summed: one add per input element, numel(input) flops
# (the reductions convention).
# Two operands A (indices a) and B (indices b), result indices r (the output):
#   1. An index in only one operand and not in the result is summed out of that operand first,
#      as torch.einsum and opt_einsum do: numel(operand) vector adds ("ij,jk->i" sums k from B,
#      then is a matrix-vector product).
#   2. What remains is a sum over terms, one term per point of the index space
#      U = a' | b' (every distinct remaining index). If some index is contracted (shared by A and
#      B, absent from r), each term is a multiply and an add: matrix_flops = 2 * prod(size(i) for
#      i in U). This is the matmul formula: "bij,bjk->bik" gives 2 * b * i * j * k.
#   3. If nothing is contracted (outer or Hadamard product, "i,j->ij", "ij,ij->ij") each term is
#      one multiply and no add: prod(size(i) for i in U) vector flops (FlopCounterMode counts
#      these as 0 because torch runs them as `mul`).
#   When every index is shared or kept (every (batched) matmul), this is 2 * prod(all sizes).
# More than two operands: contract left to right, (((A B) C) D); the intermediate keeps the
# indices that the output or a later operand still needs, and each step is costed as above.
# Ellipsis dims broadcast from the right and are named ".0", ".1", ... from the last one.
@lru_cache(maxsize=1024)
def _parse(equation: str, ranks: tuple[int, ...]) -> tuple[tuple[tuple[str, ...], ...], tuple[str, ...]]:
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ranks):
        raise RuleError(f"einsum: equation {equation!r} names {len(terms)} operand(s), node has {len(ranks)}")
    n_ell = 0
    labels: list[tuple[str, ...]] = []
    for term, rank in zip(terms, ranks):
        head, ell, tail = term.partition("...")
        explicit = len(head) + len(tail)
        if not (head + tail).isalpha() and head + tail:
            raise RuleError(f"einsum: bad subscripts {term!r} in {equation!r}")
        width = rank - explicit if ell else 0
        if width < 0 or (not ell and explicit != rank):
            raise RuleError(f"einsum: subscripts {term!r} do not fit a rank-{rank} operand in {equation!r}")
        n_ell = max(n_ell, width)
        labels.append((*head, *(f".{j}" for j in range(width - 1, -1, -1)), *tail))
    ell_out = tuple(f".{j}" for j in range(n_ell - 1, -1, -1))
    if arrow:
        head, ell, tail = rhs.partition("...")
        if not (head + tail).isalpha() and head + tail:
            raise RuleError(f"einsum: bad output subscripts {rhs!r} in {equation!r}")
        out = (*head, *(ell_out if ell else ()), *tail)  # ellipsis dims left out are summed
    else:
        counts: dict[str, int] = {}
        for term in labels:
            for i in term:
                counts[i] = counts.get(i, 0) + 1
        out = (*ell_out, *sorted(i for i, c in counts.items() if c == 1 and not i.startswith(".")))
    known = {i for term in labels for i in term}
    if any(i not in known for i in out):
        raise RuleError(f"einsum: output subscripts of {equation!r} name an index no operand has")
    return tuple(labels), out


def _prod(sizes: Mapping[str, int], idx) -> int:
    return math.prod(sizes[i] for i in idx)


@register("einsum")
def einsum_rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType], attrs: Mapping[str, Any]) -> Cost:
    equation = attrs.get("equation")
    if not isinstance(equation, str):
        raise RuleError("einsum: missing required attribute 'equation'")
    if not ins or any(t is None for t in ins):
        raise RuleError(f"einsum: every operand must be present, got {len(ins)} input(s)")
    out0("einsum", outs)
    labels, out = _parse(equation, tuple(t.rank for t in ins))
    sizes: dict[str, int] = {}
    for term, t in zip(labels, ins):
        for i, d in zip(term, t.shape):
            if sizes.get(i, 1) not in (1, d) and d != 1:
                raise RuleError(f"einsum: index {i!r} of {equation!r} has sizes {sizes[i]} and {d}")
            sizes[i] = max(sizes.get(i, 1), d)
    matrix = vector = 0
    out_set = set(out)
    if len(ins) == 1:
        if set(labels[0]) - out_set:
            vector = ins[0].numel
    else:
        acc = set(labels[0])
        for step in range(1, len(labels)):
            keep = out_set.union(*labels[step + 1:])
            b = set(labels[step])
            only_a, only_b = acc - b - keep, b - acc - keep
            if only_a:
                vector += _prod(sizes, acc)
                acc -= only_a
            if only_b:
                vector += _prod(sizes, b)
                b -= only_b
            terms = _prod(sizes, acc | b)
            if (acc & b) - keep:
                matrix += 2 * terms
            else:
                vector += terms
            acc = (acc | b) & keep
    return Cost(matrix + vector, matrix, 0, read_bytes(ins), written_bytes(outs))


# quantized_matmul: out[..., m, n] = sum_k a[..., m, k] * dequant(b)[k, n] (+ bias), with b stored
# quantized (packed N-bit blocks with per-block scales, NF4 with absmax, FP8 with block scales).
# The GEMM is the matmul's: 2 * numel(out) * K matrix flops, K = a.shape[-1]. Each of the K*N
# weights is dequantized once per kernel, (q - zero_point) * scale: 2 vector flops each (an implicit
# zero point, as MatMulNBits' 2**(bits-1), is still subtracted). A bias adds numel(out). Bytes: a,
# the stored weights, scales and zero points (at their stored sizes) and the bias read once; the
# output written once. The dequantized weights never reach memory (the fused kernel onnxruntime
# runs on every execution provider).
@register("quantized_matmul")
def quantized_matmul_rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType],
                          attrs: Mapping[str, Any]) -> Cost:
    a = operand("quantized_matmul", ins, 0, "a")
    operand("quantized_matmul", ins, 1, "b (stored weights)")
    out = out0("quantized_matmul", outs)
    if a.rank == 0 or out.rank == 0:
        raise RuleError(f"quantized_matmul: a and out must have rank >= 1, got a {a} and out {out}")
    k, n = a.shape[-1], out.shape[-1]
    matrix = 2 * out.numel * k
    vector = 2 * k * n + (out.numel if optional(ins, 4) is not None else 0)
    return Cost(matrix + vector, matrix, 0, read_bytes(ins), written_bytes(outs))
