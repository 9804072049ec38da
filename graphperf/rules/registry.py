"""The cost-rule registry, keyed by canonical `OpId`.

A rule is a small pure function ``rule(ins, outs, attrs) -> Cost`` that receives tensor types,
never tensors: `ins` is the list of input `TensorType`s (None for an omitted optional input),
`outs` the output types, `attrs` the node's normalised attributes (see `graphperf.ops`).
One rule may serve several ops; registering an op twice raises. Ops that cost nothing (views)
are registered with `FREE`, which is different from having no rule (unknown).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Callable, Mapping, Optional, Sequence

from ..cost import Cost
from ..ir import OpId, TensorType
from ..ops import canonical

__all__ = ["Rule", "register", "rule_for", "registered", "FREE", "is_free"]

Rule = Callable[[Sequence[Optional[TensorType]], Sequence[TensorType], Mapping[str, Any]], Cost]

_RULES: dict[OpId, Rule] = {}
_FREE: set[OpId] = set()


def register(*names: str, free: bool = False) -> Callable[[Rule], Rule]:
    """Register the decorated rule for the canonical ops `names`."""

    def decorate(rule: Rule) -> Rule:
        for name in names:
            op = canonical(name)
            if op in _RULES:
                raise ValueError(f"a cost rule for {name!r} is already registered ({_RULES[op].__name__})")
            _RULES[op] = rule
            if free:
                _FREE.add(op)
        return rule

    return decorate


def FREE(ins, outs, attrs) -> Cost:  # noqa: N802 - a named constant rule
    """Views and metadata ops: no arithmetic, no bytes (the runtime does not materialise them)."""
    return Cost.zero()


def rule_for(op: OpId) -> Optional[Rule]:
    return _RULES.get(op)


def is_free(op: OpId) -> bool:
    return op in _FREE


def registered() -> Mapping[OpId, Rule]:
    return MappingProxyType(_RULES)
