"""Pooling rules: max_pool compares, avg_pool adds and divides per window."""

import pytest

from graphperf.cost import Cost

from ._util import T, bad, case, check_cases, check_errors, io, ops_in

n, c, h, w, kh, kw = 2, 3, 8, 8, 3, 2
x = T(n, c, h, w)
oh, ow = h // 2, w // 2  # whatever stride/padding gave: the rule reads it off the output
out = T(n, c, oh, ow)
m = n * c * oh * ow

POOLING = [
    case("max_pool", [x], [out], {"kernel": (kh, kw)}, Cost(m * kh * kw, 0, 0, *io([x], [out])), "2d"),
    case("max_pool", [x], [out, T(n, c, oh, ow, dtype="int64")], {"kernel": (kh, kw)},
         Cost(m * kh * kw, 0, 0, *io([x], [out, T(n, c, oh, ow, dtype="int64")])), "with-indices"),
    case("max_pool", [T(n, c, h)], [T(n, c, oh)], {"kernel": [kh]},
         Cost(n * c * oh * kh, 0, 0, *io([T(n, c, h)], [T(n, c, oh)])), "1d"),
    case("max_pool", [T(c, h, w)], [T(c, oh, ow)], {"kernel": (kh, kw)},
         Cost(c * oh * ow * kh * kw, 0, 0, *io([T(c, h, w)], [T(c, oh, ow)])), "unbatched"),
    case("avg_pool", [x], [out], {"kernel": (kh, kw)}, Cost(m * kh * kw + m, 0, 0, *io([x], [out])), "2d"),
    case("avg_pool", [T(n, c, 4, h, w)], [T(n, c, 2, oh, ow)], {"kernel": (2, kh, kw)},
         Cost(n * c * 2 * oh * ow * (2 * kh * kw) + n * c * 2 * oh * ow, 0, 0,
              *io([T(n, c, 4, h, w)], [T(n, c, 2, oh, ow)])), "3d"),
]

ERRORS = [
    bad("max_pool", [x], [out], {}, "missing required attribute 'kernel'", "no-kernel"),
    bad("avg_pool", [x], [out], {"kernel": ()}, "non-empty tuple", "empty-kernel"),
    bad("avg_pool", [x], [out], {"kernel": (0, 2)}, "positive ints", "zero-tap"),
    bad("max_pool", [T(h, w)], [T(oh, ow)], {"kernel": (kh, kw)}, "does not fit", "kernel-rank"),
    bad("avg_pool", [], [out], {"kernel": (kh, kw)}, "missing required input 0", "no-x"),
]

COVERED_OPS = ops_in(POOLING)


@pytest.mark.parametrize("op, ins, outs, attrs, expected", POOLING)
def test_pooling(op, ins, outs, attrs, expected):
    check_cases(op, ins, outs, attrs, expected)


@pytest.mark.parametrize("op, ins, outs, attrs, match", ERRORS)
def test_pooling_rejects(op, ins, outs, attrs, match):
    check_errors(op, ins, outs, attrs, match)
