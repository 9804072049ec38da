"""The `fused` rule: arithmetic from the members (attrs), bytes from the group's external IO only."""

import pytest

from graphperf.cost import Cost

from ._util import BF16, F32, T, bad, case, check_cases, check_errors, ops_in

r, c = 8, 16
x, y, out = T(r, c), T(r, c), T(r, c)
# silu(x) * y fused: silu (3 flops + 1 transcendental per element) then mul (1 flop per element);
# the silu output never leaves the chip: read x and y once, write the product once.
SILU_MUL = {"flops": (3 + 1) * r * c, "matrix_flops": 0, "transcendentals": 1 * r * c}

TABLE = [
    case("fused", [x, y], [out], {"cost": SILU_MUL},
         Cost((3 + 1) * r * c, 0, r * c, F32 * (r * c + r * c), F32 * r * c), "silu-mul"),
    # an intermediate another node reads stays materialised: a second output, written once
    case("fused", [T(r, c, dtype="bfloat16")], [T(r, c, dtype="bfloat16"), T(r, c, dtype="bfloat16")],
         {"cost": {"flops": 2 * r * c, "matrix_flops": 0, "transcendentals": 0}},
         Cost(2 * r * c, 0, 0, BF16 * r * c, BF16 * (r * c + r * c)), "two-outputs-bf16"),
]

ERRORS = [
    bad("fused", [x], [out], {}, "needs attrs cost", "no-cost"),
    bad("fused", [x], [], {"cost": SILU_MUL}, "no outputs", "no-output"),
]

COVERED_OPS = ops_in(TABLE)


@pytest.mark.parametrize("op, ins, outs, attrs, expected", TABLE)
def test_fused(op, ins, outs, attrs, expected):
    check_cases(op, ins, outs, attrs, expected)


@pytest.mark.parametrize("op, ins, outs, attrs, match", ERRORS)
def test_fused_errors(op, ins, outs, attrs, match):
    check_errors(op, ins, outs, attrs, match)
