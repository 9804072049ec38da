"""Normalization rules: layer_norm, rms_norm, batch_norm, group_norm, lrn."""

import pytest

from graphperf.cost import Cost
from graphperf.rules.norm import NORM_FLOPS_PER_ELEMENT, NORM_FLOPS_PER_ROW, RMS_FLOPS_PER_ELEMENT, RMS_FLOPS_PER_ROW

from ._util import T, bad, case, check_cases, check_errors, io, ops_in

b, s, hidden = 2, 5, 8  # layer_norm / rms_norm: x [b, s, hidden], rows = b * s
n_, c, hh, ww, g = 2, 6, 4, 3, 3  # batch_norm / group_norm: x [n, c, h, w]
x = T(b, s, hidden)
n, rows = b * s * hidden, b * s
wgt, bias = T(hidden), T(hidden)
xi = T(n_, c, hh, ww)
ni = n_ * c * hh * ww
cw, cb, mean, var = T(c), T(c), T(c), T(c)


def norm(op, ins, attrs, flops, trans, id, out=None):
    out = out or ins[0]
    return case(op, ins, [out], attrs, Cost(flops, 0, trans, *io(ins, [out])), id)


NORMS = [
    # layer_norm: mean-sum, sub, square, sumsq, *rstd = 5/elem; /D, /D, +eps = 3/row; 1 rsqrt/row
    norm("layer_norm", [x], {"norm_numel": hidden}, 5 * n + 3 * rows, rows, "no-affine"),
    norm("layer_norm", [x, wgt], {"norm_numel": hidden}, (5 + 1) * n + 3 * rows, rows, "weight"),
    norm("layer_norm", [x, wgt, bias], {"norm_numel": hidden}, (5 + 1 + 1) * n + 3 * rows, rows, "affine"),
    norm("layer_norm", [x, None, bias], {"norm_numel": hidden}, (5 + 1) * n + 3 * rows, rows, "bias-only"),
    norm("layer_norm", [x, T(s, hidden), T(s, hidden)], {"norm_numel": s * hidden},
         (5 + 2) * n + 3 * b, b, "two-dims"),
    # rms_norm: square, sum, *rstd = 3/elem; /D, +eps = 2/row; 1 rsqrt/row; weight 1/elem
    norm("rms_norm", [x], {"norm_numel": hidden}, 3 * n + 2 * rows, rows, "no-weight"),
    norm("rms_norm", [x, wgt], {"norm_numel": hidden}, (3 + 1) * n + 2 * rows, rows, "weight"),
    # batch_norm inference: (x - mean) * rstd [* w] [+ b] per element; var + eps, rsqrt per channel
    norm("batch_norm", [xi, cw, cb, mean, var], {}, (1 + 1 + 1 + 1) * ni + c, c, "inference-affine"),
    norm("batch_norm", [xi, None, None, mean, var], {}, (1 + 1) * ni + c, c, "inference-plain"),
    norm("batch_norm", [T(n_, c)], {}, 5 * n_ * c + 3 * c, c, "batch-stats-2d"),
    # batch statistics: each channel is a layer_norm row of n * h * w elements
    norm("batch_norm", [xi, cw, cb], {}, (5 + 2) * ni + 3 * c, c, "batch-stats"),
    # group_norm: rows = n * groups, counted like layer_norm
    norm("group_norm", [xi, cw, cb], {"num_groups": g}, (5 + 2) * ni + 3 * n_ * g, n_ * g, "affine"),
    norm("group_norm", [xi], {"num_groups": 1}, 5 * ni + 3 * n_, n_, "one-group"),
    norm("group_norm", [xi], {"num_groups": c}, 5 * ni + 3 * n_ * c, n_ * c, "instance-norm"),
    # lrn: size squares and size adds over the channel window, scale (mul, add), divide + one pow per element
    norm("lrn", [xi], {"size": 5}, (5 + 5 + 2 + 1) * ni, ni, "size-5"),
    norm("lrn", [xi], {"size": 1}, (1 + 1 + 2 + 1) * ni, ni, "size-1"),
]

ERRORS = [
    bad("layer_norm", [x], [x], {}, "missing required attribute 'norm_numel'", "no-norm-numel"),
    bad("layer_norm", [x], [x], {"norm_numel": 7}, "does not divide", "bad-norm-numel"),
    bad("rms_norm", [x], [x], {"norm_numel": 0}, "must be an int >= 1", "zero"),
    bad("rms_norm", [], [x], {"norm_numel": hidden}, "missing required input 0", "no-x"),
    bad("batch_norm", [T(c)], [T(c)], {}, r"\[N, C, \*spatial\]", "rank-1"),
    bad("batch_norm", [xi, cw, cb, mean], [xi], {}, "both running_mean and running_var", "half-stats"),
    bad("group_norm", [xi], [xi], {}, "num_groups", "no-groups"),
    bad("group_norm", [xi], [xi], {"num_groups": 4}, "divisible", "groups-not-dividing"),
    bad("lrn", [xi], [xi], {}, "missing required attribute 'size'", "no-size"),
]

COVERED_OPS = ops_in(NORMS)


@pytest.mark.parametrize("op, ins, outs, attrs, expected", NORMS)
def test_norms(op, ins, outs, attrs, expected):
    check_cases(op, ins, outs, attrs, expected)


@pytest.mark.parametrize("op, ins, outs, attrs, match", ERRORS)
def test_norms_reject(op, ins, outs, attrs, match):
    check_errors(op, ins, outs, attrs, match)


def test_named_constants_match_the_derivations():
    mean_sum, sub, square, sumsq, times_rstd = 1, 1, 1, 1, 1
    assert NORM_FLOPS_PER_ELEMENT == mean_sum + sub + square + sumsq + times_rstd
    div_mean, div_var, add_eps = 1, 1, 1
    assert NORM_FLOPS_PER_ROW == div_mean + div_var + add_eps
    assert RMS_FLOPS_PER_ELEMENT == square + sumsq + times_rstd
    assert RMS_FLOPS_PER_ROW == div_var + add_eps
