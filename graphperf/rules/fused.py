"""Cost rule for `fused`: a group of nodes a what-if rewrite turned into one kernel.

Guarantees: the arithmetic (flops, matrix_flops, transcendentals) is the sum over the members,
precomputed by the fusion pass with the members' own rules and carried in ``attrs["cost"]``;
bytes are only the group's external traffic: every input of the fused node read once (at its own
size) and every output (intermediates other nodes still read, and the group's results) written
once. Intermediates consumed only inside the group never reach memory.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from ..cost import WORK_FIGURES, Cost
from ..errors import RuleError
from ..ir import TensorType
from ._common import read_bytes, written_bytes
from .registry import register

__all__ = ["fused_rule"]

@register("fused")
def fused_rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType], attrs: Mapping[str, Any]) -> Cost:
    cost = attrs.get("cost")
    if not isinstance(cost, Mapping) or any(not isinstance(cost.get(k), int) for k in WORK_FIGURES):
        raise RuleError(f"fused node needs attrs cost={{{', '.join(WORK_FIGURES)}}} from its members, got {cost!r}")
    if not outs:
        raise RuleError("fused node has no outputs")
    return Cost(cost["flops"], cost["matrix_flops"], cost["transcendentals"], read_bytes(ins), written_bytes(outs))
