"""Elementwise rules: every op in ops.ELEMENTWISE, broadcasting, and the integer-exponent pow."""

import pytest

from graphperf.cost import Cost
from graphperf.ops import ELEMENTWISE

from ._util import BF16, F32, T, bad, case, check_cases, check_errors, io, ops_in, run

r, c = 6, 5
x, row, out = T(r, c), T(1, c), T(r, c)
BINARY = {"add", "sub", "mul", "div", "maximum", "minimum", "pow", "eq", "ne", "lt", "le", "gt", "ge",
          "logical_and", "logical_or", "logical_xor", "bitwise_and", "bitwise_or", "mod", "floor_div",
          "bitwise_xor", "bitwise_shift", "complex_mul"}


def _ins(name):
    """x for unary ops; x and a broadcast row for binary ops; (cond, x, row) for where."""
    if name == "where":
        return [T(r, c, dtype="bool"), x, row]
    if name == "masked_fill":
        return [x, T(r, c, dtype="bool")]
    return [x, row] if name in BINARY else [x]


# Every table entry: (flops, transcendentals) per *output* element; inputs are read at their own
# (un-broadcast) size. The expected values restate the ops.py table, whose derivations live there.
TABLE = [
    case(name, _ins(name), [out], {}, Cost(f * r * c, 0, t * r * c, *io(_ins(name), [out])), "table")
    for name, (f, t) in ELEMENTWISE.items()
]

EXPLICIT = [
    case("add", [T(r, c, dtype="bfloat16"), T(c, dtype="bfloat16")], [T(r, c, dtype="bfloat16")], {},
         Cost(r * c, 0, 0, BF16 * (r * c + c), BF16 * r * c), "broadcast-bf16"),
    case("relu", [x], [out], {}, Cost(r * c, 0, 0, F32 * r * c, F32 * r * c), "max-with-zero"),
    case("exp", [x], [out], {}, Cost(0, 0, r * c, F32 * r * c, F32 * r * c), "transcendental"),
    # sigmoid = 1 / (1 + exp(-x)): add, div + exp
    case("sigmoid", [x], [out], {}, Cost(2 * r * c, 0, r * c, F32 * r * c, F32 * r * c), "derived"),
    # silu = x * sigmoid(x): exp(-x), add 1, div, mul
    case("silu", [x], [out], {}, Cost(3 * r * c, 0, r * c, F32 * r * c, F32 * r * c), "derived"),
    # gelu (erf form) = 0.5 * x * (1 + erf(x / sqrt 2)): mul, add, mul, mul + erf
    case("gelu", [x], [out], {}, Cost(4 * r * c, 0, r * c, F32 * r * c, F32 * r * c), "derived"),
    # pow with a Python-int exponent: |e| - 1 multiplies (at least 1), + 1 divide if e < 0
    case("pow", [x], [out], {"exponent": 2}, Cost((2 - 1) * r * c, 0, 0, F32 * r * c, F32 * r * c), "int-2"),
    case("pow", [x], [out], {"exponent": 3}, Cost((3 - 1) * r * c, 0, 0, F32 * r * c, F32 * r * c), "int-3"),
    case("pow", [x], [out], {"exponent": 1}, Cost(1 * r * c, 0, 0, F32 * r * c, F32 * r * c), "int-1"),
    case("pow", [x], [out], {"exponent": 0}, Cost(1 * r * c, 0, 0, F32 * r * c, F32 * r * c), "int-0"),
    case("pow", [x], [out], {"exponent": -2}, Cost((2 - 1 + 1) * r * c, 0, 0, F32 * r * c, F32 * r * c), "int-neg"),
    # anything else is exp(e * log x): one transcendental
    case("pow", [x], [out], {"exponent": 2.0}, Cost(0, 0, r * c, F32 * r * c, F32 * r * c), "float"),
    case("pow", [x], [out], {"exponent": 0.5}, Cost(0, 0, r * c, F32 * r * c, F32 * r * c), "sqrt-like"),
    case("pow", [x], [out], {"exponent": True}, Cost(0, 0, r * c, F32 * r * c, F32 * r * c), "bool-is-not-int"),
    case("pow", [x, row], [out], {}, Cost(0, 0, r * c, F32 * (r * c + c), F32 * r * c), "tensor"),
]

# pointwise: the generic elementwise op; its per-output-element counts arrive as attributes
# (lerp a + w * (b - a): 3 flops; log10 = log(x) / ln 10: 1 flop + 1 transcendental)
GENERIC = [
    case("pointwise", [x, row, x], [out], {"flops_per_element": 3, "transcendentals_per_element": 0},
         Cost(3 * r * c, 0, 0, F32 * (2 * r * c + c), F32 * r * c), "lerp"),
    case("pointwise", [x], [out], {"flops_per_element": 1, "transcendentals_per_element": 1},
         Cost(r * c, 0, r * c, F32 * r * c, F32 * r * c), "log10"),
]

ERRORS = [bad(name, [x], [], {}, "no output", "no-output") for name in ("add", "exp", "pow")] + [
    bad("pointwise", [x], [out], {}, "flops_per_element", "no-counts"),
    bad("pointwise", [x], [out], {"flops_per_element": 0, "transcendentals_per_element": 0}, "not pointwise work",
        "zero"),
]

COVERED_OPS = ops_in(TABLE, EXPLICIT, GENERIC)


@pytest.mark.parametrize("op, ins, outs, attrs, expected", TABLE + EXPLICIT + GENERIC)
def test_elementwise(op, ins, outs, attrs, expected):
    check_cases(op, ins, outs, attrs, expected)


@pytest.mark.parametrize("op, ins, outs, attrs, match", ERRORS)
def test_elementwise_rejects(op, ins, outs, attrs, match):
    check_errors(op, ins, outs, attrs, match)


def test_every_elementwise_op_costs_something():
    # no elementwise op is silently free: each has a flop or a transcendental per element
    for name in ELEMENTWISE:
        cost = run(name, _ins(name), [out])
        assert cost.flops + cost.transcendentals > 0, name
