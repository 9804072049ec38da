"""The cost-rule registry, keyed by canonical `OpId`.

A rule is a small pure function ``rule(ins, outs, attrs) -> Cost`` that receives tensor types,
never tensors: `ins` is the list of input `TensorType`s (None for an omitted optional input),
`outs` the output types, `attrs` the node's normalised attributes (see `graphperf.ops`).
One rule may serve several ops; registering an op twice raises. Ops that cost nothing (views)
are registered with `FREE`, which is different from having no rule (unknown).

User rules (`register_user_rule`, reached as `graphperf.register_rule`) give a cost to an op
graphperf has no rule for (a custom op, an op outside the canonical set), keyed by the `OpId`
the report lists as unknown. They are kept apart from the built-in rules: they can be removed,
they cannot replace a built-in rule, and `registered()` lists the built-in rules only.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Callable, Mapping, Optional, Sequence

from ..cost import Cost
from ..ir import OpId, TensorType
from ..ops import canonical

__all__ = ["Rule", "register", "rule_for", "registered", "FREE", "is_free", "register_user_rule",
           "unregister_user_rule", "user_rules"]

Rule = Callable[[Sequence[Optional[TensorType]], Sequence[TensorType], Mapping[str, Any]], Cost]

_RULES: dict[OpId, Rule] = {}
_FREE: set[OpId] = set()
_USER: dict[OpId, Rule] = {}


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
    rule = _RULES.get(op)
    return rule if rule is not None else _USER.get(op)


def register_user_rule(op: OpId, rule: Rule) -> None:
    """Give `op` (an op graphperf has no rule for) the cost `rule`; ValueError if it has one."""
    if not isinstance(op, OpId):
        raise TypeError(f"op must be an OpId, got {type(op).__name__}")
    if not callable(rule):
        raise TypeError(f"the rule for {op} must be callable rule(ins, outs, attrs) -> Cost")
    if op in _RULES:
        raise ValueError(f"{op} has a built-in cost rule ({_RULES[op].__name__}); user rules are for ops "
                         "the report lists as unknown")
    if op in _USER:
        raise ValueError(f"a user rule for {op} is already registered ({_USER[op].__name__}); "
                         "unregister it first")
    _USER[op] = rule


def unregister_user_rule(op: OpId) -> Rule:
    """Remove the user rule for `op` and return it; KeyError if there is none."""
    try:
        return _USER.pop(op)
    except KeyError:
        raise KeyError(f"no user rule is registered for {op}") from None


def user_rules() -> Mapping[OpId, Rule]:
    return MappingProxyType(_USER)


def is_free(op: OpId) -> bool:
    return op in _FREE


def registered() -> Mapping[OpId, Rule]:
    return MappingProxyType(_RULES)
