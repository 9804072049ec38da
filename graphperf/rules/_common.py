"""Small helpers shared by the cost-rule modules: operand access that fails loudly, byte sums.

Every helper raises `ValueError` naming the op and the problem; none returns a default for
something it cannot interpret. They do plain int arithmetic only: rules run once per node and
a 100k-node graph must be counted at >= 50k nodes/s.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from ..errors import RuleError
from ..ir import TensorType

__all__ = ["operand", "optional", "out0", "read_bytes", "written_bytes", "axis_of", "int_attr"]


def operand(op: str, ins: Sequence[Optional[TensorType]], i: int, what: str) -> TensorType:
    """Input `i` of `op`, which must be present."""
    if i >= len(ins) or ins[i] is None:
        raise RuleError(f"{op}: missing required input {i} ({what}); got {len(ins)} input(s)")
    return ins[i]  # type: ignore[return-value]


def optional(ins: Sequence[Optional[TensorType]], i: int) -> Optional[TensorType]:
    """Input `i` if the node has it, else None."""
    return ins[i] if i < len(ins) else None


def out0(op: str, outs: Sequence[TensorType]) -> TensorType:
    """The first output, which every op has."""
    if not outs or outs[0] is None:
        raise RuleError(f"{op}: node has no output type")
    return outs[0]


def read_bytes(ins: Sequence[Optional[TensorType]]) -> int:
    """Bytes of every present input, each read once."""
    total = 0
    for t in ins:
        if t is not None:
            total += t.nbytes
    return total


def written_bytes(outs: Sequence[Optional[TensorType]]) -> int:
    """Bytes of every output, each written once."""
    total = 0
    for t in outs:
        if t is not None:
            total += t.nbytes
    return total


def axis_of(op: str, attrs: Mapping[str, Any], rank: int, key: str = "axis", default: int = -1) -> int:
    """The non-negative axis named by `attrs[key]` for a tensor of `rank`."""
    axis = attrs.get(key, default)
    if not isinstance(axis, int) or not -rank <= axis < rank:
        raise RuleError(f"{op}: {key}={axis!r} is not an axis of a rank-{rank} tensor")
    return axis % rank


def int_attr(op: str, attrs: Mapping[str, Any], key: str, minimum: int = 0) -> int:
    """A required integer attribute, at least `minimum`."""
    value = attrs.get(key)
    if value is None:
        raise RuleError(f"{op}: missing required attribute {key!r}")
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise RuleError(f"{op}: attribute {key}={value!r} must be an int >= {minimum}")
    return value
