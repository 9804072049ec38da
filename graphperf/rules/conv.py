"""Cost rule for convolution (1d/2d/3d, grouped, strided, dilated, padded, transposed).

Guarantees: `matrix_flops` equals `torch.utils.flop_counter.conv_flop_count` (and so
FlopCounterMode) for the same input, weight and output shapes; a bias adds `numel(out)` vector
flops; bytes are every input read once and every output written once (an unfused kernel reads
the weight once). Inconsistent shapes raise `ValueError`.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional, Sequence

from ..cost import Cost
from ..errors import RuleError
from ..ir import TensorType
from ._common import operand, optional, out0, read_bytes, written_bytes
from .registry import register

__all__ = ["conv_rule"]


# Direct convolution: x [N, Cin, *in_spatial], w [Cout, Cin/groups, *k], out [N, Cout, *out_spatial].
# Each output element out[n, co, p] is a dot product over the Cin/groups input channels of its
# group and the prod(k) kernel taps: (Cin/groups) * prod(k) multiply-adds, 2 flops each. Stride,
# dilation and padding only change which input elements are read and how many output points
# there are; they are all in out_spatial. So
#     matrix_flops = 2 * N * Cout * prod(out_spatial) * (Cin/groups) * prod(k),
# with Cin/groups = w.shape[1] and k = w.shape[2:]. Taps that fall on zero padding are counted,
# as every dense kernel (and FlopCounterMode) computes them.
#
# Transposed convolution: x [N, Cin, *in_spatial], w [Cin, Cout/groups, *k]. It is the gradient
# of a direct convolution with respect to its input: every *input* point scatters into a
# prod(k) window of each of the Cout/groups output channels of its group. So
#     matrix_flops = 2 * N * Cin * prod(in_spatial) * (Cout/groups) * prod(k),
# again with Cout/groups = w.shape[1]. Output padding and cropping do not change the count.
#
# Bias: one add per output element, vector flops = numel(out).
@register("conv")
def conv_rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType], attrs: Mapping[str, Any]) -> Cost:
    x = operand("conv", ins, 0, "x")
    w = operand("conv", ins, 1, "w")
    out = out0("conv", outs)
    if not 3 <= x.rank <= 5 or w.rank != x.rank or out.rank != x.rank:
        raise RuleError(
            f"conv: expected x [N, C, *spatial] (1-3 spatial dims), w and out of the same rank; "
            f"got x {x}, w {w}, out {out}"
        )
    taps = math.prod(w.shape[2:])
    transposed = bool(attrs.get("transposed"))
    per_group = out.shape[1] if transposed else x.shape[1]  # channels w.shape[1] counts per group
    if w.shape[1] == 0 or per_group % w.shape[1]:
        side = "output" if transposed else "input"
        raise RuleError(f"conv: w {w} dim 1 (channels per group) does not divide the {per_group} {side} channels")
    if transposed:
        if w.shape[0] != x.shape[1]:
            raise RuleError(f"conv (transposed): w {w} must have Cin={x.shape[1]} (x {x}) as its first dim")
        matrix = 2 * x.shape[0] * x.shape[1] * math.prod(x.shape[2:]) * w.shape[1] * taps
    else:
        if w.shape[0] != out.shape[1]:
            raise RuleError(f"conv: w {w} must have Cout={out.shape[1]} (out {out}) as its first dim")
        matrix = 2 * x.shape[0] * out.shape[1] * math.prod(out.shape[2:]) * w.shape[1] * taps
    vector = out.numel if optional(ins, 2) is not None else 0
    return Cost(matrix + vector, matrix, 0, read_bytes(ins), written_bytes(outs))
