"""Data movement rules: no arithmetic; bytes per op as documented; view registered free."""

import pytest

from graphperf.cost import Cost
from graphperf.ops import DATA_MOVEMENT, canonical
from graphperf.rules import FREE, is_free, rule_for

from ._util import BF16, F32, T, bad, case, check_cases, check_errors, ops_in

r, c = 6, 4
x, y = T(r, c), T(r, c)

# Every input read once, every output written once.
IO_OPS = [
    case("concat", [x, T(2, c)], [T(r + 2, c)], {"axis": 0},
         Cost(0, 0, 0, F32 * (r * c + 2 * c), F32 * (r + 2) * c), "two"),
    case("pad", [x], [T(r + 2, c + 2)], {}, Cost(0, 0, 0, F32 * r * c, F32 * (r + 2) * (c + 2)), "border"),
    case("transpose", [x], [T(c, r)], {}, Cost(0, 0, 0, F32 * r * c, F32 * r * c), "materialised"),
    case("copy", [x], [y], {}, Cost(0, 0, 0, F32 * r * c, F32 * r * c), "plain"),
    case("reshape_copy", [x], [T(r * c)], {}, Cost(0, 0, 0, F32 * r * c, F32 * r * c), "materialised"),
    # cast reads at the source dtype and writes at the target dtype
    case("cast", [x], [T(r, c, dtype="bfloat16")], {}, Cost(0, 0, 0, F32 * r * c, BF16 * r * c), "f32-to-bf16"),
    # expand reads its un-broadcast input once and writes the expanded output
    case("expand", [T(1, c)], [T(r, c)], {}, Cost(0, 0, 0, F32 * c, F32 * r * c), "broadcast-rows"),
    case("expand", [T(1, c), T(2, dtype="int64")], [T(r, c)], {},
         Cost(0, 0, 0, F32 * c + 8 * 2, F32 * r * c), "onnx-shape-input"),
]

# Slice and split read only what they copy.
PARTIAL = [
    case("slice", [x], [T(2, c)], {}, Cost(0, 0, 0, F32 * 2 * c, F32 * 2 * c), "rows"),
    case("slice", [x, T(1, dtype="int64"), T(1, dtype="int64")], [T(r, 1)], {},
         Cost(0, 0, 0, F32 * r, F32 * r), "onnx-starts-ends"),
    case("split", [x], [T(2, c), T(4, c)], {}, Cost(0, 0, 0, F32 * (2 + 4) * c, F32 * (2 + 4) * c), "two-parts"),
]

# fill creates a constant: nothing read, the output written.
FILL = [
    case("fill", [], [x], {}, Cost(0, 0, 0, 0, F32 * r * c), "full"),
    case("fill", [T(2, dtype="int64")], [x], {}, Cost(0, 0, 0, 0, F32 * r * c), "constant-of-shape"),
]

VIEW = [case("view", [x], [T(r * c)], {}, Cost.zero(), "free"), case("view", [], [], {}, Cost.zero(), "anything")]

ERRORS = [
    bad("copy", [], [y], {}, "missing required input 0", "no-input"),
    bad("concat", [x], [], {}, "no output", "no-output"),
    bad("slice", [x], [], {}, "no output", "no-output"),
    bad("fill", [], [], {}, "no output", "no-output"),
]

COVERED_OPS = ops_in(IO_OPS, PARTIAL, FILL, VIEW)


@pytest.mark.parametrize("op, ins, outs, attrs, expected", IO_OPS + PARTIAL + FILL + VIEW)
def test_data_movement(op, ins, outs, attrs, expected):
    check_cases(op, ins, outs, attrs, expected)


@pytest.mark.parametrize("op, ins, outs, attrs, match", ERRORS)
def test_data_movement_rejects(op, ins, outs, attrs, match):
    check_errors(op, ins, outs, attrs, match)


def test_view_is_registered_free_and_data_movement_is_not():
    assert is_free(canonical("view")) and rule_for(canonical("view")) is FREE
    for name in DATA_MOVEMENT:
        assert not is_free(canonical(name)), name
