"""Cost rules for every elementwise op in `graphperf.ops.ELEMENTWISE`, registered in one loop.

Guarantees: an elementwise op with (f, t) in the table costs f flops and t transcendentals per
output element (inputs broadcast to the output, so the output counts the work); bytes are
every input read once (at its own, un-broadcast size) and every output written once.
`pow` with a scalar int exponent is repeated multiplication and no transcendental (see below).
The generic `pointwise` op costs what its node's attributes say per output element, the same way.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Sequence

from ..cost import Cost
from ..errors import RuleError
from ..ir import TensorType
from ..ops import ELEMENTWISE
from ._common import int_attr, out0, read_bytes, written_bytes
from .registry import Rule, register

__all__ = ["elementwise_rule", "pow_flops_per_element", "pointwise_rule"]


def elementwise_rule(name: str, flops: int, transcendentals: int) -> Rule:
    """The rule for an op costing `flops` and `transcendentals` per output element."""

    def rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType], attrs: Mapping[str, Any]) -> Cost:
        n = out0(name, outs).numel
        return Cost(flops * n, 0, transcendentals * n, read_bytes(ins), written_bytes(outs))

    rule.__name__ = rule.__qualname__ = f"{name}_rule"
    return rule


# pow(x, e) with e a Python int (attrs exponent=e): exponentiation by repeated multiplication,
# |e| - 1 multiplies (x**2 = x*x: 1, x**3: 2), at least 1 (x**0 and x**1 still write every
# element: counted as one op), plus one division for a negative exponent (x**-2 = 1 / (x*x)).
# Any other exponent (a tensor, a float) is exp(e * log x): 1 transcendental, 0 flops (table).
def pow_flops_per_element(exponent: int) -> int:
    return max(abs(exponent) - 1, 1) + (1 if exponent < 0 else 0)


_pow_generic = elementwise_rule("pow", *ELEMENTWISE["pow"])


def pow_rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType], attrs: Mapping[str, Any]) -> Cost:
    e = attrs.get("exponent")
    if not isinstance(e, int) or isinstance(e, bool):
        return _pow_generic(ins, outs, attrs)
    n = out0("pow", outs).numel
    return Cost(pow_flops_per_element(e) * n, 0, 0, read_bytes(ins), written_bytes(outs))


# pointwise: the generic elementwise op. A frontend op without a canonical entry of its own (the long
# tail of torch.Tag.pointwise: graphperf/capture/aten_pointwise.py) carries its per-output-element
# counts as attributes, derived beside its mapping; the rule applies them as the table does.
@register("pointwise")
def pointwise_rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType], attrs: Mapping[str, Any]) -> Cost:
    n = out0("pointwise", outs).numel
    flops = int_attr("pointwise", attrs, "flops_per_element")
    trans = int_attr("pointwise", attrs, "transcendentals_per_element")
    if flops + trans == 0:
        raise RuleError("pointwise: an op with no flop and no transcendental per element is not pointwise work")
    return Cost(flops * n, 0, trans * n, read_bytes(ins), written_bytes(outs))


def _register_all() -> None:
    special: dict[str, Callable[..., Cost]] = {"pow": pow_rule}
    for name, (flops, trans) in ELEMENTWISE.items():
        register(name)(special.get(name) or elementwise_rule(name, flops, trans))


_register_all()
