"""interpolate: coordinate and tap arithmetic per output element and sample (nearest, linear, cubic)."""

import pytest

from graphperf.cost import Cost

from ._util import T, bad, case, check_cases, check_errors, io, ops_in

x, out = T(1, 3, 8, 8), T(1, 3, 16, 16)
grid = T(1, 16, 16, 2)
m = 1 * 3 * 16 * 16


def interp(mode, spatial, per_out, id, ins=None, samples=None):
    ins = ins or [x]
    attrs = {"mode": mode, "spatial": spatial, **({"samples": samples} if samples else {})}
    return case("interpolate", ins, [out], attrs, Cost(m * per_out, 0, 0, *io(ins, [out])), id)


CASES = [
    interp("nearest", 2, 3 * 2, "nearest-2d"),  # per dim: mul, add, round
    # linear: per dim 3 (coordinates) + 1 (1 - t); 2**2 taps of a multiply-add
    interp("linear", 2, 3 * 2 + 1 * 2 + 2 * 4, "bilinear"),
    interp("linear", 2, 3 * 2 + 1 * 2 + 2 * 4, "grid-sample", ins=[x, grid]),
    interp("linear", 1, 3 + 1 + 2 * 2, "linear-1d"),
    # cubic: per dim 3 + 26 (t^2, t^3 and four cubic weights); 4**2 taps
    interp("cubic", 2, 3 * 2 + 26 * 2 + 2 * 16, "bicubic"),
    # RoiAlign, 2x2 samples per bin: 4 bilinear samples and 4 adds to average them
    interp("linear", 2, 4 * (3 * 2 + 1 * 2 + 2 * 4) + 4, "roi-align-4-samples", samples=4),
]

ERRORS = [
    bad("interpolate", [x], [out], {"mode": "area", "spatial": 2}, "mode='area'", "bad-mode"),
    bad("interpolate", [x], [out], {"mode": "linear"}, "missing required attribute 'spatial'", "no-spatial"),
]

COVERED_OPS = ops_in(CASES)


@pytest.mark.parametrize("op, ins, outs, attrs, expected", CASES)
def test_interpolate(op, ins, outs, attrs, expected):
    check_cases(op, ins, outs, attrs, expected)


@pytest.mark.parametrize("op, ins, outs, attrs, match", ERRORS)
def test_interpolate_rejects(op, ins, outs, attrs, match):
    check_errors(op, ins, outs, attrs, match)
