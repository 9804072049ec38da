"""Cost rules for max_pool and avg_pool (1d/2d/3d windows; attrs kernel=(kh, kw, ...)).

Guarantees: with w = prod(kernel) window taps and m = numel(out): max_pool costs m * w
compares; avg_pool costs m * w adds + m divides (taps on padding are counted, as a dense kernel
computes them); no transcendentals; bytes are the input read once and the outputs written once
(max_pool's optional indices output included). A missing or malformed `kernel` raises
`ValueError`.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional, Sequence

from ..cost import Cost
from ..errors import RuleError
from ..ir import TensorType
from ._common import operand, out0, read_bytes, written_bytes
from .registry import register

__all__ = ["max_pool_rule", "avg_pool_rule"]


def _taps(op: str, x: TensorType, attrs: Mapping[str, Any]) -> int:
    kernel = attrs.get("kernel")
    if kernel is None:
        raise RuleError(f"{op}: missing required attribute 'kernel' (window size per spatial dim)")
    if (not isinstance(kernel, (tuple, list)) or not kernel
            or not all(isinstance(k, int) and not isinstance(k, bool) and k > 0 for k in kernel)):
        raise RuleError(f"{op}: kernel={kernel!r} must be a non-empty tuple of positive ints")
    if len(kernel) > x.rank - 1:
        raise RuleError(f"{op}: a {len(kernel)}-D kernel does not fit x {x} (needs [(N,) C, *spatial])")
    return math.prod(kernel)


# max_pool: each output element is the max of its w-tap window: w compares (the first against
# -inf, the FlopCounterMode-style uniform count).
@register("max_pool")
def max_pool_rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType], attrs: Mapping[str, Any]) -> Cost:
    x = operand("max_pool", ins, 0, "x")
    m = out0("max_pool", outs).numel
    return Cost(m * _taps("max_pool", x, attrs), 0, 0, read_bytes(ins), written_bytes(outs))


# avg_pool: each output element sums its w taps (w adds) and divides once by the window size
# (or by the count of non-padding taps: still one divide).
@register("avg_pool")
def avg_pool_rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType], attrs: Mapping[str, Any]) -> Cost:
    x = operand("avg_pool", ins, 0, "x")
    m = out0("avg_pool", outs).numel
    return Cost(m * _taps("avg_pool", x, attrs) + m, 0, 0, read_bytes(ins), written_bytes(outs))
