"""Cost rule for scaled dot-product attention (SDPA, ONNX Attention, flash/efficient kernels).

Guarantees: for non-causal attention `matrix_flops` equals
`torch.utils.flop_counter.sdpa_flop_count` (FlopCounterMode); the softmax, scaling and mask work
is counted as vector flops and transcendentals (FlopCounterMode counts none of it); causal
attention is exactly half of the non-causal score work (FlopCounterMode counts it in full); bytes
are q, k, v (and the mask) read once and the outputs written once, as in a fused kernel.
Shapes the rule cannot interpret, or 3-D inputs without head counts, raise `ValueError`.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from ..cost import Cost
from ..errors import RuleError
from ..ir import TensorType
from ._common import operand, optional, out0, read_bytes, written_bytes
from .registry import register

__all__ = ["attention_rule", "VECTOR_FLOPS_PER_SCORE", "TRANSCENDENTALS_PER_SCORE"]

# Per score entry s[b, h, l, s]: scale (1 mul); softmax over s: running max (1 compare),
# subtract the max (1), exp (1 transcendental), sum (1 add), divide by the sum (1). A mask
# input adds one add (additive mask) or select (boolean mask) per entry.
VECTOR_FLOPS_PER_SCORE = 5
TRANSCENDENTALS_PER_SCORE = 1


def _heads(q: TensorType, k: TensorType, v: TensorType, attrs: Mapping[str, Any]) -> tuple[int, int, int, int, int]:
    """(B*Hq, L, S, E, Ev) from q [..., L, E], k [..., S, E], v [..., S, Ev] or the 3-D ONNX layout."""
    if not (q.rank == k.rank == v.rank) or q.rank < 3:
        raise RuleError(f"attention: q, k, v must have one rank >= 3, got q {q}, k {k}, v {v}")
    if q.rank == 3:
        # ONNX Attention 3-D layout: q [B, L, Hq*E], k [B, S, Hkv*E], v [B, S, Hkv*Ev].
        hq, hkv = attrs.get("q_num_heads"), attrs.get("kv_num_heads")
        if not isinstance(hq, int) or not isinstance(hkv, int) or hq <= 0 or hkv <= 0:
            raise RuleError(
                "attention: 3-D q/k/v [B, L, heads*E] need attributes q_num_heads and kv_num_heads "
                f"(positive ints; use 1 and 1 for single-head [N, L, E]), got q_num_heads={hq!r}, "
                f"kv_num_heads={hkv!r}"
            )
        if q.shape[2] % hq or k.shape[2] % hkv or v.shape[2] % hkv:
            raise RuleError(
                f"attention: hidden sizes of q {q}, k {k}, v {v} are not divisible by the heads ({hq}, {hkv})"
            )
        e, e_k, ev = q.shape[2] // hq, k.shape[2] // hkv, v.shape[2] // hkv
        bh, kv_heads, q_heads = q.shape[0] * hq, hkv, hq
        batch_ok = q.shape[0] == k.shape[0] == v.shape[0]
    else:
        # [..., H, L, E]: every dim before L is a batch or head dim of the query.
        e, e_k, ev = q.shape[-1], k.shape[-1], v.shape[-1]
        bh = 1
        for d in q.shape[:-2]:
            bh *= d
        q_heads, kv_heads = q.shape[-3], k.shape[-3]
        batch_ok = q.shape[:-3] == k.shape[:-3] == v.shape[:-3] and k.shape[-3] == v.shape[-3]
    l, s = q.shape[-2], k.shape[-2]
    if not batch_ok or e != e_k or v.shape[-2] != s:
        raise RuleError(f"attention: incompatible shapes q {q}, k {k}, v {v}")
    if kv_heads == 0 or q_heads % kv_heads:
        raise RuleError(f"attention: query heads {q_heads} are not a multiple of key/value heads {kv_heads}")
    return bh, l, s, e, ev


# Counting, with n = B*Hq*L*S score entries:
#   scores = q @ k^T    : 2 * B*Hq*L*S*E  (matrix)
#   out = softmax @ v   : 2 * B*Hq*L*S*Ev (matrix)
#   scale + softmax     : 5 * n flops + n exp (vector; + n flops with a mask)
# Grouped-query k/v (fewer heads) are broadcast to the query heads: every query head still does
# its own L x S scores, so the count uses Hq and does not depend on Hkv.
#
# Causal masking (is_causal=True): query l attends to keys 0..l only, so a kernel that skips
# masked blocks does about half the score work. We count exactly 1/2 of everything that scales
# with the score entries (both matmuls, the scale, the softmax and its exps), the convention of
# the FlashAttention benchmarks (flops / 2 for causal). The matrix part is always even, so it
# halves exactly; odd vector/transcendental counts round up (a diagonal entry is always
# computed). FlopCounterMode counts causal attention in full: the non-causal figure.
@register("attention")
def attention_rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType], attrs: Mapping[str, Any]) -> Cost:
    q = operand("attention", ins, 0, "q")
    k = operand("attention", ins, 1, "k")
    v = operand("attention", ins, 2, "v")
    out0("attention", outs)
    bh, l, s, e, ev = _heads(q, k, v, attrs)
    scores = bh * l * s
    matrix = 2 * scores * e + 2 * scores * ev
    mask = optional(ins, 3) is not None
    vector = (VECTOR_FLOPS_PER_SCORE + (1 if mask else 0)) * scores
    trans = TRANSCENDENTALS_PER_SCORE * scores
    if attrs.get("is_causal"):
        matrix, vector, trans = matrix // 2, (vector + 1) // 2, (trans + 1) // 2
    return Cost(matrix + vector, matrix, trans, read_bytes(ins), written_bytes(outs))
