"""Cost rules for gather (embedding, index_select, Gather*, index.Tensor) and scatter.

Guarantees: gather does no arithmetic and reads only what it gathers: the indices plus
numel(out) elements of `data` at data's dtype, never the whole table; it writes its outputs.
scatter reads data, indices and updates once and writes the full output (the functional form
copies `data`); it costs numel(updates) flops when it combines (reduce add/mul/max/min), 0 when it
overwrites. Missing inputs or an unknown `reduce` raise `ValueError`.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from ..cost import Cost
from ..dtypes import itemsize_bits
from ..errors import RuleError
from ..ir import TensorType
from ._common import operand, out0, read_bytes, written_bytes
from .registry import register

__all__ = ["gather_rule", "scatter_rule", "SCATTER_REDUCES"]

# reduce mode -> flops per update element
SCATTER_REDUCES = {"none": 0, "add": 1, "mul": 1, "max": 1, "min": 1}


# gather: out[i...] = data[index(i...)]. Each output element is one element of data, so the
# kernel reads numel(out) * itemsize(data) bytes of data (an embedding lookup of 8 tokens from a
# 128k-row table reads 8 rows) plus the whole indices tensor, and writes out.
@register("gather")
def gather_rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType], attrs: Mapping[str, Any]) -> Cost:
    data = operand("gather", ins, 0, "data")
    indices = operand("gather", ins, 1, "indices")
    out = out0("gather", outs)
    gathered = (out.numel * itemsize_bits(data.dtype) + 7) // 8
    return Cost(0, 0, 0, indices.nbytes + gathered, written_bytes(outs))


# scatter: out = data; out[index(j...)] (op)= updates[j...]. One combine per update element for
# reduce add/mul/max/min; plain assignment ("none", the default) is data movement only.
@register("scatter")
def scatter_rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType], attrs: Mapping[str, Any]) -> Cost:
    operand("scatter", ins, 0, "data")
    operand("scatter", ins, 1, "indices")
    updates = operand("scatter", ins, 2, "updates")
    out0("scatter", outs)
    reduce = attrs.get("reduce") or "none"
    per_update = SCATTER_REDUCES.get(reduce)
    if per_update is None:
        raise RuleError(f"scatter: reduce={reduce!r} is not one of {sorted(SCATTER_REDUCES)}")
    return Cost(per_update * updates.numel, 0, 0, read_bytes(ins), written_bytes(outs))
