"""ATen coverage, derived from torch's op metadata: which ops graphperf counts, which cost nothing, which it
leaves out on purpose, and which it does not know.

Guarantees: `coverage_of(overload)` classifies every ATen OpOverload as
- `Coverage.RULE`: the capture maps it to a canonical op with a cost rule (`aten_ops.alias_for`:
  the hand table, in-place and out= variants as their functional op, the pointwise tag);
- `Coverage.FREE`: mapped to an op registered free (views, allocations);
- `Coverage.NO_TENSOR`: its schema returns no tensor (``sym_size``, ``_local_scalar_dense``): the
  capture drops such nodes, they run no device kernel;
- `Coverage.EXCLUDED`: named in `EXCLUDED`, each with a one-line reason;
- `Coverage.UNKNOWN`: none of these; a graph holding it reports it as unknown.
`core_ops()` and `pointwise_ops()` enumerate the sets torch tags ``torch.Tag.core`` and
``torch.Tag.pointwise``; `tests/test_aten_coverage.py` fails on any UNKNOWN among them.
"""

from __future__ import annotations

import enum
from typing import Any, Iterator

import torch

from .. import rules as _rules  # noqa: F401  (registers every rule)
from ..ops import CANONICAL, canonical
from ..rules.registry import is_free, rule_for
from .aten_ops import alias_for, functional_overload

__all__ = ["Coverage", "EXCLUDED", "coverage_of", "aten_overloads", "core_ops", "pointwise_ops"]

aten = torch.ops.aten


class Coverage(enum.Enum):
    RULE = "rule"
    FREE = "free"
    NO_TENSOR = "no tensor result"
    EXCLUDED = "excluded"
    UNKNOWN = "unknown"


# Core ATen ops graphperf leaves out on purpose (every overload of the packet), with the reason.
EXCLUDED: dict[Any, str] = {
    aten._cdist_forward: "pairwise distances (metric learning): no rule yet; no model of the corpus emits it",
    aten._pdist_forward: "pairwise distances (metric learning): no rule yet; no model of the corpus emits it",
    aten._embedding_bag: "embedding bags (recommendation models): the rows read follow the bag offsets; no rule yet",
    aten.native_group_norm_backward: "training only: group norm's backward has no rule yet (rules/backward.py)",
}


def _returns_tensor(overload: Any) -> bool:
    for ret in overload._schema.returns:
        t = ret.type
        if isinstance(t, torch.OptionalType):
            t = t.getElementType()
        if isinstance(t, torch.ListType):
            t = t.getElementType()
        if isinstance(t, torch.TensorType):
            return True
    return False


def coverage_of(overload: Any) -> tuple[Coverage, str]:
    """How graphperf treats `overload`, and a detail: the canonical op, or the exclusion's reason."""
    reason = EXCLUDED.get(overload.overloadpacket) or EXCLUDED.get(functional_overload(overload).overloadpacket)
    if reason is not None:
        return Coverage.EXCLUDED, reason
    if not _returns_tensor(overload):
        return Coverage.NO_TENSOR, "dropped at capture"
    alias = alias_for(overload)
    if alias is None or alias.op not in CANONICAL:
        return Coverage.UNKNOWN, "no alias"
    op = canonical(alias.op)
    if rule_for(op) is None:
        return Coverage.UNKNOWN, f"{alias.op} has no rule"
    return (Coverage.FREE if is_free(op) else Coverage.RULE), alias.op


def aten_overloads() -> Iterator[Any]:
    """Every OpOverload of every ATen op this torch registers."""
    for name in dir(aten):
        packet = getattr(aten, name, None)
        if isinstance(packet, torch._ops.OpOverloadPacket):
            for overload in packet.overloads():
                yield getattr(packet, overload)


def core_ops() -> list[Any]:
    """The core ATen opset: overloads tagged ``torch.Tag.core``."""
    return [op for op in aten_overloads() if torch.Tag.core in op.tags]


def pointwise_ops() -> list[Any]:
    """Overloads tagged ``torch.Tag.pointwise``."""
    return [op for op in aten_overloads() if torch.Tag.pointwise in op.tags]
