"""Cost rules for data movement (`graphperf.ops.DATA_MOVEMENT`) and the free `view`.

Guarantees: no flops and no transcendentals. Bytes are what one copy kernel moves:
- concat, pad, transpose, copy, reshape_copy, cast, expand: every input read once, every output
  written once (cast reads at the source dtype and writes at the target; expand reads its
  un-broadcast input once, not the expanded extent);
- slice and split read only what they copy: bytes_read = bytes of the outputs;
- fill (full, zeros, arange, ConstantOfShape, Range) reads nothing and writes its output;
- view (views, reshapes without copy, squeeze, select, detach, Identity, Shape) is registered
  free: it moves nothing, which is different from having no rule.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from ..cost import Cost
from ..ir import TensorType
from ._common import operand, out0, read_bytes, written_bytes
from .registry import FREE, Rule, register

__all__ = ["copy_rule", "slice_rule", "fill_rule"]


def copy_rule(op: str) -> Rule:
    """Every input read once, every output written once."""

    def rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType], attrs: Mapping[str, Any]) -> Cost:
        operand(op, ins, 0, "x")
        out0(op, outs)
        return Cost(0, 0, 0, read_bytes(ins), written_bytes(outs))

    rule.__name__ = rule.__qualname__ = f"{op}_rule"
    return rule


# slice/split: a strided copy of part of x; the kernel reads exactly the elements it writes.
def slice_rule(op: str) -> Rule:
    """bytes_read = bytes_written = bytes of the outputs."""

    def rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType], attrs: Mapping[str, Any]) -> Cost:
        operand(op, ins, 0, "x")
        out0(op, outs)
        written = written_bytes(outs)
        return Cost(0, 0, 0, written, written)

    rule.__name__ = rule.__qualname__ = f"{op}_rule"
    return rule


for _op in ("concat", "pad", "transpose", "copy", "reshape_copy", "cast", "expand"):
    register(_op)(copy_rule(_op))
for _op in ("slice", "split"):
    register(_op)(slice_rule(_op))


# fill: constant creation; any inputs are shapes or scalars that the host reads.
@register("fill")
def fill_rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType], attrs: Mapping[str, Any]) -> Cost:
    out0("fill", outs)
    return Cost(0, 0, 0, 0, written_bytes(outs))


register("view", free=True)(FREE)

