"""det and inverse: LAPACK counts through LU (2n^3/3), the determinant's diagonal product, getri's 4n^3/3."""

import pytest

from graphperf.cost import Cost

from ._util import T, bad, case, check_cases, check_errors, io, ops_in

n, batch = 6, 3
x = T(batch, n, n)

CASES = [
    case("det", [x], [T(batch)], {}, Cost(batch * (2 * n**3 // 3 + n), 0, 0, *io([x], [T(batch)])), "lu-diagonal"),
    case("inverse", [x], [x], {}, Cost(batch * (2 * n**3 // 3 + 4 * n**3 // 3), 0, 0, *io([x], [x])), "getrf-getri"),
]

ERRORS = [
    bad("det", [T(3, 4)], [T()], {}, "square", "not-square"),
    bad("inverse", [T(4)], [T(4)], {}, "square", "vector"),
]

COVERED_OPS = ops_in(CASES)


@pytest.mark.parametrize("op, ins, outs, attrs, expected", CASES)
def test_decomposition(op, ins, outs, attrs, expected):
    check_cases(op, ins, outs, attrs, expected)


@pytest.mark.parametrize("op, ins, outs, attrs, match", ERRORS)
def test_decomposition_rejects(op, ins, outs, attrs, match):
    check_errors(op, ins, outs, attrs, match)
