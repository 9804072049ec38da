"""Cost rule for `rotary`: rotary position embedding (RoPE) applied to queries or keys.

Guarantees: each rotated element costs 3 flops, x * cos + rotate(x) * sin (2 multiplies, 1 add; the
rotation pairs elements and flips a sign, no arithmetic); elements past `rotary_dim` in each head row are
copied (bytes only); no transcendentals (the cos and sin tables are inputs). Bytes: x read and the output
written once; with `position_ids`, only the table rows they select (numel(position_ids) rows of cos and of
sin) plus the ids; without, the whole cos and sin inputs. Shapes that do not split into heads raise
`ValueError`.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from ..cost import Cost
from ..dtypes import itemsize_bits
from ..errors import RuleError
from ..ir import TensorType
from ._common import operand, optional, out0, written_bytes
from .registry import register

__all__ = ["rotary_rule"]


def _head_size(x: TensorType, attrs: Mapping[str, Any]) -> int:
    if x.rank == 4:  # [B, N, S, H]
        return x.shape[-1]
    heads = attrs.get("num_heads")
    if x.rank != 3 or not isinstance(heads, int) or heads <= 0 or x.shape[-1] % heads:
        raise RuleError(f"rotary: x must be [B, N, S, H], or [B, S, N*H] with num_heads dividing N*H; "
                         f"got x {x}, num_heads={heads!r}")
    return x.shape[-1] // heads


def _table_bytes(table: TensorType, ids: Optional[TensorType]) -> int:
    if ids is None:
        return table.nbytes
    row = table.shape[-1] if table.rank else 1
    return (ids.numel * row * itemsize_bits(table.dtype) + 7) // 8


@register("rotary")
def rotary_rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType], attrs: Mapping[str, Any]) -> Cost:
    x = operand("rotary", ins, 0, "x")
    cos = operand("rotary", ins, 1, "cos")
    sin = operand("rotary", ins, 2, "sin")
    out0("rotary", outs)
    head = _head_size(x, attrs)
    rotary_dim = attrs.get("rotary_dim") or head
    if not isinstance(rotary_dim, int) or not 0 < rotary_dim <= head:
        raise RuleError(f"rotary: rotary_dim={rotary_dim!r} must be in 1..{head} (the head size of x {x})")
    rotated = x.numel // head * rotary_dim
    ids = optional(ins, 3)
    read = x.nbytes + _table_bytes(cos, ids) + _table_bytes(sin, ids) + (ids.nbytes if ids is not None else 0)
    return Cost(3 * rotated, 0, 0, read, written_bytes(outs))
