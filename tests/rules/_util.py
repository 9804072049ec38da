"""Shared helpers for the per-rule tests: short tensor types, a rule call, case tables.

A case table is a list of `pytest.param(op, ins, outs, attrs, expected)`; `ops_in` collects the
op names a table covers, which test_registry_meta.py compares with the registry.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional, Sequence

import pytest

import graphperf.rules  # noqa: F401  registers every rule
from graphperf.cost import Cost
from graphperf.ir import TensorType
from graphperf.ops import canonical
from graphperf.rules import rule_for

F32, BF16 = 4, 2  # bytes per element, written out so the byte formulas read plainly


def T(*shape: int, dtype: str = "float32") -> TensorType:
    return TensorType(tuple(shape), dtype)


def run(op: str, ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType],
        attrs: Optional[Mapping[str, Any]] = None) -> Cost:
    rule = rule_for(canonical(op))
    assert rule is not None, f"no rule for {op}"
    return rule(ins, outs, attrs or {})


def case(op: str, ins, outs, attrs, expected: Cost, id: str):
    return pytest.param(op, ins, outs, attrs, expected, id=f"{op}-{id}")


def bad(op: str, ins, outs, attrs, match: str, id: str):
    return pytest.param(op, ins, outs, attrs, match, id=f"{op}-{id}")


def io(ins: Iterable[Optional[TensorType]], outs: Iterable[TensorType]) -> tuple[int, int]:
    """(bytes_read, bytes_written) when every input is read once and every output written once."""
    return sum(t.nbytes for t in ins if t is not None), sum(t.nbytes for t in outs)


def ops_in(*tables) -> set[str]:
    return {p.values[0] for table in tables for p in table}


def check_cases(op, ins, outs, attrs, expected):
    assert run(op, ins, outs, attrs) == expected


def check_errors(op, ins, outs, attrs, match):
    with pytest.raises(ValueError, match=match):
        run(op, ins, outs, attrs)
