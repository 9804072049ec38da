"""Reduction, softmax/log_softmax, topk and sort rules."""

import pytest

from graphperf.cost import Cost

from ._util import F32, T, bad, case, check_cases, check_errors, io, ops_in

r, d = 6, 10  # rows and row length: x [r, d] reduced over the last axis
x, row_out = T(r, d), T(r)
n, m = r * d, r  # numel(in), numel(out)
IO = io([x], [row_out])

ONE_PER_ELEMENT = ("reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "reduce_any", "reduce_all")
REDUCTIONS = [case(op, [x], [row_out], {}, Cost(n, 0, 0, *IO), "one-op-per-input") for op in ONE_PER_ELEMENT] + [
    case("reduce_sum", [x], [T()], {}, Cost(n, 0, 0, F32 * n, F32), "full"),
    case("argmax", [x], [T(r, dtype="int64")], {}, Cost(n, 0, 0, F32 * n, 8 * m), "compares"),
    case("argmin", [x], [T(r, dtype="int64")], {}, Cost(n, 0, 0, F32 * n, 8 * m), "compares"),
    case("cumsum", [x], [x], {}, Cost(n, 0, 0, F32 * n, F32 * n), "adds"),
    # mean: n adds + m divides
    case("reduce_mean", [x], [row_out], {}, Cost(n + m, 0, 0, *IO), "sum-then-divide"),
    # var, two-pass: (n adds + m divides) for the mean, then n subs + n squares + n adds + m divides
    case("reduce_var", [x], [row_out], {}, Cost((n + m) + (n + n + n + m), 0, 0, *IO), "two-pass"),
    # std: var + one sqrt per output element
    case("reduce_std", [x], [row_out], {}, Cost(4 * n + 2 * m, 0, m, *IO), "var-plus-sqrt"),
]

rows0 = d  # softmax over axis 0 of x [r, d]: d rows of length r
SOFTMAX = [
    # max, sub, sum, div per element + exp per element
    case("softmax", [x], [x], {}, Cost((1 + 1 + 1 + 1) * n, 0, n, *io([x], [x])), "last-axis"),
    case("softmax", [x], [x], {"axis": 0}, Cost(4 * n, 0, n, *io([x], [x])), "axis-0"),
    # log_softmax: max, sub, sum, final sub per element + exp per element + log per row
    case("softmax", [x], [x], {"log": True}, Cost((1 + 1 + 1 + 1) * n, 0, n + r, *io([x], [x])), "log"),
    case("softmax", [x], [x], {"log": True, "axis": 0}, Cost(4 * n, 0, n + rows0, *io([x], [x])), "log-axis-0"),
]


def topk_case(k, attrs, id):
    outs = [T(r, k), T(r, k, dtype="int64")]
    depth = k.bit_length()  # binary heap of k: floor(log2 k) + 1 levels
    return case("topk", [x], outs, {"k": k, **attrs}, Cost(r * d * depth, 0, 0, *io([x], outs)), id)


sort_outs = [x, T(r, d, dtype="int64")]
SELECTION = [
    topk_case(1, {}, "k1-is-argmax"),
    topk_case(2, {}, "k2"),
    topk_case(4, {}, "k4"),
    topk_case(d, {}, "k-all"),
    case("topk", [x], [T(3, d), T(3, d, dtype="int64")], {"k": 3, "axis": 0},
         Cost(d * r * (3).bit_length(), 0, 0, *io([x], [T(3, d), T(3, d, dtype="int64")])), "axis-0"),
    # sort: rows * D * ceil(log2 D) compares; ceil(log2 10) = 4
    case("sort", [x], sort_outs, {}, Cost(r * d * 4, 0, 0, *io([x], sort_outs)), "merge-bound"),
    case("sort", [T(3, 8)], [T(3, 8)], {}, Cost(3 * 8 * 3, 0, 0, *io([T(3, 8)], [T(3, 8)])), "power-of-2"),
    case("sort", [T(5, 1)], [T(5, 1)], {}, Cost(0, 0, 0, *io([T(5, 1)], [T(5, 1)])), "length-1"),
    case("sort", [x], sort_outs, {"axis": 0}, Cost(d * r * 3, 0, 0, *io([x], sort_outs)), "axis-0"),  # ceil(log2 6) = 3
]

# scans and searches: logsumexp, nonzero, multinomial
classes, draws = 10, 3
SCANS = [
    # max, sub, sum per element + exp per element; log and + max per output element (+ 1 log)
    case("reduce_logsumexp", [x], [row_out], {}, Cost(3 * n + m, 0, n + m, *IO), "stable"),
    # a compare and a prefix-sum add per element
    case("nonzero", [x], [T(2, 7, dtype="int64")], {}, Cost(2 * n, 0, 0, *io([x], [T(2, 7, dtype="int64")])), "2d"),
    # exp and running sum per class; per sample a draw and ceil(log2 10) = 4 compares
    case("multinomial", [T(r, classes)], [T(r, draws, dtype="int64")], {},
         Cost(r * classes + r * draws * (1 + 4), 0, r * classes, *io([T(r, classes)], [T(r, draws, dtype="int64")])),
         "binary-search"),
]

ERRORS = [
    bad("multinomial", [T(classes)], [T(draws)], {}, "expected x", "1-d"),
    bad("reduce_sum", [], [row_out], {}, "missing required input 0", "no-input"),
    bad("reduce_var", [x], [], {}, "no output", "no-output"),
    bad("softmax", [x], [x], {"axis": 2}, "axis=2", "bad-axis"),
    bad("topk", [x], [T(r, 2)], {}, "missing required attribute 'k'", "no-k"),
    bad("topk", [x], [T(r, 2)], {"k": d + 1}, "exceeds", "k-too-big"),
    bad("topk", [x], [T(r, 2)], {"k": 2.0}, "must be an int", "k-float"),
    bad("sort", [x], [x], {"axis": -3}, "axis=-3", "bad-axis"),
]

COVERED_OPS = ops_in(REDUCTIONS, SOFTMAX, SELECTION, SCANS)


@pytest.mark.parametrize("op, ins, outs, attrs, expected", REDUCTIONS + SOFTMAX + SELECTION + SCANS)
def test_reduction_family(op, ins, outs, attrs, expected):
    check_cases(op, ins, outs, attrs, expected)


@pytest.mark.parametrize("op, ins, outs, attrs, match", ERRORS)
def test_reduction_family_rejects(op, ins, outs, attrs, match):
    check_errors(op, ins, outs, attrs, match)
