"""Cost rules for `det` and `inverse`: square matrices [..., n, n] through an LU factorization.

Guarantees: the LAPACK operation counts (a multiply-add is 2 flops): LU with partial pivoting (getrf)
costs 2n^3/3 flops per matrix (pivot searches are compares not counted); the determinant then multiplies
the n diagonal entries; the inverse (getri) adds 4n^3/3, 2n^3 in all. Bytes: the input read once, the
output written once. A non-square input raises `ValueError`.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from ..cost import Cost
from ..errors import RuleError
from ..ir import TensorType
from ._common import operand, out0, read_bytes, written_bytes
from .registry import register

__all__ = ["det_rule", "inverse_rule"]


def _matrices(op: str, ins: Sequence[Optional[TensorType]]) -> tuple[int, int]:
    """(number of matrices, n)."""
    x = operand(op, ins, 0, "x")
    if x.rank < 2 or x.shape[-1] != x.shape[-2]:
        raise RuleError(f"{op}: x must be [..., n, n] square matrices, got {x}")
    n = x.shape[-1]
    return (x.numel // (n * n) if n else 0), n


@register("det")
def det_rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType], attrs: Mapping[str, Any]) -> Cost:
    count, n = _matrices("det", ins)
    out0("det", outs)
    return Cost(count * (2 * n**3 // 3 + n), 0, 0, read_bytes(ins), written_bytes(outs))


@register("inverse")
def inverse_rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType], attrs: Mapping[str, Any]) -> Cost:
    count, n = _matrices("inverse", ins)
    out0("inverse", outs)
    return Cost(count * 2 * n**3, 0, 0, read_bytes(ins), written_bytes(outs))
