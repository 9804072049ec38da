"""fft: 5 N log2 N flops per complex transform, half for real data."""

import math

import pytest

from graphperf.cost import Cost

from ._util import T, bad, case, check_cases, check_errors, io, ops_in

x, out = T(3, 16, 2), T(3, 16, 2)  # 3 complex transforms of 16 points
xr, outr = T(3, 16, 1), T(3, 9, 2)  # real input, one-sided output

CASES = [
    case("fft", [x], [out], {"length": 16, "transforms": 3}, Cost(3 * 5 * 16 * 4, 0, 0, *io([x], [out])), "complex"),
    case("fft", [xr], [outr], {"length": 16, "transforms": 3, "real": True},
         Cost(3 * 5 * 16 * 4 // 2, 0, 0, *io([xr], [outr])), "real"),
    # not a power of two: still 5 N log2 N, rounded
    case("fft", [T(2, 12, 2)], [T(2, 12, 2)], {"length": 12, "transforms": 2},
         Cost(round(2 * 5 * 12 * math.log2(12)), 0, 0, *io([T(2, 12, 2)], [T(2, 12, 2)])), "length-12"),
    case("fft", [T(4, 1, 2)], [T(4, 1, 2)], {"length": 1, "transforms": 4},
         Cost(0, 0, 0, *io([T(4, 1, 2)], [T(4, 1, 2)])), "length-1"),
]

ERRORS = [bad("fft", [x], [out], {"transforms": 3}, "missing required attribute 'length'", "no-length")]

COVERED_OPS = ops_in(CASES)


@pytest.mark.parametrize("op, ins, outs, attrs, expected", CASES)
def test_fft(op, ins, outs, attrs, expected):
    check_cases(op, ins, outs, attrs, expected)


@pytest.mark.parametrize("op, ins, outs, attrs, match", ERRORS)
def test_fft_rejects(op, ins, outs, attrs, match):
    check_errors(op, ins, outs, attrs, match)
